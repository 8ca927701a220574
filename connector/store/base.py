"""The store interface: what the receiver, the runner and the CLI need from durable state.

SQLite and PostgreSQL (several replicas, ``SKIP LOCKED`` leases) implement the same
methods, so nothing here may assume one process owns the data: work is claimed
with a lease, and a finished item is only written back by the owner of its lease. The
rules behind these methods live in :mod:`connector.store.core`; a backend supplies storage.
The records of backfill/resync and of history are in :mod:`connector.store.sync_records`
and :mod:`connector.store.history_records`.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from connector.adapters.base import Change
from connector.plain.changes import CustomerInfo, GroupInfo, ParsedEvent
from connector.store.history_records import (
    CustomerHistory,
    PruneKind,
    RecentEvent,
)
from connector.store.sync_records import (
    GroupRead,
    Merged,
    Operation,
    RunInfo,
    RunStart,
    RunStatus,
    SyncKind,
    VerifyResult,
)


class StoreUnavailable(RuntimeError):
    """The store cannot write now; the receiver answers 503 so Plain retries."""


GroupDeleted = Literal["keep", "remove"]
EmailChange = Literal["move", "keep"]
CustomerDeleted = Literal["keep", "remove"]


@dataclass(frozen=True, slots=True)
class Route:
    """Where one membership change must go: a target and its destination key (options JSON)."""

    target: str
    dest: str
    #: the mapping's choice for when Plain deletes the group
    on_group_deleted: GroupDeleted = "keep"


@dataclass(frozen=True, slots=True)
class Policy:
    """What the live config says for everything beyond one membership change.

    Built once per mapping set. ``routing`` is the whole mapping table (a group id or key
    -> its routes), so the store can route a group by a key it used to have
    (:mod:`connector.store.lifecycle`). The defaults are the documented ones.
    """

    #: per target; a target not listed moves memberships to the new email
    on_email_change: Mapping[str, EmailChange] = field(default_factory=dict)
    #: per target; a target not listed keeps a deleted customer's memberships
    on_customer_deleted: Mapping[str, CustomerDeleted] = field(default_factory=dict)
    routing: Mapping[str, Sequence[Route]] = field(default_factory=dict)

    def email_change(self, target: str) -> EmailChange:
        return self.on_email_change.get(target, "move")

    def customer_deleted(self, target: str) -> CustomerDeleted:
        return self.on_customer_deleted.get(target, "keep")

    def targets(self) -> set[str]:
        """Every target the policy names (built from config: every configured target)."""
        return {*self.on_email_change, *self.on_customer_deleted}


DEFAULT_POLICY = Policy()


AcceptStatus = Literal["stored", "duplicate", "ignored", "unprocessable"]


@dataclass(frozen=True, slots=True)
class AcceptResult:
    status: AcceptStatus
    #: membership changes that moved desired state (stale ones do not count)
    applied_changes: int = 0
    #: changes older than what the store already knows, and so without effect
    stale_changes: int = 0
    #: outbox rows created or updated
    work_created: int = 0


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A unit of claimed work: bring one (customer, group) to ``desired`` at one destination."""

    id: int
    version: int
    target: str
    dest: str
    customer_id: str
    group_id: str
    desired: bool
    attempts: int
    lease_owner: str
    email: str | None = None
    external_id: str | None = None
    full_name: str | None = None
    group_key: str | None = None
    group_name: str | None = None
    event_id: str = ""
    event_time: str | None = None
    #: set on a removal addressed to a contact the customer used to have (its old email,
    #: which ``email`` then holds): it is not the customer's membership, so its outcome
    #: moves no applied state. Empty for the customer's current contact.
    contact: str = ""

    def to_change(self) -> Change:
        return Change(
            key=str(self.id),
            action="add" if self.desired else "remove",
            customer_id=self.customer_id,
            email=self.email,
            group_id=self.group_id,
            group_key=self.group_key,
            event_id=self.event_id,
            options=json.loads(self.dest),
            external_id=self.external_id,
            full_name=self.full_name,
            group_name=self.group_name,
            event_time=self.event_time,
        )


@dataclass(frozen=True, slots=True)
class GroupKey:
    """A key as the store remembers it: the group that had it last, and that group now."""

    key: str
    group_id: str
    #: the group's key now (None if unknown); differs from ``key`` after a re-key
    current_key: str | None
    deleted: bool


FinishKind = Literal["done", "skipped", "retry", "dead"]


