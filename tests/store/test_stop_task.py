"""The PostgreSQL store's background tasks end when the store closes, even if one cancel is lost."""

from __future__ import annotations

import asyncio

from connector.store.postgres.listen import stop_task


def test_a_task_that_lost_a_cancel_is_stopped_all_the_same() -> None:
    """Python 3.11's wait_for can swallow a cancel (its inner call finished at the same moment):
    the renewal loop then runs on. Stopping must not wait for it for ever."""
    rounds: list[int] = []

    async def loop_that_swallows_one_cancel() -> None:
        swallowed = False
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed = True  # as wait_for does when the result and the cancel cross
            rounds.append(1)

    async def scenario() -> bool:
        task = asyncio.create_task(loop_that_swallows_one_cancel())
        await asyncio.sleep(0.05)
        stopper = asyncio.create_task(stop_task(task))
        # a liveness bound, not a timing: stopping takes milliseconds, or never ends
        await asyncio.wait([stopper], timeout=5)
        stopped = stopper.done() and task.done()
        task.cancel()  # clean up whatever the stopper failed to end
        stopper.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
        return stopped

    assert asyncio.run(scenario()) is True
    assert rounds  # it did run on after the first cancel
