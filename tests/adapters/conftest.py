"""What every adapter test needs: a change, and an adapter run between its start and its close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from connector.adapters.base import Adapter, Change, Outcome
from connector.testing.fakes.clock import run_virtual

A = TypeVar("A", bound=Adapter)
T = TypeVar("T")


def run_started(adapter: A, body: Callable[[A], Awaitable[T]], *, virtual: bool = False) -> T:
    """``body(adapter)`` between ``start()`` and ``close()``; ``virtual``: on a virtual clock
    (for respx tests, whose retry waits then cost no wall time), else on a real loop (for
    fakes on loopback)."""

    async def main() -> T:
        await adapter.start()
        try:
            return await body(adapter)
        finally:
            await adapter.close()

    return run_virtual(main()) if virtual else asyncio.run(main())


def apply_batches(adapter: Adapter, *batches: Sequence[Change]) -> list[list[Outcome]]:
    """Start ``adapter``, apply each batch in turn, close it; the outcomes per batch."""

    async def body(started: Adapter) -> list[list[Outcome]]:
        return [await started.apply(batch) for batch in batches]

    return run_started(adapter, body)


def check_online(adapter: Adapter, destinations: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    """``adapter.check_online(destinations)`` between its start and its close."""
    return run_started(adapter, lambda started: started.check_online(destinations))


def make_change(**fields: Any) -> Change:
    """A Change with neutral values for what a test does not look at; ``fields`` override them."""
    defaults: dict[str, Any] = {"key": "k", "action": "add", "customer_id": "c_1", "email": "ann@example.com",
                                "group_id": "cg_1", "group_key": "enterprise", "event_id": "pEv_1"}  # fmt: skip
    return Change(**{**defaults, **fields})
