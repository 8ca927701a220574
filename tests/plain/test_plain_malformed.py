"""Bodies parse_event must refuse, always as UnprocessableEvent and never by crashing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from connector.plain.changes import UnprocessableEvent, attempt_time_of, parse_event
from connector.testing.plain import membership_event, plain_id
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EVENT_ID = plain_id("pEv", "malformed")
ATTEMPT = datetime(2025, 3, 1, 12, 0, 1, 500000, tzinfo=UTC)
A = (plain_id("cg", "a"), "enterprise", "Enterprise")
B = (plain_id("cg", "b"), "beta", "Beta")


def _valid(generation: str = "versioned") -> dict[str, Any]:
    return membership_event(
        event_id=EVENT_ID,
        customer_id=plain_id("c", "x"),
        email="x@example.com",
        groups_before=[A],
        groups_after=[B],
        timestamp="2025-03-01T12:00:00Z",
        generation=generation,
        attempt_time=ATTEMPT,
    )


def _mutated(fn: Callable[[dict[str, Any]], None], generation: str = "versioned") -> bytes:
    body = _valid(generation)
    fn(body)
    return orjson.dumps(body)


def _pop(path: str) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node.pop(last)

    return apply


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return apply


_MEMBERSHIP0 = "payload.customer.customerGroupMemberships.0"

# (name, body, expected event_id, reason must mention)
NOT_AN_EVENT = [
    ("empty", b"", None, "JSON"),
    ("not json", b"hello", None, "JSON"),
    ("truncated", orjson.dumps(_valid())[:-5], None, "JSON"),
    ("json array", b"[1, 2, 3]", None, "array"),
    ("json string", b'"pEv_1"', None, "string"),
    ("json null", b"null", None, "null"),
    ("json number", b"42", None, "number"),
    ("invalid utf-8", b'{"id": "pEv_\xff\xfe", "type": "x"}', None, "JSON"),
    # valid JSON (lone surrogates are), but no event: tests/plain/test_plain_text.py
    ("lone surrogate, no type", b'{"id": "\\ud800"}', None, "event type"),
    ("utf-8 bom", b"\xef\xbb\xbf" + orjson.dumps(_valid()), None, "JSON"),
    ("NaN", b'{"id": "pEv_1", "x": NaN}', None, "JSON"),
    ("10k-deep nesting", b"[" * 10_000 + b"]" * 10_000, None, "JSON"),
    (
        "10k-deep nesting inside an event",
        orjson.dumps(_valid())[:-1] + b',"deep":' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        None,
        "JSON",
    ),
]

BAD_EVENTS = [
    ("missing id", _mutated(_pop("id")), None, "id"),
    ("id is a number", _mutated(_set("id", 12345)), None, "id"),
    ("id is empty", _mutated(_set("id", "")), None, "id"),
    ("id has spaces", _mutated(_set("id", "pEv 1")), None, "id"),
    ("id has NUL", _mutated(_set("id", "pEv_\x001")), None, "id"),
    ("missing timestamp", _mutated(_pop("timestamp")), EVENT_ID, "timestamp"),
    ("timestamp is unix number", _mutated(_set("timestamp", 1740830400)), EVENT_ID, "timestamp"),
    ("timestamp without offset", _mutated(_set("timestamp", "2025-03-01T12:00:00")), EVENT_ID, "timestamp"),
    ("timestamp not a date", _mutated(_set("timestamp", "yesterday")), EVENT_ID, "timestamp"),
    ("timestamp month 13", _mutated(_set("timestamp", "2025-13-01T00:00:00Z")), EVENT_ID, "timestamp"),
    ("no type anywhere", _mutated(lambda b: (b.pop("type"), b["payload"].pop("eventType"))), EVENT_ID, "event type"),
    ("type is a number", _mutated(_set("type", 7)), EVENT_ID, "type"),
    ("payload missing", _mutated(_pop("payload")), EVENT_ID, "payload"),
    ("payload is a list", _mutated(_set("payload", [])), EVENT_ID, "payload"),
    ("previousCustomer missing", _mutated(_pop("payload.previousCustomer")), EVENT_ID, "previousCustomer"),
    (
        "after-set missing",
        _mutated(_pop("payload.customer.customerGroupMemberships")),
        EVENT_ID,
        "payload.customer.customerGroupMemberships",
    ),
    (
        "before-set is null",
        _mutated(_set("payload.previousCustomer.customerGroupMemberships", None)),
        EVENT_ID,
        "payload.previousCustomer.customerGroupMemberships",
    ),
    ("customerGroupId missing", _mutated(_pop(f"{_MEMBERSHIP0}.customerGroupId")), EVENT_ID, "customerGroupId"),
    ("customerGroupId is a number", _mutated(_set(f"{_MEMBERSHIP0}.customerGroupId", 5)), EVENT_ID, "customerGroupId"),
    ("customerGroupId empty", _mutated(_set(f"{_MEMBERSHIP0}.customerGroupId", "")), EVENT_ID, "customerGroupId"),
    ("group key is a number", _mutated(_set(f"{_MEMBERSHIP0}.customerGroup.key", 1)), EVENT_ID, "key"),
    ("customer id missing", _mutated(_pop("payload.customer.id")), EVENT_ID, "payload.customer.id"),
    ("customer ids differ", _mutated(_set("payload.previousCustomer.id", "c_other")), EVENT_ID, "differ"),
    ("email is a string, not an object", _mutated(_set("payload.customer.email", "x@e.com")), EVENT_ID, "email"),
    (
        "legacy before-set missing",
        _mutated(_pop("payload.previousCustomerGroupMemberships"), "legacy"),
        EVENT_ID,
        "previousCustomerGroupMemberships",
    ),
    (
        "legacy after-set not a list",
        _mutated(_set("payload.customerGroupMemberships", {"a": 1}), "legacy"),
        EVENT_ID,
        "customerGroupMemberships",
    ),
    ("legacy customer missing", _mutated(_pop("payload.customer"), "legacy"), EVENT_ID, "payload.customer"),
]


@pytest.mark.parametrize(
    ("name", "body", "event_id", "mention"), NOT_AN_EVENT + BAD_EVENTS, ids=[c[0] for c in NOT_AN_EVENT + BAD_EVENTS]
)
def test_refused_as_unprocessable(name, body, event_id, mention):
    with pytest.raises(UnprocessableEvent) as info:
        parse_event(body)
    exc = info.value
    assert isinstance(exc, ValueError)
    assert mention in exc.reason, exc.reason
    assert str(exc) == exc.reason
    assert exc.event_id == event_id


@pytest.mark.parametrize(("name", "body", "event_id", "mention"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
def test_best_effort_fields_of_json_objects(name, body, event_id, mention):
    with pytest.raises(UnprocessableEvent) as info:
        parse_event(body)
    assert info.value.attempt_time == ATTEMPT
    if name != "no type anywhere":
        raw = orjson.loads(body)
        expected = raw["type"] if isinstance(raw["type"], str) else raw["payload"]["eventType"]
        assert info.value.event_type == expected


def test_type_is_a_number_still_reports_payload_event_type():
    with pytest.raises(UnprocessableEvent) as info:
        parse_event(_mutated(_set("type", 7)))
    assert info.value.event_type == "customer.customer_group_memberships_changed"


def test_bad_attempt_timestamp_is_unprocessable_without_attempt_time():
    body = _mutated(_set("webhookMetadata.webhookDeliveryAttemptTimestamp", "soon"))
    with pytest.raises(UnprocessableEvent) as info:
        parse_event(body)
    assert "webhookDeliveryAttemptTimestamp" in info.value.reason
    assert info.value.attempt_time is None
    assert info.value.event_id == EVENT_ID


def test_reason_does_not_leak_personal_data():
    body = _valid()
    body["payload"]["customer"]["customerGroupMemberships"][0]["customerGroupId"] = 5
    body["payload"]["customer"]["email"]["email"] = 99
    with pytest.raises(UnprocessableEvent) as info:
        parse_event(orjson.dumps(body))
    assert "x@example.com" not in info.value.reason
    assert "99" not in info.value.reason


def test_best_effort_id_must_be_a_safe_token():
    body = _valid()
    body["timestamp"] = None
    body["id"] = "pEv\n1"
    with pytest.raises(UnprocessableEvent) as info:
        parse_event(orjson.dumps(body))
    assert info.value.event_id is None


def test_non_bytes_input_is_unprocessable_too():
    with pytest.raises(UnprocessableEvent):
        parse_event(None)  # type: ignore[arg-type]


def test_attempt_time_of():
    assert attempt_time_of(orjson.dumps(_valid())) == ATTEMPT
    assert attempt_time_of(b"[]") is None
    assert attempt_time_of(b"\xff") is None
    assert attempt_time_of(_mutated(_pop("webhookMetadata"))) is None


# --- fuzzing: whatever comes in, only UnprocessableEvent comes out ----------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # orjson's range; beyond it dumps() itself fails
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _parse_or_refuse(body: bytes) -> None:
    try:
        parse_event(body)
    except UnprocessableEvent:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_bytes(body):
    _parse_or_refuse(body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["versioned", "legacy"]), st.data())
def test_fuzz_replace_one_value_in_a_valid_event(generation, data):
    body = _valid(generation)
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            walk(child, [*path, key])

    walk(body, [])
    path = data.draw(st.sampled_from(paths[1:]))
    mutated = copy.deepcopy(body)
    node = mutated
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = data.draw(_json)
    _parse_or_refuse(orjson.dumps(mutated))
