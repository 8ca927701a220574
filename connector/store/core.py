"""The store's rules, for every backend: what an event, an outcome or a replay does to state.

This module is the contract a store backend follows. A backend implements storage: the
:class:`Tx` primitives (in :mod:`connector.store.tx`, re-exported here) inside one
transaction per :class:`~connector.store.base.Store` call, plus connections, leasing exclusivity and ``take_over``. It never re-decides what
the functions here decide. An SQL backend gets the primitives for free from
:class:`connector.store.sql.SqlTx` (portable SQL; only the placeholder style and the
claim's row locking differ per database).

State, per backend (SQLite's tables in :mod:`connector.store.sqlite.schema`):

- *inbox*: one row per event id (processed, ignored, or unprocessable with its raw body);
  its unique key is what makes Plain's redeliveries duplicates.
- *customers*, *groups*, *memberships* (desired state), each row stamped with the
  (event time, event id) of the event that wrote it. Memberships also keep the stamp of
  the oldest event seen for the pair (``Membership.first``). Customers and groups carry a
  ``deleted`` flag; *group_keys* remembers which group had each key last.
- *applied*: per (target, destination, customer, group) what the CRM is believed to
  have: ``assumed`` (from an event's before-state), ``confirmed`` or ``not_in_crm``.
- *outbox*: work, one row per key while desired differs from applied, with a version that
  moves whenever desired moves, and a lease (owner, until) while a runner holds it. A row
  whose ``contact`` is set is not that: it is a removal addressed to an email the customer
  used to have (its key's applied state is the customer's current contact's).
- *dead letters*: work given up on, kept for an operator to replay (with its ``contact``).
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
5. **Dead-letter replay** re-queues against desired state as it is now (a deleted
   customer or group wants no adds).
6. **Lifecycle** (email changes, customer and group deletions, keys a group used to have):
   the rules in :mod:`connector.store.lifecycle`, driven by a :class:`~connector.store.base.Policy`.
7. **History is written with the outcome**: :func:`finish` records one attempt per result
   in the same transaction, whoever holds the lease (the CRM answered either way).
8. **Retention only forgets what correctness does not need**: inbox ids older than the
   dedup window (a later redelivery is then re-applied, harmless since newest wins),
   attempts, dead letters and unprocessable bodies past their windows; never desired or
   applied state, never work. Each prune is one short transaction of at most ``limit`` rows.

Rules 6-10, for desired state read from Plain's API (backfill, reconcile, resync, verify),
are in :mod:`connector.store.core_sync`.

Concurrency: each ``Store`` call is one transaction. The functions here read, decide and
write the state of one (customer, group) after :meth:`Tx.lock_pair`; a backend whose
transactions run concurrently (PostgreSQL replicas) makes that a lock held to commit
(e.g. ``pg_advisory_xact_lock``), SQLite's single writer needs none. Claiming must never
hand one row to two owners (SQLite: one writer; PostgreSQL: ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from connector.plain.changes import MembershipChange, ParsedEvent
from connector.store import lifecycle
from connector.store.base import (
    DEFAULT_POLICY,
    AcceptResult,
    Finished,
    Policy,
    PruneKind,
    Route,
    StatusReport,
    TargetStatus,
)
from connector.store.tx import (
    AppliedNote,
    FinishStep,
    InboxStatus,
    Membership,
    Stamp,
    Stored,
    Tx,
    WorkKey,
    WorkRow,
    finish_step,
    reconcile,
)

__all__ = [
    "AppliedNote",
    "FinishStep",
    "InboxStatus",
    "Membership",
    "Stamp",
    "Stored",
    "Tx",
    "WorkKey",
    "WorkRow",
    "accept_event",
    "finish",
    "finish_step",
    "reconcile",
]


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


def accept_event(
    tx: Tx, event: ParsedEvent, routes: Sequence[Sequence[Route]], now: float, policy: Policy = DEFAULT_POLICY
) -> AcceptResult:
    """Record ``event``, move desired state, create work. ``routes[i]`` serve ``changes[i]``."""
    status: InboxStatus = "ignored" if event.kind == "ignored" else "processed"
    if not tx.insert_event(event.event_id, event.event_type, event.event_time, status, now):
        return AcceptResult("duplicate")
    stamp = (event.event_time, event.event_id)
    customer_gone = False
    applied = stale = work = 0
    if event.customer is not None:
        deleted = event.kind == "customer_deleted"
        customer_gone, work = lifecycle.update_customer(tx, event.customer, stamp, deleted, policy, now)
    if event.group is not None:
        work += lifecycle.update_group(tx, event.group, stamp, event.group_deleted, policy, now)[1]
    for change, change_routes in zip(event.changes, routes, strict=False):
        if change.customer != event.customer:
            customer_gone, created = lifecycle.update_customer(tx, change.customer, stamp, False, policy, now)
            work += created
        group_gone = lifecycle.update_group(tx, change.group, stamp, False, policy, now)[0]
        gone = lifecycle.Gone(customer_gone, group_gone, policy)
        all_routes = lifecycle.with_former_keys(tx, change.group.id, change_routes, policy)
        moved, created = _apply_change(tx, change, all_routes, stamp, now, gone)
        applied += moved
        stale += not moved
        work += created
    return AcceptResult("ignored" if event.kind == "ignored" else "stored", applied, stale, work)


def _apply_change(
    tx: Tx, change: MembershipChange, routes: Sequence[Route], stamp: Stamp, now: float, gone: lifecycle.Gone
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
        desired = state.member and not gone.here(route)
        created += reconcile(tx, key, desired, before, stamp[1], now)
    return moved, created


def unprocessable_key(body: bytes, event_id: str | None) -> str:
    """Without a usable id, the body's hash still makes Plain's redeliveries collapse."""
    return event_id or "raw:" + hashlib.sha256(body).hexdigest()


def accept_unprocessable(
    tx: Tx, body: bytes, reason: str, event_id: str | None, event_type: str | None, now: float
) -> AcceptResult:
    key = unprocessable_key(body, event_id)
    stored = tx.insert_event(key, event_type, None, "unprocessable", now, reason=reason, body=body)
    return AcceptResult("unprocessable" if stored else "duplicate")


def reprocess(
    tx: Tx, key: str, event: ParsedEvent, routes: Sequence[Sequence[Route]], now: float, policy: Policy = DEFAULT_POLICY
) -> AcceptResult:
    tx.delete_unprocessable(key)
    return accept_event(tx, event, routes, now, policy)


def finish(tx: Tx, result: Finished, now: float) -> None:
    item = result.item
    key = WorkKey(item.target, item.dest, item.customer_id, item.group_id)
    tx.lock_pair(item.customer_id, item.group_id)
    # Sent to an email the customer no longer has: a fact about that old contact, not
    # about the key's (the email change already queued what the old contact needs).
    moved_away = not item.contact and lifecycle.email_moved(tx, item)
    if item.contact:
        lifecycle.finish_old_contact(tx, result, key, now)
    elif result.kind in ("done", "skipped") and not moved_away:
        # A confirmed change is a fact about the CRM whoever holds the lease now.
        note: AppliedNote = "confirmed" if result.kind == "done" else "not_in_crm"
        tx.record_applied(key, item.desired, note, result.reason, now)
    step = finish_step(result, tx.work_row(item.id))
    tx.record_attempt(key, item.desired, item.event_id, result.kind, item.attempts + 1, result.reason, now)
    if moved_away and step == "delete":
        step = "requeue"
    if step == "requeue":
        tx.requeue_work(item.id, now)
    elif step == "retry":
        tx.retry_work(item.id, result.due_at or now, result.reason)
    elif step == "dead":
        reason = result.reason or "failed"
        tx.add_dead_letter(key, item.desired, item.event_id, item.attempts + 1, reason, now, item.contact)
    if step in ("delete", "dead"):
        tx.delete_work(item.id)


def replay_dead_letters(tx: Tx, ids: Sequence[int] | None, target: str | None, now: float) -> int:
    """Rule 5: turn dead letters back into work against the desired state as it is now."""
    if ids is not None and not ids:
        return 0
    requeued = 0
    for letter_id, key, contact in tx.dead_letter_keys(ids, target):
        tx.delete_dead_letter(letter_id)
        tx.lock_pair(key.customer_id, key.group_id)
        if contact:
            requeued += lifecycle.requeue_old_contact(tx, key, contact, now)
            continue
        state = tx.membership(key.customer_id, key.group_id)
        wanted = state.member if state is not None else False
        tx.record_attempt(key, wanted, state.stamp[1] if state else "", "replayed", 0, "replayed by an operator", now)
        if state is not None:
            desired = state.member and not lifecycle.deleted_either(tx, key)
            requeued += reconcile(tx, key, desired, not state.member, state.stamp[1], now)
    return requeued


def discard_dead_letters(tx: Tx, ids: Sequence[int], now: float) -> int:
    """Forget dead letters; the attempt history keeps that an operator did."""
    if not ids:
        return 0
    discarded = 0
    for letter_id, key, _contact in tx.dead_letter_keys(ids, None):
        tx.delete_dead_letter(letter_id)
        state = tx.membership(key.customer_id, key.group_id)
        wanted = state.member if state is not None else False
        tx.record_attempt(key, wanted, "", "discarded", 0, "discarded by an operator", now)
        discarded += 1
    return discarded


def expire(tx: Tx, kind: PruneKind, before: float, limit: int) -> int:
    """Rule 8: one batch of at most ``limit`` rows of ``kind`` older than ``before``."""
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
    report.runs = {run.kind: run for run in tx.latest_runs()}
    report.deleted_groups = tx.deleted_groups()
    report.storage = {"size_bytes": None, "oldest": tx.oldest_rows()}
    return report
