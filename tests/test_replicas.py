"""Three `serve` replicas on one PostgreSQL: a Plain stream spread over them, one SIGKILLed.

The end state must equal what the events say, the fake HubSpot (enforcing its 100 calls
in any 10 s) must never have answered 429, and no contact's membership of a list may
ever have been in two calls at once: a change belongs to one replica's lease at a time.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
from connector.testing.fakes.hubspot import FakeHubSpot
from connector.testing.simulator import Delivery, PlainSimulator
from starlette.requests import Request
from starlette.responses import Response

from tests.conftest import SECRET, ServeProcess, free_port, run_cli, wait_for, write_setup

GROUPS = {"cg_ent": "enterprise", "cg_beta": "beta", "cg_vip": "vip"}
TOKEN = "pat-na1-replicas-0123456789"
#: long enough that a call in flight never outlives its lease, short enough for a test
LEASE_SECONDS = 20.0


class WatchedHubSpot(FakeHubSpot):
    """FakeHubSpot that notes every (list, contact) while a membership call holds it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: set[tuple[str, str]] = set()
        self.overlaps: list[tuple[str, str]] = []
        self.membership_calls = 0

    async def update_memberships(self, request: Request) -> Response:
        try:
            ids = json.loads(await request.body())
        except ValueError:
            ids = []
        keys = {(request.path_params["listId"], str(i)) for i in ids} if isinstance(ids, list) else set()
        self.overlaps += sorted(keys & self.held)
        self.held |= keys
        self.membership_calls += 1
        try:
            await asyncio.sleep(0.05)  # a call takes time at a real CRM: room for a second one to collide
            return await super().update_memberships(request)
        finally:
            self.held -= keys


def _deliver(urls: list[str], deliveries: list[Delivery]) -> None:
    """Spread the stream over the replicas, several at once, each retried until a 2xx (as Plain does)."""

    def post(n_delivery: tuple[int, Delivery]) -> None:
        n, delivery = n_delivery
        for attempt in range(50):
            url = urls[(n + attempt) % len(urls)]
            try:
                if httpx.post(url, content=delivery.body, headers=delivery.headers, timeout=10).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        raise AssertionError(f"{delivery.event_id} never accepted")

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(post, enumerate(deliveries)))


def _owner(serve: ServeProcess) -> str:
    found = re.search(r"serving as (serve-[0-9a-f]+)", serve.logs())
    assert found, serve.logs()[-2000:]
    return found.group(1)


def _lease_owners(pg_url: str) -> set[str]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT split_part(lease_owner, ':', 1) FROM outbox"
            " WHERE lease_until > extract(epoch FROM clock_timestamp())"
        ).fetchall()
    return {r[0] for r in rows}


def test_three_replicas_one_killed_converge_without_429_or_double_sends(
    tmp_path: Path, pg_url: str, serve_factory: Any
) -> None:
    sim = PlainSimulator(SECRET, customers=20, seed=11).plan(120)
    emails = [PlainSimulator.email(PlainSimulator.customer_id(i)) for i in range(20)]
    hubspot = WatchedHubSpot(TOKEN)  # HubSpot's lower tier: 100 calls in any rolling 10 s
    lists = {key: hubspot.seed_list(key) for key in GROUPS.values()}
    for address in emails:
        hubspot.seed_contact(address)
    with hubspot.serve() as base:
        ports = [free_port() for _ in range(3)]
        delivery = {"poll_interval_seconds": 0.2, "backoff_base_seconds": 0.2, "backoff_max_seconds": 2,
                    "lease_seconds": LEASE_SECONDS}  # fmt: skip
        mappings = [{"group": k, "to": [{"target": "hubspot", "list": lists[k]}]} for k in GROUPS.values()]
        targets = {"hubspot": {"type": "hubspot", "token": TOKEN, "base_url": base}}
        configs = []
        for i, port in enumerate(ports):
            (tmp_path / f"replica-{i}").mkdir()
            configs.append(
                write_setup(
                    tmp_path / f"replica-{i}", targets, mappings, port, store={"url": pg_url}, delivery=delivery
                )
            )
        replicas = [serve_factory(config, port) for config, port in zip(configs, ports, strict=True)]
        deliveries = list(sim.deliveries())
        half = len(deliveries) // 2
        _deliver([r.url + "/webhooks/plain" for r in replicas], deliveries[:half])

        # Kill a replica while it holds leased work, i.e. in the middle of a delivery.
        owners = {_owner(r): r for r in replicas}
        holder = wait_for(lambda: next(iter(_lease_owners(pg_url) & owners.keys()), None), timeout=60, interval=0.02)
        victim = owners[holder]
        victim.send_signal(signal.SIGKILL)
        assert victim.proc is not None and victim.proc.wait(10) == -signal.SIGKILL
        survivors = [r for r in replicas if r is not victim]
        _deliver([r.url + "/webhooks/plain" for r in survivors], deliveries[half:])

        expected = {(GROUPS[g], PlainSimulator.email(c)) for c, g in sim.expected_members()}

        def members() -> set[tuple[str, str]]:
            return {(key, e) for key, lid in lists.items() for e in hubspot.member_emails(lid)}

        def converged() -> bool:
            report = json.loads(run_cli("status", "--json", "--config", str(configs[0])).stdout)
            return members() == expected and report["targets"]["hubspot"]["backlog"] == 0

        try:
            wait_for(converged, timeout=180, interval=1.0)
        except AssertionError:
            got = members()
            raise AssertionError(
                f"missing {sorted(expected - got)[:5]}, extra {sorted(got - expected)[:5]}\n"
                + "\n".join(r.logs()[-2000:] for r in survivors)
            ) from None
        report = json.loads(run_cli("status", "--json", "--config", str(configs[0])).stdout)
        assert report["targets"]["hubspot"]["dead_letters"] == 0
        assert hubspot.log.counters.get("rate_limited", 0) == 0, hubspot.log.counters
        assert hubspot.overlaps == []
        assert hubspot.membership_calls > 0
        assert all(r.stop() == 0 for r in survivors)
