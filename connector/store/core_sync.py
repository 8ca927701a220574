"""The store's rules for desired state read from Plain's API: backfill, reconcile, resync, verify.

Part of the contract of :mod:`connector.store.core` (same :class:`~connector.store.core.Tx`
primitives, plus :class:`SyncTx`'s), kept apart so each module stays readable. The rules:

6. **A read is a fact as of its start.** Each customer a read of a group lists is a member
   as of the read's stamp (start time, ``backfill:<run>``), unless the store knows a newer
   event for the pair: a webhook newer than the read always wins (rule 1 again).
7. **Only a complete read removes.** When a group's read is done, every pair the store
   holds as member of that group, older than the read and not listed by it, leaves as of
   the read's stamp. A read that stopped half-way removes nothing; the group is read again.
8. **Resync queues only the missing work.** A destination gets work where its applied
   state (no row: not a member) differs from desired state and no queued row already wants
   the same; running it twice creates nothing the second time.
9. **Prune removes only what this service applied** (``confirmed`` members) at a
   destination no mapping names for that group any more, and never a customer another
   group mapped to the same destination still puts there.
10. **Verify trusts the CRM for applied state**: what the CRM holds replaces applied state
   where it disagrees with desired state, and the difference becomes work. Emails of no
   known customer are left alone; a ``not_in_crm`` pair is not retried.

A dry run (``write=False``) takes the same decisions over the same reads and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Literal, Protocol

from connector.plain.changes import CustomerInfo, GroupInfo
from connector.store.base import (
    GroupRead,
    Merged,
    Operation,
    Route,
    RunInfo,
    RunStart,
    RunStatus,
    SyncKind,
    VerifyResult,
)
from connector.store.core import AppliedNote, Membership, Stamp, Tx, WorkKey, reconcile
from connector.store.sync_records import MembershipMove

#: (customer id, member, stamp, email) of one membership row of a group
GroupMember = tuple[str, bool, Stamp, str | None]


class SyncTx(Tx, Protocol):
    """The primitives these rules need beyond :class:`~connector.store.core.Tx`."""

    def queued(self, key: WorkKey) -> bool | None:
        """The desired flag of ``key``'s outbox row, or None without one."""

    def applied_note(self, key: WorkKey) -> AppliedNote | None: ...
    def group_memberships(self, group_id: str) -> list[GroupMember]: ...
    def known_groups(self) -> list[GroupInfo]: ...
    def applied_members(self, targets: Collection[str]) -> list[tuple[WorkKey, str | None, str | None]]:
        """(key, email, group key) of ``confirmed`` member rows at ``targets``."""

    def open_run(self, kind: SyncKind, selection: str) -> int | None: ...
    def abandon_runs(self, kind: SyncKind, now: float) -> None: ...
    def insert_run(self, kind: SyncKind, selection: str, now: float) -> int: ...
    def finished_groups(self, run_id: int) -> list[str]: ...
    def insert_group_read(self, run_id: int, read: GroupRead, now: float) -> None: ...
    def set_run(self, run_id: int, status: RunStatus, error: str | None, now: float, next_at: float | None) -> None: ...
    def run_info(self, run_id: int) -> RunInfo | None: ...
    def latest_runs(self) -> list[RunInfo]: ...


def _plan(tx: SyncTx, key: WorkKey, desired: bool) -> Literal["add", "remove"] | None:
    """Rule 8: the operation ``key`` still needs to reach ``desired``, if any."""
    if bool(tx.applied(key)) == desired or tx.queued(key) == desired:
        return None
    return "add" if desired else "remove"


def _operation(key: WorkKey, action: Literal["add", "remove"], email: str | None, group_key: str | None) -> Operation:
    return Operation(key.target, key.dest, key.customer_id, key.group_id, action, email, group_key)


def _set_member(
    tx: SyncTx, customer_id: str, email: str | None, group: GroupInfo, member: bool, stamp: Stamp,
    routes: Sequence[Route], now: float, write: bool,
) -> Merged:  # fmt: skip
    """Rules 6/7 for one pair: move desired state unless newer is known, then route it."""
    tx.lock_pair(customer_id, group.id)
    current = tx.membership(customer_id, group.id)
    out = Merged()
    moved = current is None or stamp > current.stamp
    desired = member if moved else bool(current and current.member)
    if moved:
        first = current.first if current is not None else stamp
        if write:
            tx.put_membership(customer_id, group.id, Membership(member, stamp, first))
        if current is None or current.member != member:
            out.changes.append(MembershipMove(customer_id, group.id, member, email, group.key))
    for route in routes:
        key = WorkKey(route.target, route.dest, customer_id, group.id)
        action = _plan(tx, key, desired)
        if action is not None:
            out.operations.append(_operation(key, action, email, group.key))
        if write and (action is not None or moved):
            # No applied row means the destination never got this pair from us: not a member.
            reconcile(tx, key, desired, False, stamp[1], now)
    return out


