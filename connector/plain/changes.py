"""Turn a signed Plain webhook body into the facts the store acts on.

This runs on the receive path for every request, so the body is parsed exactly once
(orjson, then one pydantic validation of the model picked by event type; measured faster
than ``model_validate_json`` on the seed event) and nothing else is copied.

A membership event's change is always the difference between the after-set and the
before-set of group memberships, keyed by ``customerGroupId``. ``changeType`` is never
trusted on its own, and a group missing from the after-set is only a removal when it was
in the before-set: Plain's sets are snapshots, not deltas.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from connector.plain import events as ev
from connector.text import storable_json

# Best-effort fields come from a body that failed validation: keep them only when they are
# as safe to store and log as a validated id.
_TOKEN = re.compile(ev.ID_PATTERN)
_ATTEMPT_FIELD = "webhookMetadata.webhookDeliveryAttemptTimestamp"
_JSON_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}

__all__ = [
    "CustomerInfo",
    "EventKind",
    "GroupInfo",
    "MembershipChange",
    "ParsedEvent",
    "UnprocessableEvent",
    "attempt_time_of",
    "load_json",
    "normalise_time",
    "parse_event",
]


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    id: str
    email: str | None
    external_id: str | None
    full_name: str | None


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: str
    key: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class MembershipChange:
    customer: CustomerInfo
    group: GroupInfo
    added: bool  # True: joined the group; False: left it


EventKind = Literal["membership", "customer_updated", "customer_deleted", "group_changed", "ignored"]


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """One understood event. ``event_time`` is text that sorts chronologically."""

    event_id: str
    event_type: str
    event_time: str
    attempt_time: datetime | None
    kind: EventKind
    customer: CustomerInfo | None
    group: GroupInfo | None
    group_deleted: bool
    changes: tuple[MembershipChange, ...]


class UnprocessableEvent(ValueError):
    """A signed body we cannot understand. The receiver stores it raw and reports it.

    The best-effort fields are filled from the raw JSON when it is an object, so the
    receiver can still apply the replay window and deduplicate by id.
    """

    def __init__(
        self,
        reason: str,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        attempt_time: datetime | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.event_type = event_type
        self.attempt_time = attempt_time


def parse_event(body: bytes) -> ParsedEvent:
    """Parse a webhook body. Raises :class:`UnprocessableEvent` and nothing else."""
    try:
        data = load_json(body)
    except Exception as exc:  # JSONDecodeError, RecursionError, or a non-bytes argument
        raise UnprocessableEvent(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        kind = _JSON_NAMES.get(type(data), type(data).__name__)
        raise UnprocessableEvent(f"body is a JSON {kind}, not an object")
    try:
        return _parse(data)
    except UnprocessableEvent as exc:
        raise _with_best_effort(exc, data) from None
    except Exception as exc:
        # Includes RecursionError: whatever a hostile body triggers must not crash the
        # receiver, and the body is still kept raw for an operator.
        reason = f"unexpected {type(exc).__name__} while parsing: {exc}"
        raise _with_best_effort(UnprocessableEvent(reason), data) from None


def attempt_time_of(body: bytes) -> datetime | None:
    """The delivery attempt time of a body, or None. Parses the body: prefer the
    ``attempt_time`` of :func:`parse_event`'s result or exception when you have one."""
    try:
        data = load_json(body)
    except Exception:
        return None
    return _raw_attempt_time(data) if isinstance(data, dict) else None


