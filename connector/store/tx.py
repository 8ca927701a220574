"""The storage primitives a backend implements (:class:`Tx`), the state they speak in, and
the two rules every other rule builds on: :func:`reconcile` (rule 3) and
:func:`finish_step` (rule 4). The rules and their contract are in :mod:`connector.store.core`
(which re-exports all of this); they live here so that :mod:`connector.store.lifecycle`
can use them without importing core.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from connector.plain.changes import CustomerInfo, GroupInfo
from connector.store.base import Finished, GroupKey, PruneKind, RunInfo
from connector.store.history_records import Attempt, AttemptKind

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
class Stored:
    """A customer's email, or a group's key, as stored, with its flags and stamp."""

    value: str | None
    deleted: bool
    stamp: Stamp


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

    def upsert_customer(self, customer: CustomerInfo, stamp: Stamp, deleted: bool = False) -> None:
        """Insert, or update if ``stamp`` is newer; a missing email keeps the known one."""

    def customer(self, customer_id: str) -> Stored | None: ...
    def upsert_group(self, group: GroupInfo, stamp: Stamp, deleted: bool) -> None:
        """Insert, or update if ``stamp`` is newer; a missing key or name keeps the known one.

        A group's ``deleted`` never goes back to false, and ``deleted=True`` lands whatever
        the stamp (Plain never revives a group). A key is bound to the group (``group_keys``)
        unless a newer event bound it to another.
        """

    def group(self, group_id: str) -> Stored | None: ...
    def keys_of_group(self, group_id: str) -> list[str]:
        """Keys this group was the last to have."""

    def group_keys(self) -> list[GroupKey]: ...
    def group_members(self, group_id: str) -> list[tuple[str, bool]]:
        """(customer id, member) of every membership row of the group."""

    def customer_keys(self, customer_id: str) -> list[WorkKey]:
        """Keys with applied state or current-contact work for the customer."""

    def adding_now(self, key: WorkKey, now: float) -> bool:
        """Whether a runner holds an add for ``key`` right now."""

    def put_old_contact(self, key: WorkKey, contact: str, event_id: str, now: float) -> None:
        """Upsert the removal of ``key``'s group from the old email ``contact``, due ``now``."""

    def old_contacts(self, key: WorkKey) -> list[str]:
        """The contacts of ``key``'s pending removals from old emails."""

    def drop_old_contact(self, key: WorkKey, contact: str, now: float) -> None:
        """Delete that removal unless leased."""

    def set_assumed(self, key: WorkKey, member: bool) -> None:
        """Insert or overwrite applied state as ``assumed``."""

    def deleted_groups(self) -> list[dict[str, object]]: ...

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
        self, key: WorkKey, desired: bool, event_id: str, attempts: int, reason: str, now: float, contact: str = ""
    ) -> None: ...
    def dead_letter_keys(self, ids: Sequence[int] | None, target: str | None) -> list[tuple[int, WorkKey, str]]:
        """(letter id, key, contact) of the letters chosen."""

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
    def latest_runs(self) -> list[RunInfo]:
        """The newest backfill / reconcile run of each kind (see :mod:`connector.store.core_sync`)."""

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
