"""The rate limiter, on virtual time: exact pacing, concurrency cap, shared pauses."""

from __future__ import annotations

import asyncio
import random

import pytest
from connector.adapters.ratelimit import RateLimit, RateLimiter, Throttled
from connector.testing.fakes.clock import run_virtual
from pydantic import ValidationError

HUBSPOT_LIKE = RateLimit(requests=100, per_seconds=10, max_concurrency=10)


def now() -> float:
    return asyncio.get_running_loop().time()


def test_never_more_than_the_limit_in_any_window_as_the_server_sees_it() -> None:
    """1000 calls with random latency: any 101 arrivals span at least 10 s."""
    rng = random.Random(7)

    async def main() -> tuple[list[float], float, int]:
        limiter = RateLimiter(HUBSPOT_LIKE)
        arrivals: list[float] = []

        async def call() -> None:
            async with limiter.slot():
                latency = rng.uniform(0.01, 0.5)
                arrivals.append(now() + rng.uniform(0, latency))  # somewhere in flight
                await asyncio.sleep(latency)

        await asyncio.gather(*(call() for _ in range(1000)))
        return sorted(arrivals), now(), asyncio.get_running_loop().iterations  # type: ignore[attr-defined]

    arrivals, end, iterations = run_virtual(main())
    assert len(arrivals) == 1000
    spans = [arrivals[i + 100] - arrivals[i] for i in range(len(arrivals) - 100)]
    assert min(spans) >= 10 - 1e-6
    # Not over-cautious: 1000 calls at 100 / 10 s need 90 s; latency adds a little.
    assert end < 110
    # Waits are timers, not polling: a handful of loop turns per call.
    assert iterations < 10 * 1000


def test_a_burst_goes_out_at_once_then_one_window_later() -> None:
    async def main() -> list[float]:
        limiter = RateLimiter(RateLimit(requests=100, per_seconds=10, max_concurrency=250))
        starts: list[float] = []

        async def call() -> None:
            async with limiter.slot():
                starts.append(now())

        await asyncio.gather(*(call() for _ in range(250)))
        return starts

    starts = run_virtual(main())
    assert starts[:100] == [0.0] * 100
    assert starts[100:200] == pytest.approx([10.0] * 100, abs=1e-5)
    assert starts[200:] == pytest.approx([20.0] * 50, abs=1e-5)


def test_concurrency_is_capped_and_reached() -> None:
    async def main() -> int:
        limiter = RateLimiter(RateLimit(requests=1000, per_seconds=1, max_concurrency=3))
        peak = 0

        async def call() -> None:
            nonlocal peak
            async with limiter.slot():
                peak = max(peak, limiter.in_flight)
                await asyncio.sleep(0.1)

        await asyncio.gather(*(call() for _ in range(30)))
        assert now() == pytest.approx(1.0)  # 30 calls, 3 at a time, 0.1 s each
        return peak

    assert run_virtual(main()) == 3


def test_window_counts_from_finish_so_slow_calls_cannot_overlap_windows() -> None:
    async def main() -> list[float]:
        limiter = RateLimiter(RateLimit(requests=1, per_seconds=1, max_concurrency=5))
        starts: list[float] = []

        async def call() -> None:
            async with limiter.slot():
                starts.append(now())
                await asyncio.sleep(3)  # the vendor may see it arrive any time in these 3 s

        await asyncio.gather(call(), call())
        return starts

    assert run_virtual(main()) == pytest.approx([0.0, 4.0])


def test_pause_holds_every_caller_until_the_reset() -> None:
    async def main() -> list[float]:
        limiter = RateLimiter(RateLimit(requests=1, per_seconds=1, max_concurrency=5))
        starts: list[float] = []

        async def call() -> None:
            async with limiter.slot():
                starts.append(now())

        async def throttled_after(delay: float) -> None:
            await asyncio.sleep(delay)
            limiter.pause_for(30)  # a 429 arrived for someone else

        await asyncio.gather(call(), call(), call(), throttled_after(0.5))
        return starts

    starts = run_virtual(main())
    assert starts[0] == 0.0
    assert starts[1] == pytest.approx(30.5) and starts[2] == pytest.approx(31.5)


def test_a_pause_longer_than_the_caller_allows_raises_throttled() -> None:
    async def main() -> float:
        limiter = RateLimiter(RateLimit())
        limiter.pause_for(120)
        with pytest.raises(Throttled) as caught:
            async with limiter.slot(max_pause=10):
                raise AssertionError("admitted during a pause")
        assert limiter.in_flight == 0
        async with limiter.slot(max_pause=200):
            pass
        assert now() == pytest.approx(120)
        return caught.value.retry_after

    assert run_virtual(main()) == pytest.approx(120)


def test_pause_never_shortens() -> None:
    async def main() -> float:
        limiter = RateLimiter(RateLimit())
        limiter.pause_for(20)
        limiter.pause_for(5)
        return limiter.paused_for()

    assert run_virtual(main()) == pytest.approx(20)


def test_injected_clock_is_used_for_the_window() -> None:
    clock_now = 1000.0

    async def main() -> None:
        limiter = RateLimiter(RateLimit(requests=1, per_seconds=10), clock=lambda: clock_now)
        async with limiter.slot():
            pass
        limiter.pause_for(5)
        assert limiter.paused_for() == pytest.approx(5)

    run_virtual(main())


def test_operator_override_keeps_vendor_fields_it_does_not_name() -> None:
    override = RateLimit.model_validate({"requests": 50})
    merged = override.over(HUBSPOT_LIKE)
    assert merged == RateLimit(requests=50, per_seconds=10, max_concurrency=10)


@pytest.mark.parametrize(
    "raw",
    [{"requests": 0}, {"per_seconds": 0}, {"max_concurrency": 0}, {"request": 5}],
)
def test_bad_rate_limit_is_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RateLimit.model_validate(raw)