def merge_members(
    tx: SyncTx, group: GroupInfo, members: Iterable[CustomerInfo], stamp: Stamp, routes: Sequence[Route],
    now: float, write: bool,
) -> Merged:  # fmt: skip
    out = Merged()
    if write:
        tx.upsert_group(group, stamp, deleted=False)
    for customer in members:
        if write:
            tx.upsert_customer(customer, stamp)
        out.extend(_set_member(tx, customer.id, customer.email, group, True, stamp, routes, now, write))
    return out


def finish_group(
    tx: SyncTx, run_id: int | None, group: GroupInfo, listed: Collection[str], stamp: Stamp,
    routes: Sequence[Route], read: GroupRead, now: float, write: bool,
) -> Merged:  # fmt: skip
    """Rule 7, and the run record, in one transaction: a group is done with its removals or not at all."""
    out = Merged()
    for customer_id, member, _stamp, email in tx.group_memberships(group.id):
        if member and customer_id not in listed:
            out.extend(_set_member(tx, customer_id, email, group, False, stamp, routes, now, write))
    if write and run_id is not None:
        done = replace(read, changes=read.changes + len(out.changes), work=read.work + len(out.operations))
        tx.insert_group_read(run_id, done, now)
    return out


def resync_group(tx: SyncTx, group: GroupInfo, routes: Sequence[Route], now: float, write: bool) -> list[Operation]:
    """Rule 8 over every pair of ``group`` the store knows."""
    ops: list[Operation] = []
    for customer_id, member, stamp, email in tx.group_memberships(group.id):
        for route in routes:
            key = WorkKey(route.target, route.dest, customer_id, group.id)
            tx.lock_pair(customer_id, group.id)
            action = _plan(tx, key, member)
            if action is None:
                continue
            ops.append(_operation(key, action, email, group.key))
            if write:
                reconcile(tx, key, member, False, stamp[1], now)
    return ops


def prune(
    tx: SyncTx, mapped: Mapping[tuple[str, str], Collection[str]], targets: Collection[str],
    groups: Collection[str] | None, now: float, write: bool,
) -> list[Operation]:  # fmt: skip
    """Rule 9."""
    ops: list[Operation] = []
    for key, email, group_key in tx.applied_members(targets):
        here = mapped.get((key.target, key.dest), ())
        if (groups is not None and key.group_id not in groups) or key.group_id in here or tx.queued(key) is False:
            continue
        if any((m := tx.membership(key.customer_id, g)) is not None and m.member for g in here):
            continue
        tx.lock_pair(key.customer_id, key.group_id)
        ops.append(_operation(key, "remove", email, group_key))
        if write:
            tx.put_work(key, False, "prune", now)
    return ops


def verify(
    tx: SyncTx, target: str, dest: str, groups: Collection[str], crm_emails: Collection[str], now: float, write: bool
) -> VerifyResult:
    """Rule 10 at one destination, given every email the CRM holds there."""
    crm = {e.strip().lower() for e in crm_emails if e}
    rows: dict[str, list[tuple[str, bool, str | None]]] = {}
    for group_id in groups:
        for customer_id, member, _stamp, email in tx.group_memberships(group_id):
            rows.setdefault(customer_id, []).append((group_id, member, email))
    keys = {g.id: g.key for g in tx.known_groups()}
    ops: list[Operation] = []
    known: set[str] = set()
    for customer_id, pairs in rows.items():
        email = next((e for _g, _m, e in pairs if e), None)
        if email is None:
            continue
        known.add(email.strip().lower())
        in_crm = email.strip().lower() in crm
        wanted = any(member for _g, member, _e in pairs)
        for group_id, member, _e in pairs:
            key = WorkKey(target, dest, customer_id, group_id)
            # One group still wanting the customer there is enough; others' non-membership is no removal.
            if member == in_crm or (wanted and not member) or tx.applied_note(key) == "not_in_crm":
                continue
            tx.lock_pair(customer_id, group_id)
            if tx.queued(key) == member:
                continue  # the correction is already on its way
            ops.append(_operation(key, "add" if member else "remove", email, keys.get(group_id)))
            if write:
                tx.record_applied(key, in_crm, "confirmed", "verify: read from the CRM", now)
                reconcile(tx, key, member, in_crm, "verify", now)
    return VerifyResult(ops, len(crm - known))


def selection_text(selection: Sequence[str] | None) -> str:
    return json.dumps(sorted(set(selection)) if selection is not None else None)


def start_run(tx: SyncTx, kind: SyncKind, selection: Sequence[str] | None, now: float) -> RunStart:
    """Resume the unfinished run of the same kind and selection, else abandon others and start."""
    text = selection_text(selection)
    open_id = tx.open_run(kind, text)
    if open_id is not None:
        return RunStart(open_id, True, frozenset(tx.finished_groups(open_id)))
    tx.abandon_runs(kind, now)
    return RunStart(tx.insert_run(kind, text, now), False)


def finish_run(
    tx: SyncTx, run_id: int, status: RunStatus, error: str | None, next_at: float | None, now: float
) -> RunInfo:
    tx.set_run(run_id, status, error, now, next_at)
    info = tx.run_info(run_id)
    assert info is not None, f"run {run_id} vanished"
    return info
