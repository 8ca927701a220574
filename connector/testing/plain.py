"""Builders for realistic, signed Plain webhook requests (tests and the Plain simulator).

Versioned bodies follow Plain's JSON Schemas (webhook versions 2024-09-18 .. 2026-04-21),
including Plain's id format, so a test can check a body against the schema as well as
against our parser. Legacy bodies are shaped like the 2023 documentation's example (the
"seed"). Ids the caller does not choose are derived deterministically from the inputs,
so building the same event twice gives the same body.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from connector.plain import events as ev
from connector.plain.send import plain_time, signed_request, with_fresh_attempt

__all__ = [
    "LATEST_VERSION",
    "WORKSPACE_ID",
    "customer_event",
    "event",
    "group_event",
    "membership_event",
    "new_event_id",
    "plain_id",
    "plain_time",
    "seed_event",
    "signed_request",
    "with_fresh_attempt",
]

Group = tuple[str, str, str]  # (customerGroupId, key, name)
Generation = Literal["versioned", "legacy"]

LATEST_VERSION = "2026-04-21"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def plain_id(prefix: str, *parts: object) -> str:
    """A Plain-format id (``prefix_`` + 26 Crockford base32 chars) derived from ``parts``."""
    n = int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest(), "big")
    n >>= 256 - 130  # 26 chars x 5 bits
    chars = []
    for _ in range(26):
        n, r = divmod(n, 32)
        chars.append(_CROCKFORD[r])
    return f"{prefix}_{''.join(reversed(chars))}"


def new_event_id() -> str:
    """A fresh, random ``pEv_`` id."""
    return plain_id("pEv", uuid.uuid4().hex)


WORKSPACE_ID = plain_id("w", "workspace")
_USER_ACTOR = {"actorType": "user", "userId": plain_id("u", "user")}


def _group(g: Group, workspace_id: str, ts: str) -> dict[str, Any]:
    gid, key, name = g
    return {
        "id": gid,
        "workspaceId": workspace_id,
        "name": name,
        "key": key,
        "color": "#000000",
        "createdAt": ts,
        "createdBy": _USER_ACTOR,
        "updatedAt": ts,
        "updatedBy": _USER_ACTOR,
    }


def _membership(customer_id: str, g: Group, workspace_id: str, ts: str, legacy: bool = False) -> dict[str, Any]:
    group = _group(g, workspace_id, ts)
    if legacy:
        del group["workspaceId"]  # the 2023 example's group has none
    return {
        "customerId": customer_id,
        "customerGroupId": g[0],
        "workspaceId": workspace_id,
        "customerGroup": group,
        "createdAt": ts,
        "createdBy": _USER_ACTOR,
        "updatedAt": ts,
        "updatedBy": _USER_ACTOR,
    }


def _customer(
    customer_id: str,
    email: str,
    full_name: str,
    external_id: str | None,
    ts: str,
    memberships: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """A customer snapshot; ``memberships=None`` gives the legacy shape (no memberships)."""
    c: dict[str, Any] = {
        "id": customer_id,
        "email": {"email": email, "isVerified": False, "verifiedAt": None},
        "externalId": external_id,
        "fullName": full_name,
        "shortName": full_name.split(" ")[0] or None,
        "createdAt": ts,
        "createdBy": _USER_ACTOR,
        "updatedAt": ts,
        "updatedBy": _USER_ACTOR,
    }
    if memberships is None:
        c.update(assignedAt=None, assignedToUser=None, status="ACTIVE", statusChangedAt=ts)
    else:
        c["customerGroupMemberships"] = memberships
    return c


def event(
    *,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    timestamp: datetime | str,
    attempt: int = 1,
    attempt_time: datetime | None = None,
    version: str | None = LATEST_VERSION,
    workspace_id: str = WORKSPACE_ID,
) -> dict[str, Any]:
    """Any event in Plain's envelope (also the way to build types we ignore).

    ``version=None`` leaves out ``webhookTargetVersion``, as in pre-versioning bodies.
    """
    meta: dict[str, Any] = {"webhookTargetId": plain_id("whTarget", workspace_id)}
    if version is not None:
        meta["webhookTargetVersion"] = version
    meta.update(
        webhookDeliveryAttemptId=plain_id("whAttempt", event_id, attempt),
        webhookDeliveryAttemptNumber=attempt,
        webhookDeliveryAttemptTimestamp=plain_time(attempt_time or datetime.now(UTC)),
    )
    return {
        "timestamp": plain_time(timestamp),
        "workspaceId": workspace_id,
        "payload": {"eventType": event_type, **payload},
        "id": event_id,
        "webhookMetadata": meta,
        "type": event_type,
    }


def membership_event(
    *,
    event_id: str,
    customer_id: str,
    email: str,
    groups_before: list[Group],
    groups_after: list[Group],
    timestamp: datetime | str,
    generation: Generation,
    attempt: int = 1,
    attempt_time: datetime | None = None,
    version: str = LATEST_VERSION,
    workspace_id: str = WORKSPACE_ID,
    full_name: str = "Test Customer",
    external_id: str | None = None,
) -> dict[str, Any]:
    """A membership-changed event moving the customer from ``groups_before`` to ``groups_after``.

    ``version`` only applies to the versioned generation (it must match the schema a test
    validates against); legacy bodies have no version, like the seed.
    """
    ts = plain_time(timestamp)
    legacy = generation == "legacy"
    before = [_membership(customer_id, g, workspace_id, ts, legacy) for g in groups_before]
    after = [_membership(customer_id, g, workspace_id, ts, legacy) for g in groups_after]
    before_ids = {g[0] for g in groups_before}
    added = any(g[0] not in before_ids for g in groups_after)
    change_type = "ADDED" if added or len(groups_after) >= len(groups_before) else "REMOVED"
    person = (customer_id, email, full_name, external_id, ts)
    if generation == "versioned":
        event_type = ev.MEMBERSHIPS_CHANGED
        payload: dict[str, Any] = {
            "changeType": change_type,
            "customer": _customer(*person, after),
            "previousCustomer": _customer(*person, before),
        }
    elif generation == "legacy":
        event_type = ev.LEGACY_MEMBERSHIPS_CHANGED
        payload = {
            "changeType": change_type,
            "previousCustomerGroupMemberships": before,
            "customerGroupMemberships": after,
            "customer": _customer(*person, None),
        }
    else:
        raise ValueError(f"generation must be 'versioned' or 'legacy', not {generation!r}")
    return event(
        event_id=event_id,
        event_type=event_type,
        payload=payload,
        timestamp=timestamp,
        attempt=attempt,
        attempt_time=attempt_time,
        version=version if generation == "versioned" else None,
        workspace_id=workspace_id,
    )


def customer_event(
    *,
    event_id: str,
    event_type: str,
    customer_id: str,
    email: str,
    timestamp: datetime | str,
    previous_email: str | None = None,
    groups: Sequence[Group] = (),
    full_name: str = "Test Customer",
    external_id: str | None = None,
    **envelope: Any,
) -> dict[str, Any]:
    """customer_created / _updated / _changed / _deleted, versioned schema shape.

    ``previous_email`` is the email before the change (default: unchanged). For
    customer_deleted the snapshot with ``email`` is the one that was deleted.
    """
    ts = plain_time(timestamp)
    wid = envelope.get("workspace_id", WORKSPACE_ID)
    ms = [_membership(customer_id, g, wid, ts) for g in groups]
    now = _customer(customer_id, email, full_name, external_id, ts, ms)
    prev = _customer(customer_id, previous_email or email, full_name, external_id, ts, ms)
    if event_type == ev.CUSTOMER_DELETED:
        payload: dict[str, Any] = {"previousCustomer": now}
    elif event_type == ev.CUSTOMER_CREATED:
        payload = {"customer": now}
    elif event_type == ev.CUSTOMER_UPDATED:
        payload = {"customer": now, "previousCustomer": prev}
    elif event_type == ev.CUSTOMER_CHANGED:
        payload = {"changeType": "UPDATED", "customer": now, "previousCustomer": prev}
    else:
        raise ValueError(f"not a customer event type: {event_type!r}")
    return event(event_id=event_id, event_type=event_type, payload=payload, timestamp=timestamp, **envelope)


def group_event(
    *,
    event_id: str,
    change: Literal["ADDED", "UPDATED", "REMOVED"],
    group: Group,
    timestamp: datetime | str,
    previous_group: Group | None = None,
    **envelope: Any,
) -> dict[str, Any]:
    """customer_group_changed. For REMOVED, ``group`` is the group that was deleted."""
    ts = plain_time(timestamp)
    wid = envelope.get("workspace_id", WORKSPACE_ID)
    payload: dict[str, Any] = {"changeType": change}
    if change == "REMOVED":
        payload["previousCustomerGroup"] = _group(group, wid, ts)
    else:
        payload["customerGroup"] = _group(group, wid, ts)
        if change == "UPDATED":
            payload["previousCustomerGroup"] = _group(previous_group or group, wid, ts)
    return event(event_id=event_id, event_type=ev.GROUP_CHANGED, payload=payload, timestamp=timestamp, **envelope)


def seed_event() -> dict[str, Any]:
    """The 2023 documentation example, verbatim (a fresh copy on every call).

    Its attempt timestamp is from 2023: wrap it in :func:`with_fresh_attempt` to get past
    the replay window.
    """
    data = importlib.resources.files("connector.testing").joinpath("data/seed-event.json")
    return orjson.loads(data.read_bytes())
