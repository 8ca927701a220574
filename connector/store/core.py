"""The store's rules, for every backend: what an event, an outcome or a replay does to state.

This module is the contract a store backend follows. A backend implements storage: the
:class:`Tx` primitives below inside one transaction per :class:`~connector.store.base.Store`
call, plus connections, leasing exclusivity and ``take_over``. It never re-decides what
the functions here decide. An SQL backend gets the primitives for free from
:class:`connector.store.sql.SqlTx` (portable SQL; only the placeholder style and the
claim's row locking differ per database).

State, per backend (SQLite's tables in :mod:`connector.store.sqlite.schema`):

- *inbox*: one row per event id (processed, ignored, or unprocessable with its raw body);
  its unique key is what makes Plain's redeliveries duplicates.
- *customers*, *groups*, *memberships* (desired state), each row stamped with the
  (event time, event id) of the event that wrote it. Memberships also keep the stamp of
  the oldest event seen for the pair (``Membership.first``).
- *applied*: per (target, destination, customer, group) what the CRM is believed to
  have: ``assumed`` (from an event's before-state), ``confirmed`` or ``not_in_crm``.
- *outbox*: work, one row per key while desired differs from applied, with a version that
  moves whenever desired moves, and a lease (owner, until) while a runner holds it.
- *dead letters*: work given up on, kept for an operator to replay.
- *attempts*: every outcome written back (and every replay or discard of a dead letter),
  with the CRM's answer, per destination and pair: the history an operator reads. Pruned
  with the inbox ids by retention (:func:`prune`), never needed for correctness.

The rules:

1. **Newest wins.** Stamps order by event time, then event id, compared as plain text
   (``ParsedEvent.event_time`` sorts chronologically as text): a PostgreSQL backend must
   compare with ``COLLATE "C"``. An update only lands if its stamp is newer than the row's.
2. **A late event older than any seen corrects the assumed CRM state**: its before-state
   replaces ``assumed`` applied state (never ``confirmed``), then the pair is reconciled.
3. **Reconcile** keeps the outbox equal to the difference between desired and applied; a
   row a runner holds is re-targeted (version + 1) rather than deleted, so its outcome
   cannot be mistaken for the new wish.
4. **Only the lease owner writes an outcome back** (:func:`finish_step`); a confirmation
   or skip is recorded as applied state whoever holds the lease, since it is a fact.
5. **Dead-letter replay** re-queues against desired state as it is now.
6. **History is written with the outcome**: :func:`finish` records one attempt per result
   in the same transaction, whoever holds the lease (the CRM answered either way).
7. **Retention only forgets what correctness does not need**: inbox ids older than the
   dedup window (a later redelivery is then re-applied, harmless since newest wins),
   attempts, dead letters and unprocessable bodies past their windows; never desired or
   applied state, never work. Each prune is one short transaction of at most ``limit`` rows.

Concurrency: each ``Store`` call is one transaction. The functions here read, decide and
write the state of one (customer, group) after :meth:`Tx.lock_pair`; a backend whose
transactions run concurrently (PostgreSQL replicas) makes that a lock held to commit
(e.g. ``pg_advisory_xact_lock``), SQLite's single writer needs none. Claiming must never
hand one row to two owners (SQLite: one writer; PostgreSQL: ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from connector.plain.changes import CustomerInfo, GroupInfo, MembershipChange, ParsedEvent
from connector.store.base import (
    AcceptResult,
    Attempt,
    AttemptKind,
    Finished,
    PruneKind,
    Route,
    StatusReport,
    TargetStatus,
)

#: (event time, event id): the order of facts
Stamp = tuple[str, str]
InboxStatus = Literal["processed", "ignored", "unprocessable"]
AppliedNote = Literal["assumed", "confirmed", "not_in_crm"]


@dataclass(frozen=True, slots=True)
class WorkKey:
    """One destination's view of one (customer, group): the unit of applied state and work."""

    target: str
    dest: str
    customer_id: str
    group_id: str


@dataclass(frozen=True, slots=True)
class Membership:
    """Desired state of one (customer, group)."""

    member: bool
    #: the newest event that moved it
    stamp: Stamp
    #: the oldest event seen for the pair: its before-state is the best guess of the CRM's
    first: Stamp


@dataclass(frozen=True, slots=True)
class WorkRow:
    """What :func:`finish_step` needs of a claimed outbox row as it is now."""

    version: int
    desired: bool
    lease_owner: str | None


