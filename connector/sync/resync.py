"""Resync after a mapping edit (rules 8 and 9 of :mod:`connector.store.core_sync`) and ``--verify`` (rule 10).

Resync works from the desired state the store already holds (webhooks and backfills): it
calls no CRM and no Plain. ``--verify`` asks each target's adapter what the CRM holds at
each mapped destination (the optional :meth:`~connector.adapters.base.Adapter.members`
hook) and queues the corrections.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from connector.adapters.base import lists_members
from connector.adapters.errors import CrmError
from connector.config import Config
from connector.mappings import MappingSet
from connector.plain.changes import GroupInfo
from connector.store.base import Operation, Store
from connector.sync.backfill import routes_for

__all__ = ["Resynced", "UnknownGroup", "resync", "verify"]


class UnknownGroup(ValueError):
    """``--group`` names a group the store holds no state for."""


@dataclass
class Resynced:
    operations: list[Operation] = field(default_factory=list)
    #: what an operator should know (targets skipped, CRM emails left alone)
    notes: list[str] = field(default_factory=list)


async def _groups(store: Store, group: str | None) -> list[GroupInfo]:
    known = await store.known_groups()
    if group is None:
        return known
    chosen = [g for g in known if group in (g.id, g.key)]
    if not chosen:
        raise UnknownGroup(f"the store holds no state for group {group!r} yet: run `backfill --group {group}` first")
    return chosen


def _mapped(mappings: MappingSet, groups: list[GroupInfo], targets: Collection[str]) -> dict[tuple[str, str], Any]:
    """(target, dest) -> (options, ids of the groups mapped there)."""
    found: dict[tuple[str, str], Any] = {}
    for g in groups:
        for d in mappings.destinations(g.id, g.key):
            if d.target in targets:
                found.setdefault((d.target, d.key), (d.options, set()))[1].add(g.id)
    return found


async def resync(
    store: Store, mappings: MappingSet, targets: Collection[str], group: str | None = None,
    *, prune: bool = False, write: bool = True,
) -> Resynced:  # fmt: skip
    out = Resynced()
    groups = await _groups(store, group)
    for g in groups:
        routes = [r for r in routes_for(mappings, g) if r.target in targets]
        if routes:
            out.operations += await store.resync_group(g, routes, write=write)
    if prune:
        everywhere = await store.known_groups()
        mapped = {dest: ids for dest, (_options, ids) in _mapped(mappings, everywhere, targets).items()}
        only = {g.id for g in groups} if group is not None else None
        out.operations += await store.prune(mapped, targets, only, write=write)
    return out


async def verify(
    store: Store, config: Config, mappings: MappingSet, targets: Collection[str], group: str | None = None,
    *, write: bool = True,
) -> Resynced:  # fmt: skip
    out = Resynced()
    by_dest = _mapped(mappings, await _groups(store, group), targets)
    for name in sorted({t for t, _dest in by_dest}):
        adapter = config.targets[name].create()
        if not lists_members(adapter):
            out.notes.append(f"target {name} ({adapter.type_name}) cannot list what the CRM holds: not verified")
            continue
        await adapter.start()
        try:
            for (target, dest), (options, group_ids) in by_dest.items():
                if target != name:
                    continue
                emails = [email async for email in adapter.members(options)]
                found = await store.verify(target, dest, group_ids, emails, write=write)
                out.operations += found.operations
                if found.unknown:
                    out.notes.append(
                        f"target {name} {dest}: {found.unknown} member(s) are no Plain customer the store knows: left alone"
                    )
        except CrmError as error:
            out.notes.append(f"target {name}: cannot read what the CRM holds: {error.reason}")
        finally:
            await adapter.close()
    return out
