"""Run a target's delivery until its backlog is empty: for burst tests and benchmarks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Any

from connector.delivery.runner import TargetRunner
from connector.store.base import Store, TargetStatus


async def drain_target(store: Store, runner: TargetRunner, timeout: float = 60) -> dict[str, Any]:
    """Start ``runner``, wait until its target has no backlog and nothing in flight, stop it.

    Returns the target's status entry; fails with the last one seen after ``timeout``.
    """
    name = runner.adapter.name
    stopping = asyncio.Event()
    task = asyncio.create_task(runner.run(stopping))
    deadline = time.monotonic() + timeout
    report: TargetStatus | None = None
    try:
        while time.monotonic() < deadline:
            report = (await store.status()).targets.get(name)
            if report is not None and report.backlog == 0 and report.in_flight == 0:
                return asdict(report)
            await asyncio.sleep(0.05)
        raise AssertionError(f"backlog of {name!r} not drained: {report}")
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)
