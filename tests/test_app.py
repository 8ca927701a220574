"""POST /webhooks/plain and the health endpoints, against the real app and a real SQLite store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from connector.app import create_app
from connector.config import load_config
from connector.mappings import MappingWatcher, load_mappings
from connector.metrics import Metrics
from connector.plain.signature import sign
from connector.service import Service
from connector.store import StoreUnavailable, open_store
from connector.testing.plain import (
    event,
    membership_event,
    plain_time,
    seed_event,
    signed_request,
    with_fresh_attempt,
)

from tests.conftest import SECRET, write_setup

ENT = ("cg_ent", "enterprise", "Enterprise")


def join(event_id: str = "pEv_join1", **kw: Any) -> dict[str, Any]:
    return membership_event(
        event_id=event_id, customer_id="c_1", email="ann@example.com", groups_before=[], groups_after=[ENT],
        timestamp="2026-01-01T00:00:00Z", generation="versioned", **kw,
    )  # fmt: skip


def signed_now(body: bytes, attempt_time: datetime | None = None) -> dict[str, str]:
    """Headers of a signed delivery attempt, its time (default: now) in Plain's header."""
    return {
        "Content-Type": "application/json",
        "Plain-Request-Signature": sign(body, SECRET),
        "Plain-Webhook-Delivery-Attempt-Timestamp": plain_time(attempt_time or datetime.now(UTC)),
    }


class Harness:
    """The service's ASGI app in-process, its store open, its delivery not running."""

    def __init__(self, folder: Path, **setup: Any) -> None:
        self.service = Service(load_config(write_setup(folder, **setup)))

    async def __aenter__(self) -> Harness:
        await self.service.store.open()
        transport = httpx.ASGITransport(app=self.service.app())
        self.client = httpx.AsyncClient(transport=transport, base_url="http://test")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.service.store.close()

    async def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.client.post("/webhooks/plain", content=body, headers=headers)

    async def post_event(self, ev: dict[str, Any], secret: str = SECRET) -> httpx.Response:
        body, headers = signed_request(ev, secret)
        return await self.post(body, headers)

    async def status(self) -> Any:
        return await self.service.store.status()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_signed_seed_event_is_stored_and_creates_work(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            response = await h.post_event(with_fresh_attempt(seed_event()))
            again = await h.post_event(with_fresh_attempt(seed_event()))
            report = await h.status()
        assert response.status_code == 200 and response.json()["status"] == "stored"
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        assert report.inbox == {"processed": 1}
        assert report.targets["audit"].backlog == 1

    run(scenario())


def test_the_app_needs_only_its_parts_and_wakes_the_targets_given_new_work(tmp_path: Path) -> None:
    config = load_config(write_setup(tmp_path))
    store = open_store(config.store_url, config.base_dir)
    woken: list[set[str]] = []
    mappings = MappingWatcher(config, load_mappings(config))
    app = create_app(config.plain, store, mappings, Metrics(), lambda targets: woken.append(set(targets)))

    async def scenario() -> list[httpx.Response]:
        await store.open()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
                body, headers = signed_request(join(), SECRET)
                sent = [await client.post("/webhooks/plain", content=body, headers=headers) for _ in range(2)]
                return [*sent, await client.get("/readyz"), await client.get("/metrics")]
        finally:
            await store.close()

    first, again, ready, metrics = run(scenario())
    assert (first.json()["status"], again.json()["status"]) == ("stored", "duplicate")
    assert woken == [{"audit"}]  # the duplicate created no work, so woke nobody
    assert ready.json()["mapping_groups"] == 1 and metrics.status_code == 200


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda body, h: h.pop("Plain-Request-Signature"), id="missing"),
        pytest.param(lambda body, h: h.update({"Plain-Request-Signature": "0" * 64}), id="wrong"),
        pytest.param(lambda body, h: h.update({"Plain-Request-Signature": sign(b"{}", SECRET)}), id="other-bytes"),
        pytest.param(
            lambda body, h: h.update({"Plain-Request-Signature": sign(body, "not-the-secret")}), id="other-secret"
        ),
        pytest.param(lambda body, h: h.update({"Plain-Request-Signature": "zz"}), id="not-hex"),
    ],
)
def test_bad_signature_is_401_and_stores_nothing(tmp_path: Path, mutate: Any) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            body, headers = signed_request(join(), SECRET)
            mutate(body, headers)
            response = await h.post(body, headers)
            report = await h.status()
        assert response.status_code == 401
        assert report.inbox == {} and report.targets == {}

    run(scenario())


