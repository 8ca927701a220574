"""What parse_event makes of well-formed Plain events: the membership diff above all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from connector.plain import events as ev
from connector.plain.changes import (
    CustomerInfo,
    GroupInfo,
    MembershipChange,
    parse_event,
)
from connector.testing.plain import (
    customer_event,
    event,
    group_event,
    membership_event,
    plain_id,
    seed_event,
    with_fresh_attempt,
)

CID = plain_id("c", "alice")
EMAIL = "alice@example.com"
A = (plain_id("cg", "a"), "enterprise", "Enterprise")
B = (plain_id("cg", "b"), "beta", "Beta testers")
C = (plain_id("cg", "c"), "vip", "VIP")
D = (plain_id("cg", "d"), "churned", "Churned")
T0 = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
GENERATIONS = ["versioned", "legacy"]


def _membership(before, after, generation, **kw):
    body = membership_event(
        event_id=kw.pop("event_id", plain_id("pEv", "m", before, after)),
        customer_id=CID,
        email=EMAIL,
        groups_before=before,
        groups_after=after,
        timestamp=kw.pop("timestamp", T0),
        generation=generation,
        **kw,
    )
    return body


def _parse(body: dict):
    return parse_event(orjson.dumps(body))


def _summary(parsed):
    return sorted((c.group.id, c.added) for c in parsed.changes)


# --- the seed example ---------------------------------------------------------------


def test_seed_example_is_one_added_membership():
    parsed = _parse(seed_event())
    customer = CustomerInfo(
        id="c_01GST0WAGQ7RSMMEXZGA360MFY",
        email="colby45@example.com",
        external_id="external_01GST0WAFACKR7NA5BH60W9RWA",
        full_name="Colby Kunde",
    )
    group = GroupInfo(id="cg_01GST0W9Z0WVHBSAPA9HQR7Q2E", key="enterprise", name="Enterprise")
    assert parsed.event_id == "pEv_01GST0WAZ0W31PN3BH76M9E2SP"
    assert parsed.event_type == "customer.customer_groups_memberships_canged"
    assert parsed.kind == "membership"
    assert parsed.event_time == "2023-02-21T12:58:51.232000Z"
    assert parsed.attempt_time == datetime(2023, 2, 21, 12, 58, 51, 729000, tzinfo=UTC)
    assert parsed.customer == customer
    assert parsed.changes == (MembershipChange(customer, group, added=True),)
    assert parsed.group is None and parsed.group_deleted is False


def test_seed_bytes_parse_verbatim_not_just_reencoded():
    from importlib.resources import files

    raw = files("connector.testing").joinpath("data/seed-event.json").read_bytes()
    assert raw.startswith(b'{\n  "timestamp": "2023-02-21T12:58:51.232Z"')
    assert parse_event(raw).changes[0].group.key == "enterprise"


def test_with_fresh_attempt_only_moves_the_attempt_time():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    original = seed_event()
    fresh = with_fresh_attempt(original, now)
    assert _parse(fresh).attempt_time == now
    assert original["webhookMetadata"]["webhookDeliveryAttemptTimestamp"].startswith("2023")
    fresh["webhookMetadata"]["webhookDeliveryAttemptTimestamp"] = original["webhookMetadata"][
        "webhookDeliveryAttemptTimestamp"
    ]
    assert fresh == original


# --- diffs ----------------------------------------------------------------------------


@pytest.mark.parametrize("generation", GENERATIONS)
def test_add_two_remove_one_in_one_event(generation):
    parsed = _parse(_membership([A, D], [A, B, C], generation))
    assert parsed.kind == "membership"
    assert _summary(parsed) == sorted([(B[0], True), (C[0], True), (D[0], False)])
    by_id = {c.group.id: c for c in parsed.changes}
    assert by_id[B[0]].group == GroupInfo(*B)
    assert by_id[D[0]].group == GroupInfo(*D)  # key/name of a removed group come from before
    assert all(c.customer.id == CID and c.customer.email == EMAIL for c in parsed.changes)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_changes_are_ordered_added_then_removed(generation):
    parsed = _parse(_membership([D, A], [C, B], generation))
    assert [(c.group.id, c.added) for c in parsed.changes] == [
        (C[0], True),
        (B[0], True),
        (D[0], False),
        (A[0], False),
    ]


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("groups", [[], [A], [A, B, C]])
def test_equal_sets_are_a_no_op(generation, groups):
    parsed = _parse(_membership(groups, list(reversed(groups)), generation))
    assert parsed.kind == "membership"
    assert parsed.changes == ()
    assert parsed.customer is not None and parsed.customer.id == CID


@pytest.mark.parametrize("generation", GENERATIONS)
def test_absent_from_after_is_not_a_removal_unless_in_before(generation):
    body = _membership([A], [A, B], generation)
    body["payload"]["changeType"] = "REMOVED"  # informative only, and here it lies
    parsed = _parse(body)
    assert _summary(parsed) == [(B[0], True)]
    assert all(c.group.id not in (C[0], D[0]) for c in parsed.changes)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_change_type_does_not_decide_direction(generation):
    body = _membership([A, B], [A], generation)
    body["payload"]["changeType"] = "ADDED"
    assert _summary(_parse(body)) == [(B[0], False)]


def test_duplicate_memberships_in_a_set_count_once():
    body = _membership([], [A, A], "versioned")
    assert _summary(_parse(body)) == [(A[0], True)]


def test_membership_without_customer_group_object_still_counts():
    body = _membership([], [A], "versioned")
    del body["payload"]["customer"]["customerGroupMemberships"][0]["customerGroup"]
    (change,) = _parse(body).changes
    assert change.group == GroupInfo(A[0], None, None)


def test_generation_is_read_from_shape_not_name():
    legacy = _membership([], [A], "legacy")
    legacy["type"] = legacy["payload"]["eventType"] = ev.MEMBERSHIPS_CHANGED
    versioned = _membership([A], [], "versioned")
    versioned["type"] = ev.LEGACY_MEMBERSHIPS_CHANGED
    assert _summary(_parse(legacy)) == [(A[0], True)]
    assert _summary(_parse(versioned)) == [(A[0], False)]


def test_event_type_falls_back_to_payload_event_type():
    body = _membership([], [A], "versioned")
    del body["type"]
    parsed = _parse(body)
    assert parsed.event_type == ev.MEMBERSHIPS_CHANGED
    assert parsed.kind == "membership" and len(parsed.changes) == 1


def test_unknown_fields_are_ignored_everywhere():
    body = _membership([], [A], "versioned")
    body["brandNew"] = {"x": [1, 2]}
    body["payload"]["customer"]["tier"] = {"id": "tier_1"}
    body["payload"]["customer"]["customerGroupMemberships"][0]["customerGroup"]["x"] = 1
    body["webhookMetadata"]["somethingElse"] = True
    assert _summary(_parse(body)) == [(A[0], True)]


def test_customer_fields_are_normalised():
    body = _membership([], [A], "versioned")
    body["payload"]["customer"]["email"]["email"] = "  alice@example.com "
    body["payload"]["customer"]["externalId"] = ""
    parsed = _parse(body)
    assert parsed.customer == CustomerInfo(CID, "alice@example.com", None, "Test Customer")


def test_customer_without_email_object_is_understood():
    body = _membership([], [A], "versioned")
    body["payload"]["customer"]["email"] = None
    assert _parse(body).customer.email is None


# --- other event kinds ----------------------------------------------------------------


@pytest.mark.parametrize("event_type", [ev.CUSTOMER_UPDATED, ev.CUSTOMER_CHANGED, ev.CUSTOMER_CREATED])
def test_customer_snapshot_events_carry_the_after_snapshot(event_type):
    body = customer_event(
        event_id=plain_id("pEv", event_type),
        event_type=event_type,
        customer_id=CID,
        email="new@example.com",
        previous_email="old@example.com",
        groups=[A],
        timestamp=T0,
    )
    parsed = _parse(body)
    assert parsed.kind == "customer_updated"
    assert parsed.event_type == event_type
    assert parsed.customer == CustomerInfo(CID, "new@example.com", None, "Test Customer")
    assert parsed.changes == ()  # memberships move only through membership events


def test_customer_deleted_carries_the_deleted_customer():
    body = customer_event(
        event_id=plain_id("pEv", "del"),
        event_type=ev.CUSTOMER_DELETED,
        customer_id=CID,
        email=EMAIL,
        timestamp=T0,
    )
    parsed = _parse(body)
    assert parsed.kind == "customer_deleted"
    assert parsed.customer == CustomerInfo(CID, EMAIL, None, "Test Customer")
    assert parsed.changes == ()


@pytest.mark.parametrize(
    ("change", "previous", "expected", "deleted"),
    [
        ("ADDED", None, GroupInfo(*A), False),
        ("UPDATED", (A[0], "old-key", "Old name"), GroupInfo(*A), False),
        ("REMOVED", None, GroupInfo(*A), True),
    ],
)
def test_group_changed(change, previous, expected, deleted):
    body = group_event(
        event_id=plain_id("pEv", change),
        change=change,
        group=A,
        previous_group=previous,
        timestamp=T0,
    )
    parsed = _parse(body)
    assert parsed.kind == "group_changed"
    assert parsed.group == expected
    assert parsed.group_deleted is deleted
    assert parsed.customer is None and parsed.changes == ()


def test_group_changed_without_change_type_infers_deletion_from_shape():
    body = group_event(event_id=plain_id("pEv", "g"), change="REMOVED", group=B, timestamp=T0)
    del body["payload"]["changeType"]
    parsed = _parse(body)
    assert parsed.group == GroupInfo(*B) and parsed.group_deleted is True


@pytest.mark.parametrize(
    "event_type",
    ["thread.thread_created", "timeline.timeline_entry_changed", "customer.something_new"],
)
def test_other_types_are_ignored_but_identified(event_type):
    body = event(
        event_id=plain_id("pEv", event_type),
        event_type=event_type,
        payload={"thread": {"id": 5, "nested": [[[]]]}},
        timestamp="2025-03-01T14:00:00+02:00",
    )
    parsed = _parse(body)
    assert parsed.kind == "ignored"
    assert parsed.event_id == plain_id("pEv", event_type)
    assert parsed.event_type == event_type
    assert parsed.event_time == "2025-03-01T12:00:00.000000Z"
    assert parsed.customer is None and parsed.group is None and parsed.changes == ()


def test_ignored_type_does_not_need_a_payload():
    body = {"id": "pEv_1", "type": "thread.chat_sent", "timestamp": "2025-01-01T00:00:00Z"}
    parsed = _parse(body)
    assert parsed.kind == "ignored" and parsed.attempt_time is None


def test_attempt_time_is_aware_utc():
    at = datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    body = _membership([], [A], "versioned", attempt_time=at, attempt=3)
    parsed = _parse(body)
    assert parsed.attempt_time == at
    assert parsed.attempt_time.utcoffset() == timedelta(0)
