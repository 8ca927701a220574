"""Wake-ups across replicas: one ``LISTEN`` connection per store, reconnected when lost.

A notification only says "target T has new work"; the runner still claims through the
outbox, so a lost or duplicated notification costs at most one poll interval or one
empty claim. Channels are per schema, so stores in other schemas of the same database
(other deployments, test runs) do not wake each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterable

import psycopg
from psycopg import sql

log = logging.getLogger("connector.store")

#: wait before listening again after the connection was lost; polling covers the gap
RECONNECT_SECONDS = 2.0


def channel_name(schema: str) -> str:
    return f"plain_crm_sync.{schema}"[:63]  # identifiers are cut at 63 bytes anyway


def redact_url(url: str) -> str:
    """The store URL without its password, for messages and logs."""
    url = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel one of the store's background tasks and wait until it has ended.

    Cancels again while it runs on: on Python 3.11 ``asyncio.wait_for`` swallows a cancel that
    arrives just as its inner call finishes, and a loop such as the rate-share renewal would
    then go on for ever while we waited for it.
    """
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=1)
    if task is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Listener:
    def __init__(self, url: str, channel: str, wake: Callable[[Iterable[str]], None]) -> None:
        self.url = url
        self.channel = channel
        self.wake = wake
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Start listening; returns once ``LISTEN`` is in place (or the first try failed)."""
        self._task = asyncio.create_task(self._run(), name="store:listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except psycopg.Error as exc:
                log.warning("store: lost the LISTEN connection (%s); polling until it is back", exc)
            self._ready.set()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self._ready.set()
            async for note in conn.notifies():
                self.wake([note.payload])