def test_stale_or_future_attempt_is_401(tmp_path: Path) -> None:
    async def scenario() -> None:
        now = datetime.now(UTC)
        async with Harness(tmp_path) as h:
            stale = await h.post_event(join("pEv_old", attempt_time=now - timedelta(seconds=301)))
            future = await h.post_event(join("pEv_fut", attempt_time=now + timedelta(seconds=301)))
            fresh = await h.post_event(join("pEv_ok", attempt_time=now - timedelta(seconds=290)))
            report = await h.status()
        assert (stale.status_code, future.status_code, fresh.status_code) == (401, 401, 200)
        assert report.inbox == {"processed": 1}

    run(scenario())


def _unparseable(attempt_time: datetime | None) -> bytes:
    """A signed body we cannot understand (no customer), optionally with its own attempt time."""
    ev = join("pEv_broken_" + (attempt_time.isoformat() if attempt_time else "none"), attempt_time=attempt_time)
    del ev["payload"]["customer"]
    if attempt_time is None:
        del ev["webhookMetadata"]["webhookDeliveryAttemptTimestamp"]
    return orjson.dumps(ev)


OLD, NEW = timedelta(seconds=-301), timedelta(0)


@pytest.mark.parametrize(
    ("body_offset", "header_offset", "answer"),
    [
        pytest.param(OLD, None, 401, id="stale body time"),
        pytest.param(OLD, NEW, 401, id="stale body time wins over a fresh header"),
        pytest.param(NEW, OLD, 200, id="fresh body time wins over a stale header"),
        pytest.param(None, OLD, 401, id="no body time, stale header"),
        pytest.param(None, NEW, 200, id="no body time, fresh header"),
        pytest.param(None, None, 401, id="no time at all"),
    ],
)
def test_replay_window_holds_for_signed_bodies_we_cannot_parse(
    tmp_path: Path, body_offset: timedelta | None, header_offset: timedelta | None, answer: int
) -> None:
    async def scenario() -> None:
        now = datetime.now(UTC)
        body = _unparseable(None if body_offset is None else now + body_offset)
        headers = signed_now(body, None if header_offset is None else now + header_offset)
        if header_offset is None:
            del headers["Plain-Webhook-Delivery-Attempt-Timestamp"]
        async with Harness(tmp_path) as h:
            response = await h.post(body, headers)
            report = await h.status()
        assert response.status_code == answer, response.text
        assert report.inbox == ({"unprocessable": 1} if answer == 200 else {})
        if answer == 401:
            assert response.json()["status"] == "attempt timestamp missing or outside the replay window"

    run(scenario())


@pytest.mark.parametrize(
    ("header", "answer"),
    [(None, 401), ("yesterday", 401), ("2026-01-01T00:00:00", 401), ("STALE", 401), ("NOW", 200)],
)
def test_not_json_is_kept_only_with_a_fresh_attempt_header(tmp_path: Path, header: str | None, answer: int) -> None:
    async def scenario() -> None:
        body = b"\x00 this is not json"
        headers = signed_now(body)
        if header is None:
            del headers["Plain-Webhook-Delivery-Attempt-Timestamp"]
        elif header == "STALE":
            headers["Plain-Webhook-Delivery-Attempt-Timestamp"] = plain_time(datetime.now(UTC) - timedelta(hours=1))
        elif header != "NOW":
            headers["Plain-Webhook-Delivery-Attempt-Timestamp"] = header  # unreadable or without offset
        async with Harness(tmp_path) as h:
            response = await h.post(body, headers)
            report = await h.status()
        assert response.status_code == answer, response.text
        assert report.inbox == ({"unprocessable": 1} if answer == 200 else {})

    run(scenario())


