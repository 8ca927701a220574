"""Backfill (and serve's scheduled reconcile): mapped groups' members from Plain's API into desired state.

Each group is read page by page (:mod:`connector.plain.backfill_source`); every page is
merged in one store transaction, stamped with the read's start, and a finished read
removes the members Plain no longer lists (rules 6 and 7 of
:mod:`connector.store.core_sync`). Work lands in the outbox, where a running ``serve``
picks it up at its next poll, or the next ``serve`` does.

The run record makes it resumable: finished groups are kept per run, and a run that was
interrupted (Ctrl-C, kill, Plain unreachable) is resumed by the next run of the same kind
over the same groups, reading only the groups it had not finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from connector.mappings import MappingSet
from connector.plain.api import PlainApi
from connector.plain.backfill_source import GroupDone, GroupPage, read_groups
from connector.plain.changes import CustomerInfo, GroupInfo, normalise_time
from connector.plain.errors import PlainApiError
from connector.store.base import GroupRead, Merged, Route, RunInfo, Store, SyncKind
from connector.sync.progress import Counts, Progress, Silent

__all__ = ["BackfillResult", "backfill"]


@dataclass
class BackfillResult:
    counts: Counts
    #: filled only in a dry run (a real run of 10,000 customers need not hold them all)
    plan: Merged = field(default_factory=Merged)
    run: RunInfo | None = None
    resumed: bool = False
    skipped: list[str] = field(default_factory=list)


def routes_for(mappings: MappingSet, group: GroupInfo) -> list[Route]:
    return [Route(d.target, d.key) for d in mappings.destinations(group.id, group.key)]


async def _selection(api: PlainApi, mappings: MappingSet, wanted: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Groups to read, and mapped names Plain has no group for (skipped with a note, not fatal)."""
    if wanted:
        return list(dict.fromkeys(wanted)), []
    known = {name for g in await api.customer_groups() for name in (g.id, g.key)}
    mapped = mappings.groups()
    return [g for g in mapped if g in known], [g for g in mapped if g not in known]


async def backfill(
    store: Store,
    api: PlainApi,
    mappings: MappingSet,
    wanted: Sequence[str] | None = None,
    *,
    kind: SyncKind = "backfill",
    write: bool = True,
    progress: Progress | None = None,
    next_at: float | None = None,
) -> BackfillResult:
    """Read ``wanted`` groups (keys or ids; every mapped group if None) and merge them.

    ``next_at`` is recorded with the run (serve's reconcile: when the next one starts).
    """
    progress = progress or Silent()
    run = await store.start_run(kind, wanted) if write else None
    result = BackfillResult(Counts(), resumed=bool(run and run.resumed))
    skip = run.finished if run else frozenset()
    try:
        names, result.skipped = await _selection(api, mappings, wanted)
        for name in result.skipped:
            progress.note(f"mapping names group {name!r}, which Plain does not have: skipped")
        if skip:
            progress.note(f"resuming run {run.id if run else '?'}: {len(skip)} group(s) already read")
        progress.start(max(0, len(names) - len(skip)))
        if names:
            await _read_all(store, api, mappings, names, run.id if run else None, skip, result, write, progress)
    except Exception as exc:
        if run is not None:  # resumable: the next run of this kind and selection continues it
            result.run = await store.finish_run(run.id, "failed", _reason(exc), next_at)
        raise
    finally:
        progress.close()
    if run is not None:
        result.run = await store.finish_run(run.id, "done", next_at=next_at)
    return result


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, PlainApiError) else f"{type(exc).__name__}: {exc}"


async def _read_all(
    store: Store, api: PlainApi, mappings: MappingSet, names: list[str], run_id: int | None,
    skip: frozenset[str], result: BackfillResult, write: bool, progress: Progress,
) -> None:  # fmt: skip
    counts = result.counts
    listed: set[str] = set()
    changes = work = 0
    async for item in read_groups(api, names, skip=skip):
        group = GroupInfo(item.group.id, item.group.key, item.group.name)
        routes = routes_for(mappings, group)
        stamp = (normalise_time(item.started.isoformat()), f"backfill:{run_id if run_id is not None else 'dry-run'}")
        if isinstance(item, GroupPage):
            customers = [CustomerInfo(m.customer_id, m.email, m.external_id, m.full_name) for m in item.members]
            listed.update(c.id for c in customers)
            merged = await store.merge_members(group, customers, stamp, routes, write=write)
            counts.pages += 1
            counts.customers += len(customers)
            changes += len(merged.changes)
            work += len(merged.operations)
        else:
            assert isinstance(item, GroupDone)
            read = GroupRead(group.id, group.key, item.pages, item.members, changes, work)
            merged = await store.finish_group(run_id, group, listed, stamp, routes, read, write=write)
            counts.groups += 1
            listed, changes, work = set(), 0, 0
        counts.changes += len(merged.changes)
        counts.work += len(merged.operations)
        if not write:
            result.plan.extend(merged)
        progress.update(group.key or group.id, counts)
