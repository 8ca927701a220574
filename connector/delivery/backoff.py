"""How long to wait before the next attempt of a change that failed transiently."""

from __future__ import annotations

import random


def backoff_seconds(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": between half and all of ``base * 2**attempts``.

    Jitter spreads a burst of failures so they do not all come back at the same instant;
    keeping the lower half avoids the near-zero waits that full jitter sometimes draws.
    """
    ceiling = min(cap, base * (2 ** min(attempts, 32)))
    return (rng or random).uniform(ceiling / 2, ceiling)


def jittered(retry_after: float, rng: random.Random | None = None) -> float:
    """The delay a CRM asked for, plus up to 10 % so waiting workers do not stampede."""
    return retry_after * (1 + 0.1 * (rng or random).random())
