"""Ingest benchmark: signed webhooks into one `serve` process (SQLite default, jsonl target).

Runs `serve` and the load generator as separate processes, flat out and at fixed offered
rates, and reports accepted events/s, latency percentiles, errors and the server's peak
RSS. Usage: `python bench/ingest.py [--events 20000] [--rates 1000,2000]`.
See docs/performance.md for results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
SECRET = "bench-signing-secret"
sys.path.insert(0, str(HERE))
from loadgen import make_requests  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, port: int) -> Path:
    (folder / "mappings").mkdir()
    (folder / "mappings" / "groups.yaml").write_text(
        "mappings:\n  - group: enterprise\n    to: [{target: audit}]\n  - group: beta\n    to: [{target: audit}]\n"
    )
    config = folder / "config.yaml"
    config.write_text(
        f"plain: {{signing_secret: {SECRET}}}\nserver: {{host: 127.0.0.1, port: {port}}}\n"
        "store: {url: 'sqlite:///data/connector.db'}\nmappings: mappings/\n"
        "targets:\n  audit: {type: jsonl, path: data/sync-log.jsonl}\nlogging: {level: WARNING}\n"
    )
    return config


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_serve(config: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=open(config.parent / "serve.log", "ab"),
    )  # fmt: skip
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit("serve did not start")


def load(port: int, requests: Path, rate: float, connections: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, str(HERE / "loadgen.py"), "--url", f"127.0.0.1:{port}", "--requests", str(requests),
         "--rate", str(rate), "--connections", str(connections)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000, help="events in the flat-out run")
    parser.add_argument("--rates", default="1000,2000", help="fixed offered rates, events/s")
    parser.add_argument("--seconds", type=float, default=10, help="length of each fixed-rate run")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        config = write_config(folder, port)
        proc = start_serve(config, port)
        results = []
        try:
            runs = [(0.0, args.events)] + [(float(r), int(float(r) * args.seconds)) for r in args.rates.split(",") if r]
            for seed, (rate, count) in enumerate(runs, start=1):
                requests = folder / f"requests-{seed}.jsonl"
                make_requests(requests, count, SECRET, seed=seed)  # fresh attempt timestamps per run
                result = load(port, requests, rate, args.connections)
                result["peak_rss_mb"] = round(peak_rss_mb(proc.pid), 1)
                results.append(result)
                print(json.dumps(result), flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    print("\n| offered | accepted/s | p50 ms | p95 ms | p99 ms | non-200 | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        errors = sum(n for code, n in r["statuses"].items() if str(code) != "200")  # type: ignore[union-attr]
        print(
            f"| {r['offered_rate']} | {r['per_second']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {errors} | {r['peak_rss_mb']} |"
        )


if __name__ == "__main__":
    main()
