"""A virtual-time event loop: timing tests without waiting and without flakiness.

``asyncio.sleep(10)`` on :class:`VirtualTimeLoop` returns at once with ``loop.time()``
10 seconds later. Code that takes its clock from the running loop (as
:class:`connector.adapters.ratelimit.RateLimiter` does by default) can then be tested
over minutes of simulated traffic in milliseconds, with exact time stamps.

Only for code that does no real network I/O (respx-mocked httpx is fine); use the real
loop with the uvicorn fakes.
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """Never blocks on a timer: when the loop would sleep, its clock jumps instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        self._loop.iterations += 1
        events = super().select(0)
        if events:
            return events
        if timeout is None:
            # Nothing scheduled: only a real file descriptor (another thread) can wake us.
            events = super().select(5.0)
            if not events:
                raise RuntimeError("VirtualTimeLoop: deadlock, nothing is scheduled or ready")
            return events
        if timeout <= 0:
            return events
        now = self._loop.virtual_now
        # Always move forward: a gap below the float resolution would otherwise stall.
        self._loop.virtual_now = max(now + timeout, math.nextafter(now, math.inf))
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """Event loop whose ``time()`` only moves when every task is waiting on a timer.

    ``iterations`` counts loop turns; a test can bound it to prove there is no polling.
    """

    def __init__(self) -> None:
        self.virtual_now = 0.0
        self.iterations = 0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.virtual_now


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a :class:`VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)
