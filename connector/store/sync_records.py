"""What backfill, reconcile, resync and verify hand back: runs, reads, moves and operations.

Part of the store interface (:mod:`connector.store.base` re-exports every name); kept apart
so each module stays readable. The rules that produce them are in :mod:`connector.store.core_sync`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SyncKind = Literal["backfill", "reconcile"]
RunStatus = Literal["running", "done", "failed", "abandoned"]


@dataclass(frozen=True, slots=True)
class Operation:
    """A CRM operation backfill, resync or verify queued (or, in a dry run, would queue)."""

    target: str
    dest: str
    customer_id: str
    group_id: str
    action: Literal["add", "remove"]
    email: str | None = None
    group_key: str | None = None


@dataclass(frozen=True, slots=True)
class MembershipMove:
    """A change of desired state that a read of Plain found (joined, or left)."""

    customer_id: str
    group_id: str
    joined: bool
    email: str | None = None
    group_key: str | None = None


@dataclass(slots=True)
class Merged:
    """What merging part of a read into the store changed, and the work that follows."""

    changes: list[MembershipMove] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)

    def extend(self, other: Merged) -> None:
        self.changes.extend(other.changes)
        self.operations.extend(other.operations)


@dataclass(frozen=True, slots=True)
class GroupRead:
    """The counts of one group's complete read, kept in the run record."""

    group_id: str
    group_key: str | None
    pages: int
    customers: int
    changes: int
    work: int


@dataclass(frozen=True, slots=True)
class RunStart:
    """A backfill or reconcile run, new or resumed; ``finished`` are group ids not to read again."""

    id: int
    resumed: bool
    finished: frozenset[str] = frozenset()


@dataclass(slots=True)
class RunInfo:
    """The newest backfill or reconcile run, as ``status`` shows it (epoch seconds)."""

    id: int
    kind: SyncKind
    status: RunStatus
    started_at: float
    finished_at: float | None = None
    groups: int = 0
    pages: int = 0
    customers: int = 0
    changes: int = 0
    work: int = 0
    error: str | None = None
    #: reconcile: when the running ``serve`` starts the next one
    next_at: float | None = None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What ``resync --verify`` found at one destination."""

    operations: list[Operation]
    #: emails the CRM holds there that belong to no customer the store knows (left alone)
    unknown: int = 0
