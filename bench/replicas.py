"""Scale-out benchmark: 1, 2 and 3 `serve` replicas on PostgreSQL next to one on SQLite.

Ingest: signed webhooks spread evenly over the replicas (one load generator process per
replica, flat out), reported as accepted events/s in total and the worst replica's p99.
Delivery: a burst of N changes to one HubSpot list (the fake enforcing 100 calls per
rolling 10 s), already in the store when the replicas start; reported as wall time from the
first CRM call to the last, calls, and 429s (which must be 0: the replicas share one
budget). Usage: `python bench/replicas.py [--events 5000] [--changes 10000]` with
PLAIN_CRM_SYNC_TEST_POSTGRES set; see docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from connector.store import open_store  # noqa: E402
from connector.store.migrate import migrate_store  # noqa: E402
from connector.testing.fakes import WindowLimit  # noqa: E402
from connector.testing.fakes.hubspot import FakeHubSpot  # noqa: E402
from connector.testing.postgres import ENV, scratch_schema  # noqa: E402

from delivery import TOKEN, email  # noqa: E402
from delivery import accept as accept_burst  # noqa: E402
from ingest import SECRET, free_port, load  # noqa: E402
from loadgen import make_requests  # noqa: E402


def write_config(folder: Path, port: int, store_url: str, target: str, options: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mappings").mkdir(exist_ok=True)
    (folder / "mappings" / "groups.yaml").write_text(
        f"mappings:\n  - group: enterprise\n    to: [{{target: sink{options}}}]\n"
        f"  - group: beta\n    to: [{{target: sink{options}}}]\n"
    )
    config = folder / "config.yaml"
    config.write_text(
        f"plain: {{signing_secret: {SECRET}}}\nserver: {{host: 127.0.0.1, port: {port}}}\n"
        f"store: {{url: '{store_url}'}}\nmappings: mappings/\ntargets:\n  sink: {target}\n"
        "delivery: {poll_interval_seconds: 0.2}\nlogging: {level: WARNING}\n"
    )
    return config


def start_serve(config: Path, port: int) -> subprocess.Popen[bytes]:
    """One replica, ready to answer; a busy 2-core machine can take a while to start three."""
    log = open(config.parent / "serve.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "connector", "serve", "--config", str(config)], stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"serve did not start: {(config.parent / 'serve.log').read_text()[-2000:]}")


def start_replicas(folder: Path, n: int, store_url: str, target: str, options: str = "") -> tuple[list[int], list[Any]]:
    ports = [free_port() for _ in range(n)]
    configs = [write_config(folder / f"r{i}", p, store_url, target, options) for i, p in enumerate(ports)]
    with ThreadPoolExecutor(n) as pool:
        procs = list(pool.map(start_serve, configs, ports))
    return ports, procs


def stop(procs: list[Any]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(20)


def ingest(folder: Path, n: int, store_url: str, events: int) -> dict[str, Any]:
    ports, procs = start_replicas(folder, n, store_url, "{type: jsonl, path: data/sync-log.jsonl}")
    try:
        files = []
        for i in range(n):
            files.append(folder / f"requests-{i}.jsonl")
            make_requests(files[-1], events // n, SECRET, seed=10 + i)
        with ThreadPoolExecutor(n) as pool:
            runs = list(pool.map(lambda pf: load(pf[0], pf[1], 0.0, 64 // n), zip(ports, files, strict=True)))
    finally:
        stop(procs)
    accepted = sum(r["requests"] for r in runs)
    errors = sum(c for r in runs for code, c in r["statuses"].items() if str(code) != "200")
    return {"events_per_s": round(accepted / max(r["seconds"] for r in runs), 1),
            "p99_ms": max(r["p99_ms"] for r in runs), "non_200": errors}  # fmt: skip


def fill_burst(folder: Path, changes: int, list_id: str) -> Path:
    """A SQLite store holding ``changes`` pending adds for the HubSpot target (made once)."""
    path = folder / f"burst-{changes}.db"
    if not path.exists():

        async def fill() -> None:
            store = open_store(f"sqlite:///{path}", folder)
            await store.open()
            await accept_burst(store, changes, "sink", {"list": list_id})
            await store.close()

        asyncio.run(fill())
    return path


def delivery(folder: Path, n: int, store_url: str, changes: int) -> dict[str, Any]:
    fake = FakeHubSpot(TOKEN, rate_limit=WindowLimit(100, 10))
    list_id = fake.seed_list("Enterprise")
    for i in range(changes):
        fake.seed_contact(email(i))
    migrate_store(f"sqlite:///{fill_burst(folder.parent, changes, list_id)}", store_url, force=True)
    with fake.serve() as base:
        target = f"{{type: hubspot, token: {TOKEN}, base_url: '{base}'}}"
        _ports, procs = start_replicas(folder, n, store_url, target, f', list: "{list_id}"')
        try:
            deadline = time.monotonic() + 600
            while len(fake.member_ids(list_id)) < changes and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            stop(procs)
    calls = fake.requests
    return {"wall_s": round(calls[-1].at - calls[0].at, 1), "calls": len(calls),
            "got_429": sum(1 for r in calls if r.status == 429),
            "all_applied": len(fake.member_ids(list_id)) == changes}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000, help="webhooks per ingest run")
    parser.add_argument("--changes", type=int, default=10000, help="changes in the HubSpot burst")
    parser.add_argument("--replicas", default="1,2,3")
    args = parser.parse_args()
    server = os.environ.get(ENV)
    if not server:
        raise SystemExit(f"set {ENV} to a PostgreSQL server URL")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    rows = []
    with TemporaryDirectory() as tmp:
        root = Path(tmp)
        setups = [("SQLite", 1)] + [("PostgreSQL", int(n)) for n in args.replicas.split(",")]
        for k, (kind, n) in enumerate(setups):
            row: dict[str, Any] = {"store": kind, "replicas": n}
            for part, run in (("ingest", ingest), ("delivery", delivery)):
                folder = root / f"{k}-{part}"
                if kind == "SQLite":
                    url = f"sqlite:///{folder}/store.db"
                    folder.mkdir()
                    row.update(run(folder, n, url, args.events if part == "ingest" else args.changes))
                else:
                    with scratch_schema(server, prefix="bench") as url:
                        row.update(run(folder, n, url, args.events if part == "ingest" else args.changes))
            print(json.dumps(row), flush=True)
            rows.append(row)
    print("\n| store | replicas | ingest events/s | ingest p99 ms | non-200 | burst wall s | calls | 429s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['store']} | {r['replicas']} | {r['events_per_s']} | {r['p99_ms']} | {r['non_200']} "
              f"| {r['wall_s']} | {r['calls']} | {r['got_429']} |")  # fmt: skip


if __name__ == "__main__":
    main()
