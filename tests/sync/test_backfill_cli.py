"""`plain-crm-sync backfill` through the real CLI against the fake Plain API (and a real `serve`)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from connector.testing.plain import membership_event, signed_request

from tests.conftest import SECRET, free_port, wait_for
from tests.sync.conftest import KEY, audit_lines, cli, members, queued, setup, store_rows


def _workspace(fake: Any, size: int = 150) -> tuple[str, list[str]]:
    ent = fake.data.add_group("enterprise")
    ids = [fake.data.add_customer(f"C {i:03d}", f"c{i}@example.com", groups=[ent]) for i in range(size)]
    return ent, ids


def test_a_group_larger_than_a_page_is_read_whole_and_serve_delivers_it(tmp_path, fake, api_url, serve_factory):
    ent, ids = _workspace(fake, 150)
    port = free_port()
    config = setup(tmp_path, api_url, port=port)
    serve_factory(config, port)  # running: it picks up work another process writes
    result = cli("backfill", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "1 group(s), 2 page(s), 150 customer(s), 150 change(s), 150 operation(s) queued" in result.stdout
    pages = [r.json["variables"] for r in fake.requests if r.json["operationName"] == "CustomersInGroups"]
    assert [p["after"] is None for p in pages] == [True, False] and {p["first"] for p in pages} == {100}
    assert members(config, ent) == set(ids)
    lines = wait_for(lambda: len(audit_lines(config)) == 150 and audit_lines(config))
    assert {(x["customer_id"], x["action"], x["group_key"]) for x in lines} == {(i, "add", "enterprise") for i in ids}
    assert not fake.invalid_queries and fake.data.unfiltered_reads == 0


def test_work_waits_for_the_next_serve_when_none_runs(tmp_path, fake, api_url, serve_factory):
    _ent, ids = _workspace(fake, 3)
    port = free_port()
    config = setup(tmp_path, api_url, port=port)
    assert cli("backfill", "--config", str(config)).returncode == 0
    assert len(queued(config)) == 3 and audit_lines(config) == []
    serve_factory(config, port)
    wait_for(lambda: {x["customer_id"] for x in audit_lines(config)} == set(ids))


def test_a_customer_in_more_groups_than_one_nested_page_joins_every_mapped_group(tmp_path, fake, api_url):
    groups = [fake.data.add_group(f"g{i:02d}") for i in range(30)]
    many = fake.data.add_customer("Many", "many@example.com", groups=groups)
    config = setup(tmp_path, api_url, mappings=[{"group": f"g{i:02d}", "to": [{"target": "audit"}]} for i in range(30)])
    result = cli("backfill", "--config", str(config))
    assert result.returncode == 0, result.stderr
    rows = store_rows(config, "SELECT group_id FROM memberships WHERE customer_id = ? AND member = 1", many)
    assert {r[0] for r in rows} == set(groups)
    assert len(queued(config)) == 30


def test_rate_limit_no_request_is_sent_while_plain_says_wait(tmp_path, api_url, fake):
    fake.rate_limit, fake.window_seconds = 3, 1.0
    _ent, _ids = _workspace(fake, 250)  # 1 group list + 3 pages > 3 a window
    fake.throttle_next(0.5)  # and one 429 up front
    config = setup(tmp_path, api_url)
    result = cli("backfill", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert len(queued(config)) == 250
    assert fake.early_requests == []
    assert next(r.status for r in fake.requests) == 429


def test_5xx_answers_are_retried(tmp_path, fake, api_url):
    _ent, _ids = _workspace(fake, 120)
    fake.fail_next(503, times=2)
    config = setup(tmp_path, api_url)
    result = cli("backfill", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert [r.status for r in fake.requests][:2] == [503, 503]
    assert len(queued(config)) == 120


def test_a_refused_key_exits_1_without_printing_it(tmp_path, fake, api_url):
    _workspace(fake, 1)
    config = setup(tmp_path, api_url)
    result = cli("backfill", "--config", str(config), key="wrong-key-SECRET-123")
    assert result.returncode == 1
    assert "Plain refused the API key" in result.stderr
    assert "wrong-key-SECRET-123" not in result.stderr + result.stdout


def test_an_unreachable_api_exits_1_with_its_address(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/graphql/v1"
    config = setup(tmp_path, url)
    result = cli("backfill", "--config", str(config))
    assert result.returncode == 1
    assert f"cannot read from Plain's API at {url}" in result.stderr and "cannot connect" in result.stderr


def test_a_missing_api_key_is_refused(tmp_path, api_url):
    config = setup(tmp_path, api_url, plain={"api_key": None})
    result = cli("backfill", "--config", str(config))
    assert result.returncode == 1 and "plain.api_key is not set" in result.stderr


def _interrupt(fake: Any, config: Any, sig: int) -> subprocess.CompletedProcess[str]:
    """Run backfill; stop it with ``sig`` while Plain is answering the second group's first page."""
    reading, release = threading.Event(), threading.Event()
    second = fake.data.group_id("zeta")

    def hold(field: str, args: dict[str, Any]) -> None:
        if field == "customers" and args["filters"]["customerGroupIds"] == [second]:
            reading.set()
            release.wait(20)

    fake.on_read = hold
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", "backfill", "--config", str(config)],
        env={**__import__("os").environ, "PLAIN_API_KEY": KEY}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert reading.wait(30), "backfill never reached the second group"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        release.set()
        fake.on_read = None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _two_groups(tmp_path: Any, fake: Any, api_url: str) -> Any:
    first = fake.data.add_group("alpha")
    second = fake.data.add_group("zeta")
    for i in range(5):
        fake.data.add_customer(f"A {i}", f"a{i}@example.com", groups=[first])
        fake.data.add_customer(f"Z {i}", f"z{i}@example.com", groups=[second])
    mappings = [{"group": "alpha", "to": [{"target": "audit"}]}, {"group": "zeta", "to": [{"target": "audit"}]}]
    return setup(tmp_path, api_url, mappings=mappings), first, second


