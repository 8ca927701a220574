"""The test builders produce bodies Plain's own JSON Schemas accept (vendored copies here)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from connector.plain import events as ev
from connector.plain.changes import parse_event
from connector.plain.signature import verify
from connector.testing.plain import (
    customer_event,
    group_event,
    membership_event,
    plain_id,
    seed_event,
    signed_request,
)
from jsonschema import Draft7Validator, FormatChecker

SCHEMAS = Path(__file__).parent / "schemas"
VERSIONS = {
    "webhook-schema.2024-09-18.json": "2024-09-18",
    "webhook-schema.2025-08-06.json": "2025-08-06",
    "webhook-schema.2026-02-27.json": "2026-02-27",
    "webhook-schema.json": "2026-04-21",
}
A = (plain_id("cg", "a"), "enterprise", "Enterprise")
B = (plain_id("cg", "b"), "beta", "Beta testers")
C = (plain_id("cg", "c"), "vip", "VIP")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

# jsonschema only checks "date-time" when rfc3339-validator is installed; check it here
# so a builder emitting a naive or malformed time fails the test everywhere.
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_formats = FormatChecker()


@_formats.checks("date-time")
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True  # "format" only constrains strings
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value)  # raises on impossible dates
    return True


def _validator(name: str) -> Draft7Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    return Draft7Validator(schema, format_checker=_formats)


def _errors(validator: Draft7Validator, body: dict) -> list[str]:
    # anyOf failures report on the whole payload; best_match picks the closest branch.
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]


def test_vendored_schemas_are_the_expected_versions():
    for name, version in VERSIONS.items():
        schema = json.loads((SCHEMAS / name).read_text())
        meta = schema["definitions"]["webhookMetadata"]["properties"]
        assert meta["webhookTargetVersion"]["const"] == version
    assert (SCHEMAS / "LICENSE-NOTE.md").read_text().count("MIT") >= 2


@pytest.mark.parametrize("name", VERSIONS)
@pytest.mark.parametrize(("before", "after"), [([], [A]), ([A, B], [A]), ([A], [B, C]), ([A], [A])])
def test_versioned_membership_bodies_validate(name, before, after):
    body = membership_event(
        event_id=plain_id("pEv", name, before, after),
        customer_id=plain_id("c", "alice"),
        email="alice@example.com",
        groups_before=before,
        groups_after=after,
        timestamp=T0,
        generation="versioned",
        version=VERSIONS[name],
        attempt=2,
    )
    assert _errors(_validator(name), body) == []
    assert parse_event(orjson.dumps(body)).kind == "membership"


@pytest.mark.parametrize("name", VERSIONS)
def test_other_builder_bodies_validate(name):
    v = _validator(name)
    kw = {"timestamp": T0, "version": VERSIONS[name]}
    cid = plain_id("c", "bob")
    bodies = [
        customer_event(
            event_id=plain_id("pEv", t),
            event_type=t,
            customer_id=cid,
            email="bob@example.com",
            previous_email="robert@example.com",
            groups=[A],
            **kw,
        )
        for t in (ev.CUSTOMER_CREATED, ev.CUSTOMER_UPDATED, ev.CUSTOMER_CHANGED, ev.CUSTOMER_DELETED)
    ]
    bodies += [
        group_event(event_id=plain_id("pEv", c), change=c, group=A, previous_group=B, **kw)
        for c in ("ADDED", "UPDATED", "REMOVED")
    ]
    for body in bodies:
        assert _errors(v, body) == [], body["type"]


def test_schema_check_is_not_vacuous():
    v = _validator("webhook-schema.json")
    good = membership_event(
        event_id=plain_id("pEv", "x"),
        customer_id=plain_id("c", "x"),
        email="x@example.com",
        groups_before=[],
        groups_after=[A],
        timestamp=T0,
        generation="versioned",
    )
    assert _errors(v, good) == []
    wrong_version = membership_event(
        event_id=plain_id("pEv", "x"),
        customer_id=plain_id("c", "x"),
        email="x@example.com",
        groups_before=[],
        groups_after=[A],
        timestamp=T0,
        generation="versioned",
        version="2024-09-18",
    )
    assert _errors(v, wrong_version)
    naive_time = json.loads(json.dumps(good))
    naive_time["timestamp"] = "2025-03-01T12:00:00"
    assert _errors(v, naive_time)
    short_id = json.loads(json.dumps(good))
    short_id["id"] = "pEv_1"
    assert _errors(v, short_id)


def test_legacy_builder_has_the_seed_shape():
    seed = seed_event()
    body = membership_event(
        event_id="pEv_01GST0WAZ0W31PN3BH76M9E2SP",
        customer_id="c_01GST0WAGQ7RSMMEXZGA360MFY",
        email="colby45@example.com",
        groups_before=[],
        groups_after=[("cg_01GST0W9Z0WVHBSAPA9HQR7Q2E", "enterprise", "Enterprise")],
        timestamp="2023-02-21T12:58:51.232Z",
        generation="legacy",
    )

    def shape(node):
        if isinstance(node, dict):
            return {k: shape(v) for k, v in node.items()}
        if isinstance(node, list):
            return [shape(x) for x in node]
        return type(node).__name__

    # Same keys and value types everywhere; only the nulls the seed happens to have differ.
    assert shape(body["payload"]["customerGroupMemberships"]) == shape(seed["payload"]["customerGroupMemberships"])
    assert set(body) == set(seed)
    assert set(body["payload"]) == set(seed["payload"])
    assert set(body["payload"]["customer"]) == set(seed["payload"]["customer"])
    assert set(body["webhookMetadata"]) == set(seed["webhookMetadata"])
    assert body["type"] == seed["type"] == ev.LEGACY_MEMBERSHIPS_CHANGED


def test_signed_request_headers():
    body_dict = membership_event(
        event_id=plain_id("pEv", "h"),
        customer_id=plain_id("c", "h"),
        email="h@example.com",
        groups_before=[],
        groups_after=[A],
        timestamp=T0,
        generation="versioned",
        attempt=4,
        attempt_time=datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC),
    )
    body, headers = signed_request(body_dict, "s3cret")
    assert orjson.loads(body) == body_dict
    assert verify(body, headers["Plain-Request-Signature"], "s3cret")
    meta = body_dict["webhookMetadata"]
    assert headers == {
        "Content-Type": "application/json",
        "Plain-Request-Signature": headers["Plain-Request-Signature"],
        "Plain-Event-Id": body_dict["id"],
        "Plain-Event-Type": ev.MEMBERSHIPS_CHANGED,
        "Plain-Workspace-Id": body_dict["workspaceId"],
        "Plain-Webhook-Target-Id": meta["webhookTargetId"],
        "Plain-Webhook-Target-Version": "2026-04-21",
        "Plain-Webhook-Delivery-Attempt-Number": "4",
        "Plain-Webhook-Delivery-Attempt-Id": meta["webhookDeliveryAttemptId"],
        "Plain-Webhook-Delivery-Attempt-Timestamp": "2025-03-01T12:00:05.000Z",
    }


def test_signed_request_of_raw_bytes_signs_them_unchanged():
    body, headers = signed_request(b"\xffnot json", "k")
    assert body == b"\xffnot json"
    assert verify(body, headers["Plain-Request-Signature"], "k")
    assert "Plain-Event-Id" not in headers


def test_attempts_of_one_event_share_id_but_not_attempt_id():
    kw = dict(
        event_id=plain_id("pEv", "r"),
        customer_id=plain_id("c", "r"),
        email="r@example.com",
        groups_before=[],
        groups_after=[A],
        timestamp=T0,
        generation="versioned",
    )
    first, second = membership_event(**kw, attempt=1), membership_event(**kw, attempt=2)
    assert first["id"] == second["id"]
    assert first["webhookMetadata"]["webhookDeliveryAttemptId"] != second["webhookMetadata"]["webhookDeliveryAttemptId"]
