"""What ``plan`` prints: the CRM operations one event would cause, without calling anything."""

from __future__ import annotations

from collections.abc import Sequence

from connector.mappings import MappingSet
from connector.plain.changes import ParsedEvent


def render_plan(event: ParsedEvent, mappings: MappingSet, lifecycle: Sequence[str] = ()) -> str:
    """``lifecycle``: what an email change, deletion or group change does, per target
    (:func:`connector.lifecycle_view.plan_lines`), one operation each."""
    lines = [f"event {event.event_id} ({event.event_type}) at {event.event_time}: {len(event.changes)} change(s)"]
    operations = 0
    for change in event.changes:
        action = "add" if change.added else "remove"
        group = change.group.key or change.group.id
        dests = mappings.destinations(change.group.id, change.group.key)
        if not dests:
            lines.append(
                f"  {action} {change.customer.id} <{change.customer.email}> group {group}: no mapping, nothing to do"
            )
        for dest in dests:
            operations += 1
            opts = ", ".join(f"{k}={v}" for k, v in dest.options.items()) or "-"
            lines.append(
                f"  {dest.target}: {action} {change.customer.email or change.customer.id} ({opts}) for group {group}"
            )
    lines.extend(lifecycle)
    operations += len(lifecycle)
    lines.append(f"{operations} operation(s); nothing was called")
    return "\n".join(lines)
