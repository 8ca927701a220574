"""Email changes, deletions and re-keyed groups through `serve` into the fake CRMs."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from connector.plain import events as ev
from connector.testing.fakes.hubspot import FakeHubSpot
from connector.testing.fakes.intercom import FakeIntercom
from connector.testing.fakes.mailchimp import FakeMailchimp
from connector.testing.plain import customer_event, group_event, membership_event

from tests.conftest import free_port, run_cli, wait_for, write_setup
from tests.test_serve_e2e import post

TOKEN, MC_KEY = "pat-na1-lifecycle-0123456789", "0123456789abcdef0123456789abcdef-us21"
ENT = ("cg_01ENT", "enterprise", "Enterprise")
MARK = ("cg_01MARK", "marker", "Marker")
OLD, NEW = "ada@example.com", "ada.lovelace@example.com"


class Crms:
    """The three fake CRMs, seeded with ``emails``, and what each shows for one group."""

    def __init__(self, emails: list[str]) -> None:
        self.hubspot = FakeHubSpot(TOKEN)
        self.lists = {key: self.hubspot.seed_list(key) for key in ("enterprise", "marker")}
        self.mailchimp = FakeMailchimp(MC_KEY, ["aud"])
        self.intercom = FakeIntercom(TOKEN)
        for address in emails:
            self.hubspot.seed_contact(address)
            self.mailchimp.seed_member("aud", address)
            self.intercom.seed_contact(address)

    @contextlib.contextmanager
    def running(self) -> Iterator[dict[str, Any]]:
        with contextlib.ExitStack() as stack:
            hs, mc, ic = (stack.enter_context(f.serve()) for f in (self.hubspot, self.mailchimp, self.intercom))
            yield {
                "hubspot": {"type": "hubspot", "token": TOKEN, "base_url": hs},
                "mailchimp": {"type": "mailchimp", "api_key": MC_KEY, "audience_id": "aud", "base_url": mc},
                "intercom": {"type": "intercom", "token": TOKEN, "base_url": ic},
            }

    def mapping(self, group: str, **extra: Any) -> dict[str, Any]:
        to = [{"target": "hubspot", "list": self.lists[group]}, {"target": "mailchimp", "tag": group},
              {"target": "intercom", "tag": group}]  # fmt: skip
        return {"group": group, "to": to, **extra}

    def has(self, key: str, email: str) -> dict[str, bool]:
        return {
            "hubspot": email in self.hubspot.member_emails(self.lists[key]),
            "mailchimp": key in self.mailchimp.tags_of("aud", email),
            "intercom": key in self.intercom.tags_for_email(email),
        }


def everywhere(value: bool) -> dict[str, bool]:
    return dict.fromkeys(("hubspot", "mailchimp", "intercom"), value)


def join(event_id: str, ts: str, email: str, group: Any = ENT, customer: str = "c_ada", leave: bool = False) -> Any:
    before, after = ([group], []) if leave else ([], [group])
    return membership_event(event_id=event_id, customer_id=customer, email=email, groups_before=before,
                            groups_after=after, timestamp=ts, generation="versioned")  # fmt: skip


def update(event_id: str, ts: str, email: str, previous: str, kind: str = ev.CUSTOMER_UPDATED) -> Any:
    return customer_event(event_id=event_id, event_type=kind, customer_id="c_ada", email=email,
                          previous_email=previous, timestamp=ts)  # fmt: skip


def settled(url: str, crms: Crms, event_id: str, ts: str) -> None:
    """Everything sent before is delivered: a marker customer's join, sent last, has landed.

    Each target delivers due work in order, so what an earlier event caused is in the
    CRMs by the time the marker is, at all three of them.
    """
    email = f"marker-{event_id.lower()}@example.com"
    for fake in (crms.hubspot, crms.intercom):
        fake.seed_contact(email)
    crms.mailchimp.seed_member("aud", email)
    assert post(url, join(event_id, ts, email, MARK, customer=f"c_{event_id}")).status_code == 200
    wait_for(lambda: crms.has("marker", email) == everywhere(True), timeout=30)


def start(tmp_path: Path, serve_factory: Any, targets: dict[str, Any], mappings: list[Any]) -> tuple[Any, Path]:
    port = free_port()
    config = write_setup(tmp_path, port=port, targets=targets, mappings=mappings)
    return serve_factory(config, port), config


def with_option(targets: dict[str, Any], **options: str) -> dict[str, Any]:
    return {name: {**block, **options} for name, block in targets.items()}


def email_changed(tmp_path: Path, serve_factory: Any, crms: Crms, targets: dict[str, Any], option: str) -> Any:
    """`serve` with ``on_email_change: option`` everywhere; OLD joined, then became NEW."""
    mappings = [crms.mapping("enterprise"), crms.mapping("marker")]
    serve, _ = start(tmp_path, serve_factory, with_option(targets, on_email_change=option), mappings)
    assert post(serve.url, join("pEv_1", "2026-03-01T10:00:00Z", OLD)).status_code == 200
    wait_for(lambda: crms.has("enterprise", OLD) == everywhere(True), timeout=30)
    assert post(serve.url, update("pEv_2", "2026-03-01T11:00:00Z", NEW, OLD)).json()["status"] == "stored"
    wait_for(lambda: crms.has("enterprise", NEW) == everywhere(True), timeout=30)
    return serve


def test_email_change_moves_memberships_and_a_late_older_update_is_ignored(tmp_path: Path, serve_factory: Any) -> None:
    crms = Crms([OLD, NEW])
    with crms.running() as targets:
        serve = email_changed(tmp_path, serve_factory, crms, targets, "move")
        wait_for(lambda: crms.has("enterprise", OLD) == everywhere(False), timeout=30)

        # an update from before the change arrives late: it must not move anything back
        late = update("pEv_late", "2026-03-01T10:30:00Z", OLD, "someone@example.com", ev.CUSTOMER_CHANGED)
        assert post(serve.url, late).json()["status"] == "stored"
        settled(serve.url, crms, "pEv_m", "2026-03-01T12:00:00Z")
        assert crms.has("enterprise", OLD) == everywhere(False)
        assert crms.has("enterprise", NEW) == everywhere(True)
        # later membership events follow the new contact
        assert post(serve.url, join("pEv_3", "2026-03-01T13:00:00Z", NEW, leave=True)).status_code == 200
        wait_for(lambda: crms.has("enterprise", NEW) == everywhere(False), timeout=30)
        assert serve.stop() == 0


def test_email_change_keep_leaves_the_old_contact_and_syncs_the_new(tmp_path: Path, serve_factory: Any) -> None:
    crms = Crms([OLD, NEW])
    with crms.running() as targets:
        serve = email_changed(tmp_path, serve_factory, crms, targets, "keep")
        settled(serve.url, crms, "pEv_m", "2026-03-01T12:00:00Z")
        assert crms.has("enterprise", OLD) == everywhere(True)
        assert serve.stop() == 0


def test_customer_deleted_removes_where_asked_and_keeps_elsewhere(tmp_path: Path, serve_factory: Any) -> None:
    crms = Crms([OLD])
    with crms.running() as targets:
        targets["hubspot"]["on_customer_deleted"] = "remove"
        targets["intercom"]["on_customer_deleted"] = "remove"
        targets["mailchimp"]["on_customer_deleted"] = "keep"
        serve, _ = start(tmp_path, serve_factory, targets, [crms.mapping("enterprise"), crms.mapping("marker")])
        assert post(serve.url, join("pEv_1", "2026-03-01T10:00:00Z", OLD)).status_code == 200
        wait_for(lambda: crms.has("enterprise", OLD) == everywhere(True), timeout=30)
        deleted = customer_event(event_id="pEv_2", event_type=ev.CUSTOMER_DELETED, customer_id="c_ada", email=OLD,
                                 timestamp="2026-03-01T11:00:00Z")  # fmt: skip
        assert post(serve.url, deleted).json()["status"] == "stored"
        expected = {"hubspot": False, "mailchimp": True, "intercom": False}
        wait_for(lambda: crms.has("enterprise", OLD) == expected, timeout=30)
        settled(serve.url, crms, "pEv_m", "2026-03-01T12:00:00Z")
        assert crms.has("enterprise", OLD) == expected
        assert serve.stop() == 0


def test_a_group_re_keyed_while_mapped_by_key_still_syncs(tmp_path: Path, serve_factory: Any) -> None:
    crms = Crms([OLD, "bob@example.com"])
    renamed = (ENT[0], "enterprise-2026", "Enterprise (2026)")
    with crms.running() as targets:
        serve, config = start(tmp_path, serve_factory, targets, [crms.mapping("enterprise"), crms.mapping("marker")])
        assert post(serve.url, join("pEv_1", "2026-03-01T10:00:00Z", OLD)).status_code == 200
        wait_for(lambda: crms.has("enterprise", OLD) == everywhere(True), timeout=30)
        rekey = group_event(event_id="pEv_2", change="UPDATED", group=renamed, previous_group=ENT,
                            timestamp="2026-03-01T11:00:00Z")  # fmt: skip
        assert post(serve.url, rekey).json()["status"] == "stored"
        # membership events now carry the new key only; the mapping by the old key still applies
        bob = join("pEv_3", "2026-03-01T12:00:00Z", "bob@example.com", renamed, customer="c_bob")
        assert post(serve.url, bob).status_code == 200
        assert post(serve.url, join("pEv_4", "2026-03-01T12:00:01Z", OLD, renamed, leave=True)).status_code == 200
        wait_for(lambda: crms.has("enterprise", "bob@example.com") == everywhere(True), timeout=30)
        wait_for(lambda: crms.has("enterprise", OLD) == everywhere(False), timeout=30)
        check = run_cli("check", "--config", str(config))
        assert check.returncode == 0
        assert "group key 'enterprise' is no longer any known group's key" in check.stderr
        assert "now keyed 'enterprise-2026'" in check.stderr
        assert serve.stop() == 0


def test_a_group_deleted_with_remove_empties_its_lists(tmp_path: Path, serve_factory: Any) -> None:
    people = [OLD, "bob@example.com"]
    crms = Crms(people)
    with crms.running() as targets:
        mappings = [crms.mapping("enterprise", on_group_deleted="remove"), crms.mapping("marker")]
        serve, config = start(tmp_path, serve_factory, targets, mappings)
        for i, email in enumerate(people):
            body = join(f"pEv_{i}", f"2026-03-01T10:00:0{i}Z", email, customer=f"c_{i}")
            assert post(serve.url, body).status_code == 200
        all_in: Callable[[bool], bool] = lambda v: all(crms.has("enterprise", e) == everywhere(v) for e in people)  # noqa: E731
        wait_for(lambda: all_in(True), timeout=30)
        gone = group_event(event_id="pEv_del", change="REMOVED", group=ENT, timestamp="2026-03-01T11:00:00Z")
        assert post(serve.url, gone).json()["status"] == "stored"
        wait_for(lambda: all_in(False), timeout=30)
        report = json.loads(run_cli("status", "--json", "--config", str(config)).stdout)
        assert [g["group_key"] for g in report["deleted_groups"]] == ["enterprise"]
        assert "groups deleted in Plain" in run_cli("status", "--config", str(config)).stdout
        assert serve.stop() == 0