def load_json(body: bytes) -> Any:
    """Any valid JSON text (RFC 8259, UTF-8), with lone surrogates made storable.

    orjson refuses escaped lone surrogates (``"\\ud83d"``) although JSON allows them, so a
    body it refuses gets a second reading by the standard library (slower, but the bodies
    orjson reads never pay for it). NaN and Infinity are not JSON and stay refused.
    Raises orjson's JSONDecodeError (a ValueError) for anything that is not JSON.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        first_error = exc
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise first_error
    try:
        data = json.loads(bytes(body).decode("utf-8"), parse_constant=_not_json)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise first_error from None
    return storable_json(data)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def normalise_time(value: str) -> str:
    """ISO 8601 with an offset -> UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (sorts as text).

    Raises ValueError for text without a UTC offset: guessing the zone could reorder
    events for the same customer and group.
    """
    d = _to_utc(value)
    # %-formatting: about twice as fast as isoformat(timespec=...) on this hot path, and
    # %04d keeps years < 1000 sortable where strftime("%Y") would not pad them.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond)  # noqa: UP031


def _to_utc(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)  # 3.11+: "Z", offsets, 0-9 fraction digits
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValueError("no UTC offset")
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # e.g. year 1 with a positive offset
        raise ValueError(str(exc)) from None


def _parse(data: dict[str, Any]) -> ParsedEvent:
    event_type = _raw_event_type(data)
    if event_type is None:
        raise UnprocessableEvent("no event type: neither `type` nor `payload.eventType`")
    if not _TOKEN.fullmatch(event_type):
        raise UnprocessableEvent("event type is not a printable token of at most 256 chars")
    model = ev.model_for(event_type, data.get("payload"))
    try:
        env = model.model_validate(data)
    except ValidationError as exc:
        raise UnprocessableEvent(f"{event_type}: {_describe(exc)}") from None
    event_time = _time_field(env.timestamp, "timestamp")
    meta = env.webhookMetadata
    attempt_raw = meta.webhookDeliveryAttemptTimestamp if meta else None
    attempt_time = None
    if attempt_raw is not None:
        attempt_time = _to_utc_field(attempt_raw, _ATTEMPT_FIELD)
    common = (env.id, event_type, event_time, attempt_time)

    if isinstance(env, (ev.MembershipsChangedEvent, ev.LegacyMembershipsChangedEvent)):
        customer, changes = _membership_changes(env)
        return ParsedEvent(*common, "membership", customer, None, False, changes)
    if isinstance(env, ev.CustomerSnapshotEvent):
        customer = _customer(env.payload.customer)
        return ParsedEvent(*common, "customer_updated", customer, None, False, ())
    if isinstance(env, ev.CustomerDeletedEvent):
        customer = _customer(env.payload.previousCustomer)
        return ParsedEvent(*common, "customer_deleted", customer, None, False, ())
    if isinstance(env, ev.GroupChangedEvent):
        p = env.payload
        deleted = p.deleted
        raw_group = p.previousCustomerGroup if deleted else p.customerGroup
        if raw_group is None:  # GroupChangedPayload's validator rules this out
            raise UnprocessableEvent(f"{event_type}: no customer group in payload")
        group = GroupInfo(raw_group.id, raw_group.key or None, raw_group.name or None)
        return ParsedEvent(*common, "group_changed", None, group, deleted, ())
    return ParsedEvent(*common, "ignored", None, None, False, ())


def _membership_changes(
    env: ev.MembershipsChangedEvent | ev.LegacyMembershipsChangedEvent,
) -> tuple[CustomerInfo, tuple[MembershipChange, ...]]:
    p = env.payload
    if isinstance(p, ev.MembershipsChangedPayload):
        after = p.customer.customerGroupMemberships
        before = p.previousCustomer.customerGroupMemberships
    else:
        after, before = p.customerGroupMemberships, p.previousCustomerGroupMemberships
    customer = _customer(p.customer)
    return customer, _diff(customer, after, before)


def _diff(
    customer: CustomerInfo,
    after: Sequence[ev.GroupMembership],
    before: Sequence[ev.GroupMembership],
) -> tuple[MembershipChange, ...]:
    """Added in after-set order, then removed in before-set order (deterministic)."""
    after_by_id = {m.customerGroupId: m for m in after}
    before_by_id = {m.customerGroupId: m for m in before}
    changes = [MembershipChange(customer, _group(m), True) for gid, m in after_by_id.items() if gid not in before_by_id]
    changes.extend(
        MembershipChange(customer, _group(m), False) for gid, m in before_by_id.items() if gid not in after_by_id
    )
    return tuple(changes)


def _group(m: ev.GroupMembership) -> GroupInfo:
    g = m.customerGroup
    if g is None:
        return GroupInfo(m.customerGroupId, None, None)
    # Empty key/name are as useless to a mapping as missing ones.
    return GroupInfo(m.customerGroupId, g.key or None, g.name or None)


def _customer(c: ev.Customer) -> CustomerInfo:
    email = c.email.email if c.email is not None else None
    if email is not None:
        email = email.strip() or None
    return CustomerInfo(c.id, email, c.externalId or None, c.fullName or None)


def _time_field(value: str, where: str) -> str:
    try:
        return normalise_time(value)
    except ValueError as exc:
        raise UnprocessableEvent(f"{where}: not an ISO 8601 time with offset ({exc})") from None


def _to_utc_field(value: str, where: str) -> datetime:
    try:
        return _to_utc(value)
    except ValueError as exc:
        raise UnprocessableEvent(f"{where}: not an ISO 8601 time with offset ({exc})") from None


def _describe(exc: ValidationError) -> str:
    # Locations and messages only: input values may be personal data (emails, names)
    # and this reason ends up in logs and the status page.
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    parts = [f"{'.'.join(str(x) for x in e['loc']) or '(body)'}: {e['msg']}" for e in errors[:3]]
    if len(errors) > 3:
        parts.append(f"and {len(errors) - 3} more")
    return "; ".join(parts)


def _raw_event_type(data: dict[str, Any]) -> str | None:
    t = data.get("type")
    if isinstance(t, str) and t:
        return t
    payload = data.get("payload")
    if isinstance(payload, dict):
        t = payload.get("eventType")
        if isinstance(t, str) and t:
            return t
    return None


def _raw_attempt_time(data: dict[str, Any]) -> datetime | None:
    meta = data.get("webhookMetadata")
    value = meta.get("webhookDeliveryAttemptTimestamp") if isinstance(meta, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return _to_utc(value)
    except ValueError:
        return None


def _with_best_effort(exc: UnprocessableEvent, data: dict[str, Any]) -> UnprocessableEvent:
    """Fill what can still be read from the raw object; never raises."""
    try:
        raw_id = data.get("id")
        if exc.event_id is None and isinstance(raw_id, str) and _TOKEN.fullmatch(raw_id):
            exc.event_id = raw_id
        raw_type = _raw_event_type(data)
        if exc.event_type is None and raw_type is not None and _TOKEN.fullmatch(raw_type):
            exc.event_type = raw_type
        if exc.attempt_time is None:
            exc.attempt_time = _raw_attempt_time(data)
    except Exception:  # pragma: no cover - dict.get on orjson output cannot fail
        pass
    return exc
