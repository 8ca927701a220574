"""A bounded, optionally expiring, least-recently-used cache (ids a CRM handed out)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["LruCache"]

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """At most ``size`` entries; the least recently used goes first.

    With ``ttl`` (seconds), an entry older than that reads as absent, so something the
    CRM gained meanwhile (a second contact with the same email) is seen in time.
    ``clock`` is monotonic seconds.
    """

    def __init__(self, size: int, *, ttl: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.ttl, self._clock = size, ttl, clock
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value for ``key`` (and mark it used), or None if absent or expired."""
        entry = self._items.get(key)
        if entry is None or entry[0] < self._clock():
            return None
        self._items.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V) -> None:
        expires = self._clock() + self.ttl if self.ttl is not None else float("inf")
        self._items[key] = (expires, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def forget(self, key: K) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)
