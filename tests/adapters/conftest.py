"""What every adapter test needs: a change, and an adapter run between its start and its close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from connector.adapters.base import Adapter, Change
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


def make_change(**fields: Any) -> Change:
    """A Change with neutral values for what a test does not look at; ``fields`` override them."""
    defaults: dict[str, Any] = {"key": "k", "action": "add", "customer_id": "c_1", "email": "ann@example.com",
                                "group_id": "cg_1", "group_key": "enterprise", "event_id": "pEv_1"}  # fmt: skip
    return Change(**{**defaults, **fields})