@dataclass(frozen=True, slots=True)
class Finished:
    """What the runner decided for a claimed item."""

    item: WorkItem
    kind: FinishKind
    reason: str | None = None
    #: for ``retry``: when (epoch seconds) the item is due again
    due_at: float | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    target: str
    dest: str
    customer_id: str
    group_id: str
    group_key: str | None
    email: str | None
    action: str
    event_id: str
    attempts: int
    reason: str
    failed_at: float
    #: see :attr:`WorkItem.contact`
    contact: str = ""


@dataclass(slots=True)
class TargetStatus:
    """One target's line in ``status``; field order is the key order of ``status --json``."""

    #: outbox rows: work not yet confirmed by the CRM
    backlog: int = 0
    #: of the backlog, due now and not leased
    due: int = 0
    #: of the backlog, leased by a runner right now
    in_flight: int = 0
    #: of the backlog, failed at least once and waiting for another attempt
    retrying: int = 0
    #: age of the oldest backlog item, seconds
    oldest_due_seconds: float = 0.0
    dead_letters: int = 0
    #: changes confirmed as "contact not in the CRM" (skipped)
    not_in_crm: int = 0
    #: changes the CRM confirmed
    applied: int = 0
    #: epoch seconds of the newest confirmation or skip
    last_applied_at: float | None = None
    #: the error of the most recently rescheduled retry
    last_error: str | None = None


@dataclass
class StatusReport:
    """Everything ``status`` shows; plain data so it renders as text or JSON."""

    inbox: dict[str, int] = field(default_factory=dict)
    targets: dict[str, TargetStatus] = field(default_factory=dict)
    unprocessable: list[dict[str, Any]] = field(default_factory=list)
    #: the newest backfill and the newest reconcile run
    runs: dict[str, RunInfo] = field(default_factory=dict)
    #: groups Plain deleted: id, last known key and name, when
    deleted_groups: list[dict[str, Any]] = field(default_factory=list)
    #: size of the store (``size_bytes``, None where unknown) and, per kind of kept row,
    #: the epoch seconds of the oldest one (``oldest``): what retention keeps
    storage: dict[str, Any] = field(default_factory=dict)


