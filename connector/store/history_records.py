"""What the operator's history shows: attempts per destination, a customer's pairs, recent events.

Part of the store interface (:mod:`connector.store.base` re-exports every name); kept apart
so each module stays readable. The reads that fill them are in :mod:`connector.store.history`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: what an attempt row records: a runner's outcome, or an operator's action on a dead letter
AttemptKind = Literal["done", "skipped", "retry", "dead", "replayed", "discarded"]
#: rows retention prunes: inbox ids, attempt history, kept unprocessable bodies, dead letters
PruneKind = Literal["inbox", "attempts", "unprocessable", "dead_letters"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at one destination, with the CRM's answer (``reason``), kept for history."""

    at: float
    target: str
    dest: str
    group_id: str
    action: str
    kind: AttemptKind
    #: 1 for the first try of this change; 0 for an operator's action
    attempt: int
    reason: str | None
    event_id: str


@dataclass(slots=True)
class PairHistory:
    """One (group, target, destination) of a customer: wanted, believed applied, and the tries."""

    target: str
    dest: str
    group_id: str
    group_key: str | None = None
    group_name: str | None = None
    #: desired membership (None: no event seen for the pair)
    desired: bool | None = None
    #: what the CRM is believed to have, and how we know (assumed, confirmed, not_in_crm)
    applied: bool | None = None
    applied_note: str | None = None
    applied_at: float | None = None
    applied_detail: str | None = None
    #: work waiting: attempts so far and the last error
    pending: bool = False
    pending_attempts: int = 0
    pending_error: str | None = None
    dead_letters: int = 0
    #: newest first
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(slots=True)
class CustomerHistory:
    customer_id: str
    email: str | None = None
    external_id: str | None = None
    full_name: str | None = None
    #: desired state of groups no mapping routes anywhere (no pair to show them under)
    memberships: dict[str, bool] = field(default_factory=dict)
    pairs: list[PairHistory] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RecentEvent:
    """An inbox row and, per target, where its changes stand (newest attempt, or pending)."""

    event_id: str
    event_type: str | None
    received_at: float
    status: str
    reason: str | None
    outcomes: dict[str, str] = field(default_factory=dict)
