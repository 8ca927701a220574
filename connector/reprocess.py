"""What ``reprocess`` does: parse kept unprocessable events again (after an upgrade) and apply
those now understood, reporting each as it goes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from connector.mappings import MappingSet
from connector.plain.changes import UnprocessableEvent, parse_event
from connector.store.base import Store


async def reprocess_kept(store: Store, mappings: MappingSet) -> AsyncIterator[str]:
    """One line per kept event, then the totals."""
    done = still = 0
    for key, body in await store.unprocessable_bodies():
        try:
            event = parse_event(body)
        except UnprocessableEvent as exc:
            still += 1
            yield f"{key}: still not understood: {exc.reason}"
            continue
        result = await store.reprocess(key, event, mappings.routes(event.changes), mappings.policy)
        done += 1
        yield f"{key}: {result.status} as {event.event_id} ({len(event.changes)} change(s))"
    yield f"reprocessed {done}, still unprocessable {still}"
