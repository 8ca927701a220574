"""What a fake server saw: every request, in arrival order, readable from the test thread."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordedRequest:
    """One request as the fake received it.

    ``headers`` keys are lower-case; ``json`` is the decoded body or None; ``at`` is
    wall-clock epoch seconds at arrival; ``status`` is what the fake answered (None if
    the connection was dropped or the request is still being handled).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    at: float
    status: int | None = None
    #: why the fake answered the way it did: "route", "canned", "rate_limited",
    #: "concurrency", "fault", "dropped"
    cause: str = "route"


@dataclass
class RequestLog:
    """Thread-safe request log plus named counters.

    The fake appends from the server thread; tests read snapshots from theirs.
    """

    _items: list[RecordedRequest] = field(default_factory=list)
    _counters: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, request: RecordedRequest) -> None:
        with self._lock:
            self._items.append(request)
            self._counters["requests"] += 1

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._items)

    @property
    def counters(self) -> Counter[str]:
        """``requests`` plus one counter per cause other than "route" (``rate_limited``…)."""
        with self._lock:
            return Counter(self._counters)

    def matching(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Requests with this method and/or path (exact path, or prefix if it ends in ``*``)."""
        return [r for r in self.requests if _matches(r, method, path)]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._counters.clear()

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self.requests)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def _matches(request: RecordedRequest, method: str | None, path: str | None) -> bool:
    if method is not None and request.method != method.upper():
        return False
    if path is None:
        return True
    if path.endswith("*"):
        return request.path.startswith(path[:-1])
    return request.path == path
