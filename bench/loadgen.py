"""An out-of-process HTTP/1.1 load generator for signed Plain webhooks.

Plain asyncio streams with keep-alive, not an HTTP client library: a Python client would
be the bottleneck long before the service is. Two modes:

- flat out (``--rate 0``): every connection sends its next request as soon as the last
  answer arrives (closed loop), measuring capacity;
- fixed rate (``--rate N``): requests are scheduled at N/s across the connections (open
  loop) and latency is measured from the *scheduled* time, so a stalled server shows up
  in the tail instead of silently slowing the generator (no coordinated omission).

Reads pre-signed requests from a file made by ``make_requests`` (one JSON line each:
``{"sig": ..., "body": ...}``) and prints one JSON line of results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def make_requests(path: Path, count: int, secret: str, customers: int = 5000, seed: int = 1) -> None:
    """Write ``count`` distinct signed membership events, attempt-stamped now."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from connector.testing.plain import membership_event, signed_request

    groups = [("cg_ent", "enterprise", "Enterprise"), ("cg_beta", "beta", "Beta")]
    base = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=seed)
    with path.open("w") as out:
        for i in range(count):
            group = groups[i % 2]
            ev = membership_event(
                event_id=f"pEv_bench{seed:03d}{i:08d}", customer_id=f"c_bench{i % customers:06d}",
                email=f"bench{i % customers}@example.com", groups_before=[] if i % 4 < 2 else [group],
                groups_after=[group] if i % 4 < 2 else [], timestamp=base + timedelta(milliseconds=i),
                generation="versioned" if i % 3 else "legacy",
            )  # fmt: skip
            body, headers = signed_request(ev, secret)
            out.write(json.dumps({"sig": headers["Plain-Request-Signature"], "body": body.decode()}) + "\n")


def _requests(path: Path, host: str) -> list[bytes]:
    out = []
    for line in path.read_text().splitlines():
        item = json.loads(line)
        body = item["body"].encode()
        head = (
            f"POST /webhooks/plain HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Plain-Request-Signature: {item['sig']}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run(host: str, port: int, requests: list[bytes], connections: int, rate: float) -> dict[str, object]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()
    start = time.perf_counter() + 0.2
    for i, request in enumerate(requests):
        queue.put_nowait((request, start + i / rate if rate else 0.0))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                try:
                    request, due = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if due:
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                sent = due or time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - sent)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - max(began, start if rate else began)
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 2) if latencies else 0.0

    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "per_second": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "offered_rate": rate or "flat out",
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="127.0.0.1:8080", help="host:port of serve")
    parser.add_argument("--requests", type=Path, required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s; 0 = flat out")
    args = parser.parse_args()
    host, _, port = args.url.rpartition(":")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(host, int(port), _requests(args.requests, args.url), args.connections, args.rate))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
