"""What every adapter test needs: run an adapter between its start and its close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from connector.adapters.base import Adapter
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
