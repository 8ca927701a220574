"""Receive benchmark: our `serve` against the floor app, side by side in one run.

Both run under uvicorn (uvloop, httptools) on loopback, one at a time, fed the same
distinct pre-signed bodies by `wrk` (an external C load generator; `apt-get install wrk`)
through bench/receive.lua, flat out. wrk has no fixed-rate mode, so the p99 at a fixed
offered rate comes from bench/loadgen.py's open-loop mode (latency from each request's
scheduled time). `serve` runs with SQLite and one jsonl target mapped; then again with
HubSpot, Mailchimp and Intercom targets mapped too (the in-repo fakes, served from this
process) while they drain a burst, to show delivery does not starve receiving.
The replay window is set to a day so bodies generated before a run stay fresh.

Usage: `python bench/receive.py [--seconds 4] [--rounds 4] [--rate 1000]`; one table out. Both\napps are up at once and the flat-out slices alternate between them, so a noisy machine\nweighs on both alike; compare the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from connector.testing.fakes import Faults, WindowLimit  # noqa: E402
from connector.testing.fakes.hubspot import FakeHubSpot  # noqa: E402
from connector.testing.fakes.intercom import FakeIntercom  # noqa: E402
from connector.testing.fakes.mailchimp import FakeMailchimp  # noqa: E402

from ingest import SECRET, free_port, peak_rss_mb, start_serve  # noqa: E402
from loadgen import make_requests  # noqa: E402

TOKEN = "pat-na1-bench-0123456789abcdef"
MC_KEY = "0123456789abcdef0123456789abcdef-us21"
CUSTOMERS = 5000  # loadgen.make_requests cycles through this many customers


def write_config(folder: Path, port: int, crms: dict[str, str] | None = None) -> Path:
    """`serve` config: one jsonl target, plus the three CRMs at ``crms`` base URLs if given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mappings").mkdir()
    to = "[{target: audit}" + (", {target: hubspot, list: '1'}, {target: mailchimp, tag: Enterprise},"
                               " {target: intercom, tag: Enterprise}" if crms else "") + "]"  # fmt: skip
    (folder / "mappings" / "groups.yaml").write_text(
        f"mappings:\n  - group: enterprise\n    to: {to}\n  - group: beta\n    to: [{{target: audit}}]\n"
    )
    targets = "  audit: {type: jsonl, path: data/sync-log.jsonl}\n"
    if crms:
        targets += (
            f"  hubspot: {{type: hubspot, token: {TOKEN}, base_url: '{crms['hubspot']}'}}\n"
            f"  mailchimp: {{type: mailchimp, api_key: {MC_KEY}, audience_id: aud1, base_url: '{crms['mailchimp']}'}}\n"
            f"  intercom: {{type: intercom, token: {TOKEN}, base_url: '{crms['intercom']}'}}\n"
        )
    config = folder / "config.yaml"
    config.write_text(
        f"plain: {{signing_secret: {SECRET}, replay_tolerance_seconds: 86400}}\n"
        f"server: {{host: 127.0.0.1, port: {port}}}\nstore: {{url: 'sqlite:///data/connector.db'}}\n"
        f"mappings: mappings/\ntargets:\n{targets}logging: {{level: WARNING}}\n"
    )
    return config


def bodies(folder: Path, name: str, count: int, seed: int) -> tuple[Path, Path]:
    """``count`` distinct signed events: loadgen's JSON lines and wrk's ``sig<TAB>body`` lines."""
    jsonl, tsv = folder / f"{name}.jsonl", folder / f"{name}.tsv"
    make_requests(jsonl, count, SECRET, customers=CUSTOMERS, seed=seed)
    with jsonl.open() as src, tsv.open("w") as out:
        for line in src:
            item = json.loads(line)
            out.write(f"{item['sig']}\t{item['body']}\n")
    return jsonl, tsv


def wrk(port: int, tsv: Path, seconds: float, connections: int, threads: int = 1) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(HERE / "receive.lua"),
         f"http://127.0.0.1:{port}/webhooks/plain", "--", str(tsv), str(threads)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"^RESULT (.*)$", out.stdout, re.M)
    if not match:
        raise SystemExit(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    result: dict[str, Any] = json.loads(match.group(1))
    result["per_second"] = round(result["requests"] / result["seconds"], 1)
    return result


def fixed_rate(port: int, jsonl: Path, rate: float, connections: int = 64) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE / "loadgen.py"), "--url", f"127.0.0.1:{port}", "--requests", str(jsonl),
         "--rate", str(rate), "--connections", str(connections)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    result["non200"] = sum(n for code, n in result["statuses"].items() if str(code) != "200")
    return result


@contextlib.contextmanager
def floor_app(port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, str(HERE / "floor_app.py"), "--port", str(port), "--secret", SECRET],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_up(port)
        yield proc
    finally:
        proc.terminate()
        proc.wait(15)