def test_understood_event_without_body_attempt_time_uses_the_header(tmp_path: Path) -> None:
    async def scenario() -> None:
        ev = join("pEv_nometa")
        del ev["webhookMetadata"]
        body = orjson.dumps(ev)
        async with Harness(tmp_path) as h:
            stale = await h.post(body, signed_now(body, datetime.now(UTC) - timedelta(seconds=301)))
            fresh = await h.post(body, signed_now(body))
        assert (stale.status_code, fresh.status_code) == (401, 200)
        assert fresh.json()["status"] == "stored"

    run(scenario())


def test_body_over_limit_is_413_and_wrong_type_415(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            big = b'{"x":"' + b"a" * (1_048_576) + b'"}'
            too_big = await h.post(
                big, {"Content-Type": "application/json", "Plain-Request-Signature": sign(big, SECRET)}
            )
            body, headers = signed_request(join(), SECRET)
            wrong_type = await h.post(body, {**headers, "Content-Type": "text/plain"})
            report = await h.status()
        assert too_big.status_code == 413
        assert wrong_type.status_code == 415
        assert report.inbox == {}

    run(scenario())


def test_signed_but_not_understood_is_kept_raw(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            broken = join("pEv_broken")
            del broken["payload"]["customer"]
            response = await h.post_event(broken)
            not_json = b"this is not json"
            raw = await h.post(not_json, signed_now(not_json))  # Plain sends the attempt time as a header too
            report = await h.status()
        assert response.status_code == 200 and response.json()["status"] == "unprocessable"
        assert raw.status_code == 200 and raw.json()["status"] == "unprocessable"
        assert report.inbox == {"unprocessable": 2}
        assert {u["event_id"] for u in report.unprocessable} >= {"pEv_broken"}

    run(scenario())


def test_other_event_types_are_acknowledged_and_ignored(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            ev = event(event_id="pEv_thread", event_type="thread.thread_created", payload={"thread": {}},
                       timestamp="2026-01-01T00:00:00Z")  # fmt: skip
            response = await h.post_event(ev)
            report = await h.status()
            metrics = (await h.client.get("/metrics")).text
        assert response.status_code == 200 and response.json()["status"] == "ignored"
        assert report.inbox == {"ignored": 1} and report.targets == {}
        assert 'plain_crm_sync_events_total{event_type="thread.thread_created",handling="ignored"} 1.0' in metrics

    run(scenario())


def test_store_refusing_writes_answers_503(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:

            async def refuse(*args: Any) -> Any:
                raise StoreUnavailable("disk full")

            h.service.store.accept = refuse  # type: ignore[method-assign]
            response = await h.post_event(join())
        assert response.status_code == 503

    run(scenario())


def test_health_and_readiness(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            health = await h.client.get("/healthz")
            ready = await h.client.get("/readyz")
        assert health.status_code == 200
        assert ready.status_code == 200
        assert ready.json()["store"] == "ok" and ready.json()["mapping_groups"] == 1

    run(scenario())


def test_readiness_fails_when_store_is_closed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            await h.service.store.close()
            ready = await h.client.get("/readyz")
            await h.service.store.open()
        assert ready.status_code == 503 and ready.json()["store"] == "unreachable"

    run(scenario())


def test_unmapped_group_is_stored_without_work(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path, mappings=[{"group": "other", "to": [{"target": "audit"}]}]) as h:
            response = await h.post_event(join())
            report = await h.status()
        assert response.json()["status"] == "stored"
        assert report.targets == {}

    run(scenario())


def test_body_is_verified_over_raw_bytes_not_reserialised_json(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            body = orjson.dumps(join(), option=orjson.OPT_INDENT_2)  # whitespace Plain might send
            response = await h.post(
                body, {"Content-Type": "application/json", "Plain-Request-Signature": sign(body, SECRET)}
            )
        assert response.status_code == 200

    run(scenario())
