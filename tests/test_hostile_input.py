"""Hostile input against POST /webhooks/plain: never a 5xx, never a crash, nothing stored unsigned."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from connector.config import load_config
from connector.plain.signature import sign
from connector.service import Service
from connector.store.base import Finished
from connector.testing.plain import membership_event, plain_time, signed_request
from connector.text import crm_text, storable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SECRET, free_port, write_setup
from tests.odd_text import json_strings

ENT = ("cg_ent", "enterprise", "Enterprise")


class Loop:
    """One event loop and one open service for a whole property test."""

    def __init__(self, folder: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.service = Service(load_config(write_setup(folder)))
        self.loop.run_until_complete(self.service.store.open())
        transport = httpx.ASGITransport(app=self.service.app())
        self.client = httpx.AsyncClient(transport=transport, base_url="http://test")

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.loop.run_until_complete(self.client.post("/webhooks/plain", content=body, headers=headers))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def inbox(self) -> dict[str, int]:
        return self.loop.run_until_complete(self.service.store.status()).inbox

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.service.store.close())
        self.loop.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    harness = Loop(tmp_path_factory.mktemp("hostile"))
    yield harness
    harness.close()


JSON = "application/json"


def signed(body: bytes) -> dict[str, str]:
    """Headers of a signed delivery attempt made now, as Plain sends them with any body."""
    return {
        "Content-Type": JSON,
        "Plain-Request-Signature": sign(body, SECRET),
        "Plain-Webhook-Delivery-Attempt-Timestamp": plain_time(datetime.now(UTC)),
    }


fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)


@fuzz
@given(body=st.binary(max_size=2048), signature=st.one_of(st.none(), st.text(max_size=80)))
def test_unsigned_or_badly_signed_bytes_are_refused_and_not_stored(
    app: Loop, body: bytes, signature: str | None
) -> None:
    headers = {"Content-Type": JSON}
    if signature is not None and signature.isascii() and signature.isprintable():
        headers["Plain-Request-Signature"] = signature
    before = app.inbox()
    response = app.post(body, headers)
    assert response.status_code == 401
    assert app.inbox() == before


@fuzz
@given(body=st.binary(max_size=2048))
def test_signed_arbitrary_bytes_are_kept_never_5xx(app: Loop, body: bytes) -> None:
    response = app.post(body, signed(body))
    assert response.status_code in (200, 401), response.text  # 401 only for a readable stale body timestamp
    if response.status_code == 200:
        assert response.json()["status"] in ("unprocessable", "duplicate", "stored", "ignored")


@fuzz
@given(value=json_values)
def test_signed_json_of_any_shape_is_answered_2xx(app: Loop, value: Any) -> None:
    body = orjson.dumps(value)
    response = app.post(body, signed(body))
    assert response.status_code == 200 and response.json()["status"] in ("unprocessable", "duplicate")


@fuzz
@given(body=st.binary(max_size=2048) | json_values.map(orjson.dumps))
def test_signed_bodies_without_any_attempt_time_are_refused_and_not_stored(app: Loop, body: bytes) -> None:
    # Neither webhookMetadata.webhookDeliveryAttemptTimestamp nor the header: the replay
    # window cannot be checked, so the body is refused whether it parses or not.
    before = app.inbox()
    response = app.post(body, {"Content-Type": JSON, "Plain-Request-Signature": sign(body, SECRET)})
    assert response.status_code == 401
    assert app.inbox() == before


@fuzz
@given(
    name=json_strings, email=json_strings, external_id=json_strings, group_name=json_strings,
    event_no=st.integers(min_value=0, max_value=10**9),
)  # fmt: skip
def test_any_json_text_in_a_membership_event_is_stored_and_sent_in_crm_form(
    app: Loop, name: str, email: str, external_id: str, group_name: str, event_no: int
) -> None:
    customer = f"c_odd{event_no}"
    ev = membership_event(
        event_id=f"pEv_odd{event_no}", customer_id=customer, email=f"{email}@example.com", groups_before=[],
        groups_after=[(f"cg_odd{event_no}", "enterprise", group_name)], timestamp="2026-01-01T00:00:00Z",
        generation="versioned", full_name=name, external_id=external_id,
    )  # fmt: skip
    body, headers = signed_request(ev, SECRET)  # lone surrogates travel as \\udXXX escapes
    response = app.post(body, headers)
    assert response.status_code == 200 and response.json()["status"] in ("stored", "duplicate"), response.text
    items = app.run(app.service.store.claim("audit", 10_000, "fuzz", 60))
    app.run(app.service.store.finish([Finished(item, "done") for item in items]))  # keep the backlog empty
    if response.json()["status"] == "duplicate":  # hypothesis drew an event_no again
        return
    (item,) = [item for item in items if item.customer_id == customer]
    meant = [storable(json.loads(json.dumps(v))) or None for v in (name, external_id, group_name)]
    meant_email = storable(json.loads(json.dumps(f"{email}@example.com"))).strip() or None
    # The store holds the text losslessly (NUL and all); only lone surrogates became U+FFFD.
    assert [item.full_name, item.external_id, item.group_name, item.email] == [*meant, meant_email]
    change = item.to_change()
    sent = [change.full_name, change.external_id, change.group_name, change.email]
    assert sent == [crm_text(v) for v in [*meant, meant_email]]
    assert not any("\x00" in v for v in sent if v) and orjson.dumps(sent)  # every CRM payload encoder takes it


@fuzz
@given(
    name=st.text(min_size=1, max_size=60),
    local=st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=30),
    event_no=st.integers(min_value=0, max_value=10**9),
)
def test_unicode_names_and_emails_are_accepted(app: Loop, name: str, local: str, event_no: int) -> None:
    ev = membership_event(
        event_id=f"pEv_uni{event_no}", customer_id=f"c_uni{event_no}", email=f"{local}@exämple.com",
        groups_before=[], groups_after=[ENT], timestamp="2026-01-01T00:00:00Z", generation="versioned",
        full_name=name,
    )  # fmt: skip
    body, headers = signed_request(ev, SECRET)
    response = app.post(body, headers)
    assert response.status_code == 200
    assert response.json()["status"] in ("stored", "duplicate")


def test_deeply_nested_json_is_unprocessable_not_a_crash(app: Loop) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = app.post(body, signed(body))
    assert response.status_code == 200 and response.json()["status"] in ("unprocessable", "duplicate")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "", "application/xml", "json"]
)
def test_wrong_content_types_are_415(app: Loop, content_type: str) -> None:
    body, headers = signed_request(membership_event(
        event_id="pEv_ct", customer_id="c_ct", email="a@example.com", groups_before=[], groups_after=[ENT],
        timestamp="2026-01-01T00:00:00Z", generation="versioned"), SECRET)  # fmt: skip
    headers["Content-Type"] = content_type
    before = app.inbox()
    assert app.post(body, headers).status_code == 415
    assert app.inbox() == before


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_big_and_slow_bodies_against_the_real_server(tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    config = write_setup(tmp_path, port=port, plain={"signing_secret": SECRET, "body_timeout_seconds": 1})
    serve = serve_factory(config, port)
    big = b'{"a":"' + b"x" * (5 * 1024 * 1024) + b'"}'
    baseline = rss_kib(serve.proc.pid)
    with httpx.Client(base_url=serve.url, timeout=30) as client:
        for _ in range(5):
            declared = client.post("/webhooks/plain", content=big,
                                   headers={"Content-Type": JSON, "Plain-Request-Signature": sign(big, SECRET)})  # fmt: skip
            assert declared.status_code == 413

            def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
                for i in range(0, len(big), 65536):
                    yield big[i : i + 65536]

            streamed = client.post("/webhooks/plain", content=chunks(), headers={"Content-Type": JSON})
            assert streamed.status_code == 413
    # Refused bodies are not buffered whole: memory stays near where it started.
    assert rss_kib(serve.proc.pid) - baseline < 40 * 1024

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /webhooks/plain HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\nPlain-Request-Signature: 00\r\n\r\n{\"a\":")  # fmt: skip
        started = time.monotonic()
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 8
    ok = httpx.get(serve.url + "/healthz")
    assert ok.status_code == 200
    status = httpx.get(serve.url + "/readyz").json()
    assert status["store"] == "ok"
    assert serve.stop() == 0