@contextlib.contextmanager
def serve(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_serve(config, port)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


def _wait_up(port: int) -> None:
    import httpx

    for _ in range(200):
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return
        time.sleep(0.05)
    raise SystemExit("floor app did not start")


@contextlib.contextmanager
def crm_fakes() -> Iterator[tuple[dict[str, str], list[Any]]]:
    hubspot = FakeHubSpot(TOKEN, rate_limit=WindowLimit(100, 10))
    hubspot.seed_list("Enterprise")
    mailchimp = FakeMailchimp(MC_KEY, ["aud1"], faults=Faults(latency=0.02))
    intercom = FakeIntercom(TOKEN, rate_limit=WindowLimit(1500, 10))
    for i in range(CUSTOMERS):
        hubspot.seed_contact(f"bench{i}@example.com")
        mailchimp.seed_member("aud1", f"bench{i}@example.com")
        intercom.seed_contact(f"bench{i}@example.com")
    with hubspot.serve() as hs, mailchimp.serve() as mc, intercom.serve() as ic:
        yield {"hubspot": hs, "mailchimp": mc, "intercom": ic}, [hubspot, mailchimp, intercom]


def crm_calls(fakes: list[Any]) -> int:
    return sum(len(f.requests) for f in fakes)


def side_by_side(folder: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Both apps up at once; short flat-out slices alternate between them, then the fixed rate."""
    rows: list[dict[str, Any]] = []
    floor_port, serve_port = free_port(), free_port()
    with floor_app(floor_port), serve(write_config(folder / "ours", serve_port), serve_port) as proc:
        for n in range(args.rounds):
            # the same distinct bodies for both: the floor keeps no state, serve sees each once
            _, flat = bodies(folder, f"flat-{n}", int(args.seconds * args.bodies_per_second), seed=100 + n)
            for app, port in (("floor", floor_port), ("serve", serve_port))[:: 1 if n % 2 == 0 else -1]:
                rows.append({"app": app, "mode": "flat out", **wrk(port, flat, args.seconds, args.connections)})
        for n, (app, port) in enumerate((("floor", floor_port), ("serve", serve_port))):
            paced, _ = bodies(folder, f"paced-{n}", int(args.rate * args.paced_seconds), seed=200 + n)
            rows.append({"app": app, "mode": f"{args.rate:g}/s", **fixed_rate(port, paced, args.rate)})
        rows[-1]["peak_rss_mb"] = round(peak_rss_mb(proc.pid), 1)
    return rows


def delivering(folder: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Ingest while three CRM targets drain: a burst first, then measure while it drains."""
    rows: list[dict[str, Any]] = []
    _, burst = bodies(folder, "burst", int(args.seconds / 2 * args.bodies_per_second), seed=300)
    _, flat = bodies(folder, "deliver-flat", int(args.seconds * args.bodies_per_second), seed=301)
    paced, _ = bodies(folder, "deliver-paced", int(args.rate * args.paced_seconds), seed=302)
    with crm_fakes() as (urls, fakes):
        port = free_port()
        with serve(write_config(folder / "delivering", port, urls), port):
            wrk(port, burst, args.seconds / 2, args.connections)  # the burst the CRMs now drain
            before = crm_calls(fakes)
            row = wrk(port, flat, args.seconds, args.connections)
            row["crm_calls_per_s"] = round((crm_calls(fakes) - before) / row["seconds"], 1)
            rows.append({"app": "serve + 3 CRMs draining", "mode": "flat out", **row})
            before, started = crm_calls(fakes), time.perf_counter()
            row = fixed_rate(port, paced, args.rate)
            row["crm_calls_per_s"] = round((crm_calls(fakes) - before) / (time.perf_counter() - started), 1)
            rows.append({"app": "serve + 3 CRMs draining", "mode": f"{args.rate:g}/s", **row})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4, help="length of each flat-out slice")
    parser.add_argument("--paced-seconds", type=float, default=10, help="length of each fixed-rate run")
    parser.add_argument("--rate", type=float, default=1000, help="fixed offered rate for the p99, events/s")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--bodies-per-second", type=int, default=8000, help="distinct bodies per second of wrk run")
    parser.add_argument("--rounds", type=int, default=4, help="floor/serve slice pairs; ratios use medians")
    parser.add_argument("--no-delivery", action="store_true", help="skip the run with three CRMs draining")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install -y wrk")
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}", flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += side_by_side(Path(tmp), args)
        if not args.no_delivery:
            rows += delivering(Path(tmp), args)
    for row in rows:
        print(json.dumps(row), flush=True)
    print_table(rows, args)


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print("\n| app | load | events/s | p50 ms | p99 ms | non-200 | CRM calls/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        load = "wrk flat out" if r["mode"] == "flat out" else f"loadgen {r['mode']} open loop"
        print(f"| {r['app']} | {load} | {r['per_second']} | {r['p50_ms']} | {r['p99_ms']} | {r['non200']} |"
              f" {r.get('crm_calls_per_s', '')} |")  # fmt: skip

    def median(app: str, mode: str, key: str) -> float:
        return statistics.median(r[key] for r in rows if r["app"] == app and r["mode"] == mode)

    ratio = median("serve", "flat out", "per_second") / median("floor", "flat out", "per_second")
    print(f"\nserve / floor events/s flat out: {ratio:.2f} (target >= 0.50)")
    print(f"serve p99 at {args.rate:g}/s: {median('serve', f'{args.rate:g}/s', 'p99_ms')} ms (target <= 50)")
    if any(r["app"].startswith("serve +") for r in rows):
        busy = median("serve + 3 CRMs draining", "flat out", "per_second") / median("serve", "flat out", "per_second")
        print(f"serve while 3 CRMs drain / serve alone, events/s flat out: {busy:.2f}")


if __name__ == "__main__":
    main()
