"""Fault test: every target's CRM answers 20 % 5xx, 10 % 429, drops some connections and is slow.

The run must converge to exactly the expected membership, with no dead letters: none of
these faults is permanent. `--long` runs a bigger stream.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from connector.testing.fakes import Faults
from connector.testing.fakes.webhook import FakeWebhookReceiver
from connector.testing.simulator import PlainSimulator

from tests.conftest import SECRET, free_port, run_cli, wait_for, write_setup

GROUPS = {"cg_ent": "enterprise", "cg_beta": "beta", "cg_vip": "vip"}
HOOK_SECRET = "webhook-secret-for-tests"
FAULTS = Faults(error_rate=0.2, throttle_rate=0.1, throttle_seconds=0.5, drop_rate=0.02, latency=0.01)


def send_all(url: str, sim: PlainSimulator) -> set[tuple[str, str]]:
    """Deliver the whole stream (each must be accepted); return the expected (group key, email) members."""
    with httpx.Client(base_url=url) as client:
        for delivery in sim.deliveries():
            assert client.post("/webhooks/plain", content=delivery.body, headers=delivery.headers).status_code == 200
    return {(GROUPS[g], PlainSimulator.email(c)) for c, g in sim.expected_members()}


def test_webhook_target_converges_under_faults(tmp_path: Path, serve_factory: Any, long_run: bool) -> None:
    events = 1500 if long_run else 150
    fake = FakeWebhookReceiver(HOOK_SECRET, faults=FAULTS, seed=3)
    sim = PlainSimulator(SECRET, customers=25, seed=21).plan(events)
    with fake.serve() as base:
        port = free_port()
        config = write_setup(
            tmp_path, port=port,
            targets={"hook": {"type": "webhook", "url": base + "/hooks/crm", "secret": HOOK_SECRET}},
            mappings=[{"group": key, "to": [{"target": "hook"}]} for key in GROUPS.values()],
        )  # fmt: skip
        serve = serve_factory(config, port)
        expected = send_all(serve.url, sim)

        seen: dict[str, Any] = {}

        def converged() -> bool:
            got = {(g, e) for g, emails in fake.members.items() for e in emails}
            seen["status"] = json.loads(run_cli("status", "--json", "--config", str(config)).stdout)["targets"]["hook"]
            seen["diff"] = (sorted(expected - got)[:3], sorted(got - expected)[:3])
            return got == expected and seen["status"]["backlog"] == 0

        try:
            wait_for(converged, timeout=120 if long_run else 60, interval=0.5)
        except AssertionError:
            raise AssertionError(f"not converged: {seen}\n{serve.logs()[-4000:]}") from None
        report = json.loads(run_cli("status", "--json", "--config", str(config)).stdout)
        assert report["targets"]["hook"]["dead_letters"] == 0
        counters = fake.log.counters
        assert counters.get("fault", 0) > 0 and counters.get("throttled", 0) > 0  # the faults did happen
        assert serve.stop() == 0


def test_every_crm_target_converges_under_faults(tmp_path: Path, serve_factory: Any, long_run: bool) -> None:
    """HubSpot lists, Mailchimp and Intercom tags, all at once through one `serve`, all faulty."""
    import contextlib

    from connector.testing.fakes.hubspot import FakeHubSpot
    from connector.testing.fakes.intercom import FakeIntercom
    from connector.testing.fakes.mailchimp import FakeMailchimp

    token, mc_key = "pat-na1-faults-0123456789", "0123456789abcdef0123456789abcdef-us21"
    sim = PlainSimulator(SECRET, customers=20, seed=33).plan(1000 if long_run else 120)
    emails = [PlainSimulator.email(PlainSimulator.customer_id(i)) for i in range(20)]
    hubspot = FakeHubSpot(token, faults=FAULTS, seed=1)
    lists = {key: hubspot.seed_list(key) for key in GROUPS.values()}
    mailchimp = FakeMailchimp(mc_key, ["aud"], faults=FAULTS, seed=2)
    intercom = FakeIntercom(token, faults=FAULTS, seed=3)
    for address in emails:
        hubspot.seed_contact(address)
        mailchimp.seed_member("aud", address)
        intercom.seed_contact(address)
    with contextlib.ExitStack() as stack:
        hs, mc, ic = (stack.enter_context(f.serve()) for f in (hubspot, mailchimp, intercom))
        port = free_port()
        config = write_setup(
            tmp_path, port=port,
            targets={
                "hubspot": {"type": "hubspot", "token": token, "base_url": hs},
                "mailchimp": {"type": "mailchimp", "api_key": mc_key, "audience_id": "aud", "base_url": mc},
                "intercom": {"type": "intercom", "token": token, "base_url": ic},
            },
            mappings=[{"group": key, "to": [{"target": "hubspot", "list": lists[key]}, {"target": "mailchimp", "tag": key},
                                            {"target": "intercom", "tag": key}]} for key in GROUPS.values()],
        )  # fmt: skip
        serve = serve_factory(config, port)
        expected = send_all(serve.url, sim)

        def state() -> dict[str, set[tuple[str, str]]]:
            return {
                "hubspot": {(key, e) for key, lid in lists.items() for e in hubspot.member_emails(lid)},
                "mailchimp": {(key, e) for e in emails for key in mailchimp.tags_of("aud", e)},
                "intercom": {(key, e) for e in emails for key in intercom.tags_for_email(e)},
            }

        wait_for(
            lambda: all(got == expected for got in state().values()), timeout=180 if long_run else 90, interval=0.5
        )
        report = json.loads(run_cli("status", "--json", "--config", str(config)).stdout)
        assert all(report["targets"][t]["dead_letters"] == 0 for t in ("hubspot", "mailchimp", "intercom"))
        for fake in (hubspot, mailchimp, intercom):
            assert fake.log.counters.get("fault", 0) > 0  # the faults did happen at every CRM
        assert serve.stop() == 0
