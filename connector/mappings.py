"""Mapping files: which Plain group goes to which target, with which options.

Operators edit these while the service runs. A reload either swaps in a fully valid new
set or changes nothing, so a half-saved file never stops the sync.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from connector import yamlfile
from connector.adapters import OptionsError
from connector.config import Config, Target
from connector.plain.changes import MembershipChange
from connector.store.base import GroupDeleted, Policy, Route
from connector.yamlfile import YamlError

log = logging.getLogger("connector.mappings")


@dataclass(frozen=True, slots=True)
class Destination:
    """One place a group's members go: a target plus its options (a list, a tag…)."""

    target: str
    options: Mapping[str, Any]
    #: canonical JSON of ``options``; with ``target`` it names the destination in the store
    key: str
    #: ``file:line`` where an operator wrote it
    source: str
    #: what to do at this destination when Plain deletes the group
    on_group_deleted: GroupDeleted = "keep"

    @property
    def route(self) -> Route:
        return Route(self.target, self.key, self.on_group_deleted)


@dataclass(frozen=True)
class MappingSet:
    by_group: Mapping[str, tuple[Destination, ...]]
    files: tuple[Path, ...]
    #: what the targets' options and these mappings say beyond membership changes
    policy: Policy = field(default_factory=Policy)

    def destinations(self, group_id: str, group_key: str | None) -> tuple[Destination, ...]:
        """Destinations for a group written by its id or by its key (both may be mapped)."""
        by_id = self.by_group.get(group_id, ())
        by_key = self.by_group.get(group_key, ()) if group_key else ()
        if not by_key:
            return by_id
        if not by_id:
            return by_key
        seen = {(d.target, d.key) for d in by_id}
        return by_id + tuple(d for d in by_key if (d.target, d.key) not in seen)

    def routes(self, changes: Sequence[MembershipChange]) -> list[list[Route]]:
        """Per change, the store routes its destinations name (what ``Store.accept`` takes)."""
        return [[d.route for d in self.destinations(c.group.id, c.group.key)] for c in changes]

    def groups(self) -> list[str]:
        return sorted(self.by_group)


def mapping_files(path: Path) -> list[Path]:
    """A single file, or every ``*.yaml``/``*.yml`` directly in a folder, in name order."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if path.exists():
        return [path]
    raise YamlError(path, None, "mappings path does not exist")


def load_mappings(config: Config) -> MappingSet:
    """Load and validate all mapping files; raise :class:`YamlError` at the first problem."""
    files = mapping_files(config.mappings_path)
    by_group: dict[str, list[Destination]] = {}
    for file in files:
        for group, dest in _load_file(file, config.targets):
            existing = by_group.setdefault(group, [])
            if all((d.target, d.key) != (dest.target, dest.key) for d in existing):
                existing.append(dest)
    frozen = {g: tuple(ds) for g, ds in by_group.items()}
    return MappingSet(frozen, tuple(files), _policy(config, frozen))


def _policy(config: Config, by_group: Mapping[str, tuple[Destination, ...]]) -> Policy:
    return Policy(
        on_email_change={name: t.config.on_email_change for name, t in config.targets.items()},
        on_customer_deleted={name: t.config.on_customer_deleted for name, t in config.targets.items()},
        routing={group: tuple(d.route for d in ds) for group, ds in by_group.items()},
    )


def _load_file(file: Path, targets: Mapping[str, Target]) -> list[tuple[str, Destination]]:
    doc = yamlfile.load(file)
    if doc.data is None:
        return []
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("mappings"), list):
        raise doc.error((), "expected a top-level 'mappings:' list")
    extra = set(doc.data) - {"mappings"}
    if extra:
        raise doc.error((sorted(extra)[0],), f"unknown key {sorted(extra)[0]!r}")
    found = []
    for i, entry in enumerate(doc.data["mappings"]):
        loc = ("mappings", i)
        if not isinstance(entry, dict):
            raise doc.error(loc, "each mapping needs 'group:' and 'to:'")
        unknown = set(entry) - {"group", "to", "on_group_deleted"}
        if unknown:
            raise doc.error(
                (*loc, sorted(unknown)[0]),
                f"unknown key {sorted(unknown)[0]!r} (expected group, to, on_group_deleted)",
            )
        on_deleted = entry.get("on_group_deleted", "keep")
        if on_deleted not in ("keep", "remove"):
            raise doc.error((*loc, "on_group_deleted"), "'on_group_deleted' must be keep or remove")
        group = entry.get("group")
        if not isinstance(group, str) or not group.strip():
            raise doc.error((*loc, "group"), "'group' must be a Plain group key or id (cg_…)")
        to = entry.get("to")
        if not isinstance(to, list) or not to:
            raise doc.error((*loc, "to"), "'to' must be a non-empty list of {target: …}")
        for j, item in enumerate(to):
            dest = _destination(doc, (*loc, "to", j), item, targets)
            found.append((group.strip(), replace(dest, on_group_deleted=on_deleted)))
    return found


def _destination(doc: yamlfile.Located, loc: yamlfile.Loc, item: Any, targets: Mapping[str, Target]) -> Destination:
    if not isinstance(item, dict) or not isinstance(item.get("target"), str):
        raise doc.error(loc, "each 'to' entry needs 'target: <name from targets:>'")
    options = {k: v for k, v in item.items() if k != "target"}
    name = item["target"]
    target = targets.get(name)
    if target is None:
        known = ", ".join(sorted(targets)) or "none configured"
        raise doc.error((*loc, "target"), f"unknown target {name!r} (configured: {known})")
    try:
        normalised = target.adapter_class.validate_options(options)
    except OptionsError as exc:
        raise doc.error(loc, f"target {name!r}: {exc}") from None
    key = json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Destination(name, normalised, key, f"{doc.path}:{doc.line(loc)}")


class MappingWatcher:
    """Holds the live mapping set; swaps it only for a valid replacement.

    Polls file modification stamps (cheap, no extra dependency) and reloads on demand
    (SIGHUP). The last error is kept so ``/readyz`` and ``status`` can show it.
    """

    def __init__(self, config: Config, initial: MappingSet) -> None:
        self._config = config
        self.current = initial
        self.last_error: str | None = None
        #: epoch seconds the live set was loaded; the last refused reload (kept after a
        #: later good one, for the status page) and when it happened
        self.loaded_at = time.time()
        self.last_refused: str | None = None
        self.refused_at: float | None = None
        self._stamp = self._read_stamp()

    def _read_stamp(self) -> tuple[tuple[str, int, int], ...]:
        try:
            files = mapping_files(self._config.mappings_path)
            return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        except (OSError, YamlError):
            return ()

    def changed(self) -> bool:
        return self._read_stamp() != self._stamp

    def reload(self) -> bool:
        """Try to load the files again; True if the live set was replaced."""
        self._stamp = self._read_stamp()
        try:
            fresh = load_mappings(self._config)
        except YamlError as exc:
            self.last_error = str(exc)
            self.last_refused, self.refused_at = self.last_error, time.time()
            log.error("mapping reload refused, previous mappings stay active: %s", exc)
            return False
        self.current = fresh
        self.last_error = None
        self.loaded_at = time.time()
        log.info("mappings reloaded: %d group(s) from %d file(s)", len(fresh.by_group), len(fresh.files))
        return True

    def poll(self) -> bool:
        return self.reload() if self.changed() else False
