"""Run an adapter through its lifecycle (start, work, close) from a synchronous test."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from connector.adapters.base import Adapter, Change, Outcome


def apply_batches(adapter: Adapter, *batches: Sequence[Change]) -> list[list[Outcome]]:
    """Start ``adapter``, apply each batch in turn, close it; the outcomes per batch."""

    async def main() -> list[list[Outcome]]:
        await adapter.start()
        try:
            return [await adapter.apply(batch) for batch in batches]
        finally:
            await adapter.close()

    return asyncio.run(main())


def check_online(adapter: Adapter, destinations: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    async def main() -> list[str]:
        await adapter.start()
        try:
            return await adapter.check_online(destinations)
        finally:
            await adapter.close()

    return asyncio.run(main())
