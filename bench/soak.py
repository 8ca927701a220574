"""Soak: a steady stream of webhooks into a real `serve` with retention shortened to minutes.

Posts signed membership events at ``--rate`` per second for ``--minutes`` to `serve` (jsonl
target), with ``retention.inbox_days`` and ``history_days`` set to ``--window`` minutes and
pruning every 10 s. Every ``--every`` seconds it prints the store's size on disk (file +
WAL), the rows kept and serve's RSS; once the window is reached both should stay flat.

Usage: `python bench/soak.py [--minutes 12] [--rate 50] [--window 3]`; see docs/performance.md.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from connector.testing.plain import membership_event, signed_request

SECRET = "soak-secret"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _setup(folder: Path, port: int, window_minutes: float) -> Path:
    days = window_minutes / (24 * 60)
    (folder / "mappings").mkdir()
    (folder / "mappings" / "groups.yaml").write_text(
        yaml.safe_dump({"mappings": [{"group": "enterprise", "to": [{"target": "audit"}]}]})
    )
    config = {
        "plain": {"signing_secret": SECRET},
        "server": {"host": "127.0.0.1", "port": port},
        "store": {"url": "sqlite:///data/soak.db"},
        "mappings": "mappings/",
        "targets": {"audit": {"type": "jsonl", "path": "/dev/null"}},
        "retention": {"inbox_days": days, "history_days": days, "prune_interval_seconds": 10},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12)
    parser.add_argument("--rate", type=float, default=50, help="events per second")
    parser.add_argument("--window", type=float, default=3, help="retention window, minutes")
    parser.add_argument("--every", type=float, default=30, help="report interval, seconds")
    parser.add_argument("--port", type=int, default=18931)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="soak-"))
    config = _setup(folder, args.port, args.window)
    serve = subprocess.Popen([sys.executable, "-m", "connector", "serve", "--config", str(config)])
    url = f"http://127.0.0.1:{args.port}"
    try:
        with httpx.Client(timeout=10) as client:
            for _ in range(200):
                try:
                    client.get(url + "/healthz")
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            print("minute  events  db_MiB  inbox_rows  rss_MiB", flush=True)
            started = time.monotonic()
            next_report, sent = started, 0
            while time.monotonic() - started < args.minutes * 60:
                i = sent
                customer = f"c_{i % 5000}"
                joined = (i // 5000) % 2 == 0
                groups = [("cg_ent", "enterprise", "Enterprise")]
                event = membership_event(
                    event_id=f"pEv_soak_{i}", customer_id=customer, email=f"{customer}@example.com",
                    groups_before=[] if joined else groups, groups_after=groups if joined else [],
                    timestamp=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), generation="versioned",
                )  # fmt: skip
                body, headers = signed_request(event, SECRET)
                client.post(url + "/webhooks/plain", content=body, headers=headers)
                sent += 1
                time.sleep(max(0.0, started + sent / args.rate - time.monotonic()))
                if time.monotonic() >= next_report:
                    next_report = time.monotonic() + args.every
                    db = folder / "data" / "soak.db"
                    size = sum(p.stat().st_size for p in (db, db.with_name("soak.db-wal")) if p.exists())
                    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                        inbox = conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
                    minute = (time.monotonic() - started) / 60
                    print(f"{minute:6.1f}  {sent:6d}  {size / 1048576:6.2f}  {inbox:10d}  "
                          f"{_rss_kib(serve.pid) / 1024:7.1f}", flush=True)  # fmt: skip
    finally:
        serve.terminate()
        serve.wait(15)


if __name__ == "__main__":
    main()