class Store(abc.ABC):
    """Durable state. All methods are coroutine-safe; writes are transactional."""

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True if the store answers (readiness)."""

    @abc.abstractmethod
    async def take_over(self, owner: str) -> int:
        """Called once by a starting ``serve`` before it delivers; returns leases released.

        A store that only one process may serve (SQLite) locks itself to this process and
        releases every lease a killed predecessor left, so its work resumes at once. A
        shared store (PostgreSQL) releases nothing: other replicas' leases are live, and a
        dead replica's expire.
        """

    @abc.abstractmethod
    async def accept(
        self, event: ParsedEvent, routes: Sequence[Sequence[Route]], policy: Policy = DEFAULT_POLICY
    ) -> AcceptResult:
        """Record an event, move desired state, create work; committed before returning.

        ``routes[i]`` are the destinations of ``event.changes[i]`` under the mappings live
        when the event arrived; ``policy`` is what the config says for email changes and
        deletions. Raises :class:`StoreUnavailable` if it cannot commit.
        """

    @abc.abstractmethod
    async def accept_unprocessable(
        self, body: bytes, reason: str, event_id: str | None, event_type: str | None
    ) -> AcceptResult:
        """Keep a signed body we could not understand, raw, for an operator to look at."""

    @abc.abstractmethod
    async def unprocessable_bodies(self, limit: int = 1000) -> list[tuple[str, bytes]]:
        """(key, raw body) of kept unprocessable events, oldest first."""

    @abc.abstractmethod
    async def reprocess(
        self, key: str, event: ParsedEvent, routes: Sequence[Sequence[Route]], policy: Policy = DEFAULT_POLICY
    ) -> AcceptResult:
        """Replace the unprocessable entry ``key`` by the now understood ``event``, atomically."""

    @abc.abstractmethod
    async def claim(self, target: str, limit: int, owner: str, lease_seconds: float) -> list[WorkItem]:
        """Lease up to ``limit`` due items of ``target`` for ``owner``."""

    @abc.abstractmethod
    async def finish(self, results: Sequence[Finished]) -> None:
        """Write back outcomes of claimed items (only where the lease is still ours)."""

    @abc.abstractmethod
    async def release(self, items: Sequence[WorkItem]) -> None:
        """Give claimed items back unchanged (shutdown), due at once."""

    @abc.abstractmethod
    async def next_due(self, target: str) -> float | None:
        """Epoch seconds of the earliest unleased item of ``target``, or None."""

    @abc.abstractmethod
    async def status(self) -> StatusReport: ...

    async def group_keys(self) -> list[GroupKey]:
        """Every key a known group has had (``check`` warns about mappings that lost theirs).

        Not abstract, so a backend without it yet answers "nothing known"."""
        return []

    @abc.abstractmethod
    async def dead_letters(self, target: str | None = None, limit: int = 100) -> list[DeadLetter]: ...

    @abc.abstractmethod
    async def replay_dead_letters(self, ids: Sequence[int] | None = None, target: str | None = None) -> int:
        """Re-queue dead letters (all, by id, or by target) against current desired state.

        Returns how many became work again; a letter whose change is no longer wanted is
        simply removed.
        """

    def on_new_work(self, wake: Callable[[Iterable[str]], None]) -> None:
        """Call ``wake(targets)`` when another process adds work for those targets.

        Optional: a store that only one process serves (SQLite) has nobody to hear from,
        and runners poll anyway. Register before :meth:`open`.
        """

    async def share_rate_limit(self, target: str, limiter: Any) -> None:
        """Pace ``limiter`` with this process's share of ``target``'s rate limit.

        Optional: a store several replicas share keeps the sum of their calls under the
        vendor's limit (see :mod:`connector.store.postgres.ratelimit`); a store one
        process serves leaves the in-process limiter as it is.
        """

    # -- desired state from Plain's API (backfill, reconcile, resync, verify) --------------
    # A dry run (``write=False``) decides exactly as a real one and writes nothing.

    @abc.abstractmethod
    async def start_run(self, kind: SyncKind, selection: Sequence[str] | None) -> RunStart:
        """Resume the unfinished run of ``kind`` over the same selection, or start a new one."""

    @abc.abstractmethod
    async def merge_members(
        self, group: GroupInfo, members: Sequence[CustomerInfo], stamp: tuple[str, str], routes: Sequence[Route],
        *, write: bool = True,
    ) -> Merged:  # fmt: skip
        """One page of a group's read: each customer is a member as of ``stamp`` unless the store knows newer."""

    @abc.abstractmethod
    async def finish_group(
        self, run_id: int | None, group: GroupInfo, listed: Collection[str], stamp: tuple[str, str],
        routes: Sequence[Route], read: GroupRead, *, write: bool = True,
    ) -> Merged:  # fmt: skip
        """A complete read: members older than ``stamp`` not ``listed`` leave; the group is recorded as done."""

    @abc.abstractmethod
    async def finish_run(
        self, run_id: int, status: RunStatus, error: str | None = None, next_at: float | None = None
    ) -> RunInfo: ...

    @abc.abstractmethod
    async def known_groups(self) -> list[GroupInfo]:
        """Every group the store holds desired state for."""

    @abc.abstractmethod
    async def resync_group(self, group: GroupInfo, routes: Sequence[Route], *, write: bool = True) -> list[Operation]:
        """Queue work wherever a destination's applied state differs from the group's desired state."""

    @abc.abstractmethod
    async def prune(
        self, mapped: Mapping[tuple[str, str], Collection[str]], targets: Collection[str],
        groups: Collection[str] | None = None, *, write: bool = True,
    ) -> list[Operation]:  # fmt: skip
        """Remove what this service applied at destinations no mapping names for that group any more.

        ``mapped`` is (target, dest) -> group ids mapped there now; a customer still a member
        of one of those stays. Only at ``targets``, and only for ``groups`` (ids) if given.
        """

    @abc.abstractmethod
    async def verify(
        self, target: str, dest: str, groups: Collection[str], crm_emails: Collection[str], *, write: bool = True
    ) -> VerifyResult:
        """Correct applied state from what the CRM holds at a destination, and queue the difference."""

    @abc.abstractmethod
    async def discard_dead_letters(self, ids: Sequence[int]) -> int:
        """Drop dead letters an operator gave up on (kept in the attempt history); how many."""

    @abc.abstractmethod
    async def customer_history(self, query: str, limit: int = 10) -> list[CustomerHistory]:
        """Customers whose Plain id, email (any case) or external id is ``query``, each with
        desired and applied state and the attempts kept per (group, target)."""

    @abc.abstractmethod
    async def recent_events(self, limit: int = 20) -> list[RecentEvent]:
        """The newest inbox rows, each with its per-target outcome."""

    @abc.abstractmethod
    async def expire(self, kind: PruneKind, before: float, limit: int) -> int:
        """Delete up to ``limit`` rows of ``kind`` older than ``before`` (epoch seconds), in
        one short transaction; returns how many. Callers loop while it returns ``limit``."""

    @abc.abstractmethod
    async def storage_bytes(self) -> int | None:
        """The store's size on disk, or None where the backend cannot tell."""