class Tx(Protocol):
    """Storage primitives, all inside the caller's transaction. Booleans are state, not SQL."""

    def insert_event(
        self, key: str, event_type: str | None, event_time: str | None, status: InboxStatus, now: float,
        reason: str | None = None, body: bytes | None = None,
    ) -> bool:  # fmt: skip
        """Insert an inbox row unless ``key`` exists; True if inserted."""

    def delete_unprocessable(self, key: str) -> None: ...
    def lock_pair(self, customer_id: str, group_id: str) -> None:
        """Hold off other transactions touching this pair's state until commit (see above)."""

    def upsert_customer(self, customer: CustomerInfo, stamp: Stamp) -> None:
        """Insert, or update if ``stamp`` is newer; a missing email keeps the known one."""

    def upsert_group(self, group: GroupInfo, stamp: Stamp, deleted: bool) -> None:
        """Insert, or update if ``stamp`` is newer; a missing key or name keeps the known one."""

    def membership(self, customer_id: str, group_id: str) -> Membership | None: ...
    def put_membership(self, customer_id: str, group_id: str, state: Membership) -> None: ...
    def applied(self, key: WorkKey) -> bool | None: ...
    def assume(self, key: WorkKey, member: bool) -> None:
        """Insert ``assumed`` applied state (no row exists)."""

    def correct_assumed(self, key: WorkKey, member: bool) -> None:
        """Set the member flag of ``key``'s applied state if (and only if) it is ``assumed``."""

    def record_applied(self, key: WorkKey, member: bool, note: AppliedNote, detail: str | None, now: float) -> None:
        """Insert or overwrite applied state."""

    def put_work(self, key: WorkKey, desired: bool, event_id: str, now: float) -> None:
        """Upsert the outbox row: new desired, version + 1, due ``now``, attempts and error reset."""

    def drop_work(self, key: WorkKey, desired: bool, event_id: str, now: float) -> None:
        """Delete the row unless leased (lease_until >= now); a leased one gets desired, version + 1."""

    def work_row(self, work_id: int) -> WorkRow | None: ...
    def delete_work(self, work_id: int) -> None: ...
    def requeue_work(self, work_id: int, now: float) -> None:
        """Unlease, due ``now``, attempts 0."""

    def retry_work(self, work_id: int, due_at: float, error: str | None) -> None:
        """Unlease, attempts + 1, due ``due_at``, last error ``error``."""

    def add_dead_letter(
        self, key: WorkKey, desired: bool, event_id: str, attempts: int, reason: str, now: float
    ) -> None: ...
    def dead_letter_keys(self, ids: Sequence[int] | None, target: str | None) -> list[tuple[int, WorkKey]]: ...
    def delete_dead_letter(self, letter_id: int) -> None: ...
    def inbox_counts(self) -> Iterable[tuple[str, int]]: ...
    def work_counts(self, now: float) -> Iterable[tuple[str, int, int, int, int, float]]:
        """Per target: backlog, due and unleased, leased, retrying, earliest due_at."""

    def latest_errors(self) -> Iterable[tuple[str, str]]:
        """Per target: last error of the row due latest among rows that have one."""

    def dead_letter_counts(self) -> Iterable[tuple[str, int]]: ...
    def applied_counts(self) -> Iterable[tuple[str, AppliedNote, int, float | None]]:
        """Per target and non-``assumed`` note: count and newest applied_at."""

    def recent_unprocessable(self, limit: int) -> list[dict[str, object]]: ...

    # -- history and retention ------------------------------------------------------------

    def record_attempt(
        self, key: WorkKey, desired: bool, event_id: str, kind: AttemptKind, attempt: int, reason: str | None,
        now: float,
    ) -> None: ...  # fmt: skip
    def find_customers(self, query: str, limit: int) -> list[tuple[str, str | None, str | None, str | None]]:
        """(id, email, external id, full name) of customers matching by id, email (any case) or external id."""

    def customer_memberships(self, customer_id: str) -> list[tuple[str, bool]]: ...
    def customer_applied(self, customer_id: str) -> list[tuple[WorkKey, bool, str, str | None, float | None]]:
        """(key, member, note, detail, applied_at) of every destination of the customer."""

    def customer_work(self, customer_id: str) -> list[tuple[WorkKey, int, str | None]]:
        """(key, attempts, last error) of the customer's outbox rows."""

    def customer_dead_letters(self, customer_id: str) -> list[WorkKey]: ...
    def customer_attempts(self, customer_id: str, limit: int) -> list[tuple[WorkKey, Attempt]]:
        """Newest first."""

    def group_labels(self, group_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """group id -> (key, name)."""

    def recent_inbox(self, limit: int) -> list[tuple[str, str | None, float, str, str | None]]:
        """(event id, type, received_at, status, reason), newest first."""

    def event_attempts(self, event_ids: Sequence[str]) -> list[tuple[str, str, AttemptKind]]:
        """(event id, target, kind) of those events' attempts, oldest first."""

    def event_work(self, event_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(event id, target) of outbox rows those events last moved."""

    def prune_rows(self, kind: PruneKind, before: float, limit: int) -> int: ...
    def oldest_rows(self) -> dict[str, float | None]:
        """Per :data:`PruneKind`, the epoch seconds of the oldest row kept."""


def move_membership(current: Membership | None, added: bool, stamp: Stamp) -> tuple[Membership | None, bool]:
    """Rules 1 and 2 for one change: (state to write or None, whether desired state moved).

    Before the first event for a pair, the event itself says what it was before; a later
    event older than all seen only moves ``first`` (see :func:`assumed_before`).
    """
    if current is None:
        return Membership(added, stamp, stamp), True
    if stamp > current.stamp:
        return Membership(added, stamp, current.first), True
    if stamp < current.first:
        return replace(current, first=stamp), False
    return None, False


def assumed_before(current: Membership | None, added: bool) -> bool:
    """What a destination without applied state is assumed to have before this change."""
    return current.member if current is not None else not added


def accept_event(tx: Tx, event: ParsedEvent, routes: Sequence[Sequence[Route]], now: float) -> AcceptResult:
    """Record ``event``, move desired state, create work. ``routes[i]`` serve ``changes[i]``."""
    status: InboxStatus = "ignored" if event.kind == "ignored" else "processed"
    if not tx.insert_event(event.event_id, event.event_type, event.event_time, status, now):
        return AcceptResult("duplicate")
    stamp = (event.event_time, event.event_id)
    if event.customer is not None:
        tx.upsert_customer(event.customer, stamp)
    if event.group is not None:
        tx.upsert_group(event.group, stamp, deleted=event.group_deleted)
    applied = stale = work = 0
    for change, change_routes in zip(event.changes, routes, strict=False):
        if change.customer != event.customer:
            tx.upsert_customer(change.customer, stamp)
        tx.upsert_group(change.group, stamp, deleted=False)
        moved, created = _apply_change(tx, change, change_routes, stamp, now)
        applied += moved
        stale += not moved
        work += created
    return AcceptResult("ignored" if event.kind == "ignored" else "stored", applied, stale, work)


def _apply_change(
    tx: Tx, change: MembershipChange, routes: Sequence[Route], stamp: Stamp, now: float
) -> tuple[bool, int]:
    customer_id, group_id = change.customer.id, change.group.id
    tx.lock_pair(customer_id, group_id)
    current = tx.membership(customer_id, group_id)
    state, moved = move_membership(current, change.added, stamp)
    if state is None:
        return False, 0
    tx.put_membership(customer_id, group_id, state)
    # A late oldest event: the first one to arrive set each destination's assumed state
    # from its own before-state, a state the CRM never received; the late one's is better.
    # So join(t1), leave(t2), join(t3) arriving as t2, t1, t3 still ends in the list.
    late = not moved
    before = (not change.added) if late else assumed_before(current, change.added)
    created = 0
    for route in routes:
        key = WorkKey(route.target, route.dest, customer_id, group_id)
        if late:
            tx.correct_assumed(key, before)
        created += reconcile(tx, key, state.member, before, stamp[1], now)
    return moved, created


def reconcile(tx: Tx, key: WorkKey, desired: bool, prior: bool, event_id: str, now: float) -> int:
    """Rule 3: make the outbox hold exactly the work between desired and applied; 1 if due."""
    applied = tx.applied(key)
    if applied is None:
        tx.assume(key, prior)
        applied = prior
    if desired == applied:
        # Nothing to do, unless a worker is sending the opposite right now: then the row
        # stays so that, once it lands, the runner sees desired differs and reverses it.
        tx.drop_work(key, desired, event_id, now)
        return 0
    tx.put_work(key, desired, event_id, now)
    return 1


def unprocessable_key(body: bytes, event_id: str | None) -> str:
    """Without a usable id, the body's hash still makes Plain's redeliveries collapse."""
    return event_id or "raw:" + hashlib.sha256(body).hexdigest()


def accept_unprocessable(
    tx: Tx, body: bytes, reason: str, event_id: str | None, event_type: str | None, now: float
) -> AcceptResult:
    key = unprocessable_key(body, event_id)
    stored = tx.insert_event(key, event_type, None, "unprocessable", now, reason=reason, body=body)
    return AcceptResult("unprocessable" if stored else "duplicate")


def reprocess(tx: Tx, key: str, event: ParsedEvent, routes: Sequence[Sequence[Route]], now: float) -> AcceptResult:
    tx.delete_unprocessable(key)
    return accept_event(tx, event, routes, now)


FinishStep = Literal["lost_lease", "delete", "requeue", "retry", "dead"]


def finish_step(result: Finished, row: WorkRow | None) -> FinishStep:
    """Rule 4: what a finished item does to its outbox row."""
    item = result.item
    confirmed = result.kind in ("done", "skipped")
    if row is None or row.lease_owner != item.lease_owner:
        return "lost_lease"  # the lease expired and someone else owns the row now
    if row.version != item.version:
        # Desired state moved while we were busy: drop the row if what we just confirmed
        # is what is now wanted, else make the new wish due at once.
        return "delete" if confirmed and row.desired == item.desired else "requeue"
    if confirmed:
        return "delete"
    return "retry" if result.kind == "retry" else "dead"


def finish(tx: Tx, result: Finished, now: float) -> None:
    item = result.item
    key = WorkKey(item.target, item.dest, item.customer_id, item.group_id)
    tx.lock_pair(item.customer_id, item.group_id)
    if result.kind in ("done", "skipped"):
        # A confirmed change is a fact about the CRM whoever holds the lease now.
        note: AppliedNote = "confirmed" if result.kind == "done" else "not_in_crm"
        tx.record_applied(key, item.desired, note, result.reason, now)
    step = finish_step(result, tx.work_row(item.id))
    tx.record_attempt(key, item.desired, item.event_id, result.kind, item.attempts + 1, result.reason, now)
    if step == "requeue":
        tx.requeue_work(item.id, now)
    elif step == "retry":
        tx.retry_work(item.id, result.due_at or now, result.reason)
    elif step == "dead":
        tx.add_dead_letter(key, item.desired, item.event_id, item.attempts + 1, result.reason or "failed", now)
    if step in ("delete", "dead"):
        tx.delete_work(item.id)


def replay_dead_letters(tx: Tx, ids: Sequence[int] | None, target: str | None, now: float) -> int:
    """Rule 5: turn dead letters back into work against the desired state as it is now."""
    if ids is not None and not ids:
        return 0
    requeued = 0
    for letter_id, key in tx.dead_letter_keys(ids, target):
        tx.delete_dead_letter(letter_id)
        tx.lock_pair(key.customer_id, key.group_id)
        state = tx.membership(key.customer_id, key.group_id)
        wanted = state.member if state is not None else False
        tx.record_attempt(key, wanted, state.stamp[1] if state else "", "replayed", 0, "replayed by an operator", now)
        if state is not None:
            requeued += reconcile(tx, key, state.member, not state.member, state.stamp[1], now)
    return requeued


def discard_dead_letters(tx: Tx, ids: Sequence[int], now: float) -> int:
    """Forget dead letters; the attempt history keeps that an operator did."""
    if not ids:
        return 0
    discarded = 0
    for letter_id, key in tx.dead_letter_keys(ids, None):
        tx.delete_dead_letter(letter_id)
        state = tx.membership(key.customer_id, key.group_id)
        wanted = state.member if state is not None else False
        tx.record_attempt(key, wanted, "", "discarded", 0, "discarded by an operator", now)
        discarded += 1
    return discarded


def prune(tx: Tx, kind: PruneKind, before: float, limit: int) -> int:
    """Rule 7: one batch of at most ``limit`` rows of ``kind`` older than ``before``."""
    return tx.prune_rows(kind, before, max(1, limit))


def read_status(tx: Tx, now: float) -> StatusReport:
    report = StatusReport(inbox=dict(tx.inbox_counts()))
    targets = report.targets
    for target, backlog, due, in_flight, retrying, oldest in tx.work_counts(now):
        oldest_due = round(max(0.0, now - oldest), 1) if oldest else 0.0
        targets[target] = TargetStatus(backlog, due or 0, in_flight or 0, retrying or 0, oldest_due)
    for target, error in tx.latest_errors():
        targets.setdefault(target, TargetStatus()).last_error = error
    for target, count in tx.dead_letter_counts():
        targets.setdefault(target, TargetStatus()).dead_letters = count
    for target, note, count, last in tx.applied_counts():
        entry = targets.setdefault(target, TargetStatus())
        if note == "not_in_crm":
            entry.not_in_crm = count
        else:
            entry.applied = count
        if last and (entry.last_applied_at is None or last > entry.last_applied_at):
            entry.last_applied_at = last
    report.unprocessable = tx.recent_unprocessable(20)
    report.storage = {"size_bytes": None, "oldest": tx.oldest_rows()}
    return report