def _customer_reads(fake: Any) -> list[list[str]]:
    return [r.json["variables"]["groupIds"] for r in fake.requests if r.json["operationName"] == "CustomersInGroups"]


def test_ctrl_c_then_resume_reads_only_unfinished_groups(tmp_path, fake, api_url):
    config, first, second = _two_groups(tmp_path, fake, api_url)
    stopped = _interrupt(fake, config, signal.SIGINT)
    assert stopped.returncode == 130, stopped.stderr
    assert "interrupted: run the same command again to resume" in stopped.stderr
    assert members(config, first) and not members(config, second)
    fake.log.clear()
    result = cli("backfill", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert _customer_reads(fake) == [[second]]  # alpha was finished: not read again
    assert "resumed run 1" in result.stdout and "2 group(s)" in result.stdout
    assert len(members(config, second)) == 5 and len(queued(config)) == 10


def test_kill_then_resume(tmp_path, fake, api_url):
    config, first, second = _two_groups(tmp_path, fake, api_url)
    assert _interrupt(fake, config, signal.SIGKILL).returncode == -signal.SIGKILL
    fake.log.clear()
    assert cli("backfill", "--config", str(config)).returncode == 0
    assert _customer_reads(fake) == [[second]]
    assert len(members(config, first)) == len(members(config, second)) == 5


def _post_leave(url: str, customer: str, group: tuple[str, str, str], when: datetime) -> None:
    event = membership_event(
        event_id="pEv_webhook_newer", customer_id=customer, email="c1@example.com", groups_before=[group],
        groups_after=[], timestamp=when, generation="versioned",
    )  # fmt: skip
    body, headers = signed_request(event, SECRET)
    assert httpx.post(url + "/webhooks/plain", content=body, headers=headers, timeout=10).status_code == 200


def test_a_webhook_newer_than_the_read_wins(tmp_path, fake, api_url, serve_factory):
    ent, ids = _workspace(fake, 3)
    port = free_port()
    config = setup(tmp_path, api_url, port=port)
    serve = serve_factory(config, port)
    leaver = ids[1]

    def leave_mid_read(field: str, _args: dict[str, Any]) -> None:
        if field == "customers":  # Plain's answer still lists the customer; the webhook is newer
            _post_leave(serve.url, leaver, (ent, "enterprise", "Enterprise"), datetime.now(UTC) + timedelta(seconds=1))

    fake.on_read = leave_mid_read
    assert cli("backfill", "--config", str(config)).returncode == 0
    assert members(config, ent) == {ids[0], ids[2]}
    # the webhook's before-state says the CRM had the leaver: serve removes; the read adds nobody else
    wait_for(lambda: len(audit_lines(config)) == 3)
    assert {(x["customer_id"], x["action"]) for x in audit_lines(config)} == {
        (ids[0], "add"),
        (leaver, "remove"),
        (ids[2], "add"),
    }


def test_a_full_read_removes_a_member_plain_no_longer_lists(tmp_path, fake, api_url, serve_factory):
    ent, ids = _workspace(fake, 3)
    port = free_port()
    config = setup(tmp_path, api_url, port=port)
    serve_factory(config, port)
    assert cli("backfill", "--config", str(config)).returncode == 0
    wait_for(lambda: len(audit_lines(config)) == 3)
    fake.data.leave(ids[0], "enterprise")
    result = cli("backfill", "--config", str(config))
    assert result.returncode == 0 and "1 change(s), 1 operation(s)" in result.stdout
    assert members(config, ent) == set(ids[1:])
    lines = wait_for(lambda: len(audit_lines(config)) == 4 and audit_lines(config))
    assert (lines[-1]["customer_id"], lines[-1]["action"]) == (ids[0], "remove")


def test_an_interrupted_read_removes_nothing(tmp_path, fake, api_url):
    config, _first, second = _two_groups(tmp_path, fake, api_url)
    assert cli("backfill", "--config", str(config)).returncode == 0
    for customer in list(fake.data.members("zeta")):
        fake.data.leave(customer, "zeta")
    fake.data.add_customer("Z new", "znew@example.com", groups=[second])
    fake.fail_next(500, times=10)  # Plain down: the run stops before any group is read
    assert cli("backfill", "--config", str(config)).returncode == 1
    assert len(members(config, second)) == 5  # nothing removed by a read that did not finish


def test_dry_run_prints_changes_and_operations_and_writes_nothing(tmp_path, fake, api_url):
    ent = fake.data.add_group("enterprise")
    ann = fake.data.add_customer("Ann", "ann@example.com", groups=[ent])
    bob = fake.data.add_customer("Bob", "bob@example.com", groups=[ent])
    mappings = [{"group": "enterprise", "to": [{"target": "audit"}, {"target": "audit", "label": "vip"}]}]
    config = setup(tmp_path, api_url, mappings=mappings)
    result = cli("backfill", "--config", str(config), "--dry-run")
    assert result.returncode == 0, result.stderr
    w = len(ann)
    assert result.stdout.splitlines() == [
        "membership changes (2):",
        f"  change  group       {'customer'.ljust(w)}  email",
        f"  join    enterprise  {ann}  ann@example.com",
        f"  join    enterprise  {bob}  bob@example.com",
        "CRM operations (4):",
        "  target  action  contact          group       destination",
        "  audit   add     ann@example.com  enterprise  -",
        "  audit   add     ann@example.com  enterprise  label=vip",
        "  audit   add     bob@example.com  enterprise  -",
        "  audit   add     bob@example.com  enterprise  label=vip",
        "dry run: 1 group(s), 1 page(s), 2 customer(s), 2 change(s), 4 operation(s) read; nothing was written",
    ]
    store_file = config.parent / "data" / "connector.db"
    assert not store_file.exists()  # not even the empty store opening it would have created
    assert f"note: store {store_file} does not exist yet: read as empty, and not created" in result.stderr
    as_json = cli("backfill", "--config", str(config), "--dry-run", "--json")
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert lines[0] == {"type": "change", "change": "join", "group_id": ent, "group_key": "enterprise",
                        "customer_id": ann, "email": "ann@example.com"}  # fmt: skip
    assert lines[3] == {"type": "operation", "target": "audit", "action": "add", "customer_id": ann,
                        "email": "ann@example.com", "group_id": ent, "group_key": "enterprise",
                        "options": {"label": "vip"}}  # fmt: skip
    assert len(lines) == 6 and not store_file.exists()
    # once a store exists, a dry run reads it: the same workspace has nothing left to change
    assert cli("backfill", "--config", str(config)).returncode == 0
    again = cli("backfill", "--config", str(config), "--dry-run")
    assert again.stdout.splitlines()[-1] == (
        "dry run: 1 group(s), 1 page(s), 2 customer(s), 0 change(s), 0 operation(s) read; nothing was written"
    )
    assert "does not exist" not in again.stderr and store_rows(config, "SELECT count(*) FROM outbox") == [(4,)]


def test_commands_that_only_read_the_store_do_not_create_it(tmp_path, fake, api_url):
    config = setup(tmp_path, api_url)
    store_file = config.parent / "data" / "connector.db"
    dry = cli("resync", "--config", str(config), "--verify", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == ["CRM operations (0):", "dry run: nothing was written"]
    assert f"note: store {store_file} does not exist yet" in dry.stderr
    for command in (["status"], ["dead-letters", "list"], ["reprocess"]):
        refused = cli(*command, "--config", str(config))
        assert refused.returncode == 1, command
        assert refused.stderr == f"error: store {store_file} does not exist; run serve or backfill first\n"
    assert not store_file.exists() and not store_file.parent.exists()


def test_a_dry_run_on_an_empty_postgresql_database_creates_no_tables(tmp_path, fake, api_url, pg_url):
    import psycopg

    ent = fake.data.add_group("enterprise")
    fake.data.add_customer("Ann", "ann@example.com", groups=[ent])
    config = setup(tmp_path, api_url, store={"url": pg_url})

    def tables() -> list[str]:
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()
        return [r[0] for r in rows]

    dry = cli("backfill", "--config", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: 1 group(s), 1 page(s), 1 customer(s), 1 change(s), 1 operation(s) read" in dry.stdout
    assert "does not exist yet: read as empty, and not created" in dry.stderr
    refused = cli("status", "--config", str(config))
    assert refused.returncode == 1 and "does not exist; run serve or backfill first" in refused.stderr
    assert tables() == []
    # once a real run made the store, a dry run reads it: nothing left to change
    assert cli("backfill", "--config", str(config)).returncode == 0
    again = cli("backfill", "--config", str(config), "--dry-run")
    assert again.returncode == 0 and "0 change(s)" in again.stdout and "does not exist" not in again.stderr
    assert "schema_migrations" in tables()


def test_named_groups_only_and_an_unknown_name_is_refused(tmp_path, fake, api_url):
    config, first, second = _two_groups(tmp_path, fake, api_url)
    assert cli("backfill", "--config", str(config), "--group", "zeta").returncode == 0
    assert not members(config, first) and len(members(config, second)) == 5
    result = cli("backfill", "--config", str(config), "--group", "nope")
    assert result.returncode == 1 and "no customer group in Plain has the key or id nope" in result.stderr
