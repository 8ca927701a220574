"""What ``check`` reports: the summary of a valid setup, and ``--online`` asking each CRM."""

from __future__ import annotations

from connector.config import Config
from connector.mappings import MappingSet


def summary(config: Config, mappings: MappingSet) -> str:
    """One line saying what a valid config and its mappings amount to."""
    destinations = sum(len(d) for d in mappings.by_group.values())
    return (
        f"ok: {len(config.targets)} target(s), {len(mappings.by_group)} group(s) mapped to "
        f"{destinations} destination(s) from {len(mappings.files)} file(s)"
    )


async def check_online(config: Config, mappings: MappingSet) -> list[tuple[str, str]]:
    """Ask each target's CRM whether its token, lists and tags work; (target, problem) pairs."""
    problems: list[tuple[str, str]] = []
    for name, target in config.targets.items():
        adapter = target.create()
        options = [dict(d.options) for ds in mappings.by_group.values() for d in ds if d.target == name]
        try:
            await adapter.start()
            problems.extend((name, p) for p in await adapter.check_online(options))
        except Exception as exc:  # an operator wants the reason, not a traceback
            problems.append((name, f"cannot start: {exc}"))
        finally:
            await adapter.close()
    return problems
