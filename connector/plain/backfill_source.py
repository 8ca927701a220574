"""The Plain-reading half of backfill: each group's members, page by page, stamped with the read's start.

A consumer (the store merge of ``backfill`` / scheduled reconcile) sees, per group::

    GroupPage(group, started, 1, members)   # upsert "member" desired state, stamped ``started``
    GroupPage(group, started, 2, members)
    ...
    GroupDone(group, started, pages, count) # the read is complete: any pair the store holds as
                                            # member of ``group`` that no page listed becomes a
                                            # removal as of ``started``; mark the group finished

``started`` is taken before the group's first request, so a webhook newer than the read
always wins over it, and a customer who joined mid-read and sorted before the cursor
(not listed) is brought by that join's webhook. A group whose ``GroupDone`` was never
seen was not read completely: its removals must not be applied, and a resumed backfill
reads it again (pass the finished ones as ``skip``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from connector.plain.api import MAX_PAGE, PlainApi
from connector.plain.errors import PlainUsageError
from connector.plain.queries import PlainGroup

__all__ = ["GroupDone", "GroupPage", "Member", "read_groups", "select_groups"]


@dataclass(frozen=True)
class Member:
    customer_id: str
    email: str | None
    external_id: str | None
    full_name: str
    group_id: str
    group_key: str


@dataclass(frozen=True)
class GroupPage:
    group: PlainGroup
    started: datetime
    number: int  # 1-based within the group's read
    members: tuple[Member, ...]


@dataclass(frozen=True)
class GroupDone:
    group: PlainGroup
    started: datetime
    pages: int
    members: int


def select_groups(groups: Sequence[PlainGroup], wanted: Collection[str] | None) -> list[PlainGroup]:
    """The groups named by key or id (as mappings name them), in ``groups`` order; all if None."""
    if wanted is None:
        return list(groups)
    chosen = [g for g in groups if g.key in wanted or g.id in wanted]
    unknown = set(wanted) - {g.key for g in chosen} - {g.id for g in chosen}
    if unknown:
        raise PlainUsageError(f"no customer group in Plain has the key or id {', '.join(sorted(unknown))}")
    return chosen


async def read_groups(
    api: PlainApi,
    wanted: Collection[str] | None = None,
    *,
    skip: Collection[str] = (),
    page_size: int = MAX_PAGE,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsyncIterator[GroupPage | GroupDone]:
    """Read ``wanted`` groups (keys or ids; every group if None) except the ids in ``skip``."""
    for group in select_groups(await api.customer_groups(), wanted):
        if group.id in skip:
            continue
        started = clock()
        pages = count = 0
        async for customers in api.customers([group.id], page_size=page_size):
            if not customers:  # an empty group answers one empty page: nothing to merge
                continue
            pages += 1
            count += len(customers)
            members = tuple(Member(c.id, c.email, c.external_id, c.full_name, group.id, group.key) for c in customers)
            yield GroupPage(group, started, pages, members)
        yield GroupDone(group, started, pages, count)
