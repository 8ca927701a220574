"""`plain register / unregister / targets` through the real CLI against the fake Plain API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from connector.plain.register import EVENT_TYPES, SPOKEN_VERSIONS
from connector.testing.fakes.plain_api import FakePlainApi
from connector.testing.fakes.plain_data import KNOWN_EVENT_TYPES
from tests.conftest import SECRET, run_cli, write_setup

KEY = "plain-register-key-42"
HOOK = "https://sync.example.com/webhooks/plain"
SCHEMAS = Path(__file__).parent / "schemas"


@pytest.fixture
def fake() -> FakePlainApi:
    return FakePlainApi(KEY)


@pytest.fixture
def api_url(fake: FakePlainApi) -> Iterator[str]:
    with fake.serve() as url:
        yield url


def _config(folder: Path, api_url: str) -> str:
    plain = {"signing_secret": SECRET, "api_key": "${PLAIN_API_KEY}", "api_url": api_url}
    return str(write_setup(folder, plain=plain))


def _cli(*args: str, key: str = KEY):
    return run_cli("plain", *args, env={"PLAIN_API_KEY": key})


def test_spoken_versions_are_the_schemas_the_parser_is_tested_against():
    consts = {
        json.loads(p.read_text())["definitions"]["webhookMetadata"]["properties"]["webhookTargetVersion"]["const"]
        for p in SCHEMAS.glob("webhook-schema*.json")
    }
    assert set(SPOKEN_VERSIONS) == consts
    assert list(SPOKEN_VERSIONS) == sorted(SPOKEN_VERSIONS, reverse=True)
    assert set(EVENT_TYPES) <= KNOWN_EVENT_TYPES


def test_register_creates_a_target_and_says_the_step_left(tmp_path, fake, api_url):
    result = _cli("register", "--config", _config(tmp_path, api_url), "--url", HOOK)
    assert result.returncode == 0, result.stderr
    [target] = fake.data.targets.values()
    assert target["url"] == HOOK and target["isEnabled"] is True
    assert target["version"] == "2026-04-21"
    assert {s["eventType"] for s in target["eventSubscriptions"]} == {
        "customer.customer_group_memberships_changed",
        "customer.customer_updated",
        "customer.customer_deleted",
        "customer.customer_group_changed",
    }
    assert f"created webhook target {target['id']} for {HOOK}" in result.stdout
    assert "PLAIN_SIGNING_SECRET" in result.stdout
    assert fake.invalid_queries == []


def test_register_again_updates_the_target_with_that_url(tmp_path, fake, api_url):
    config = _config(tmp_path, api_url)
    assert _cli("register", "--config", config, "--url", HOOK).returncode == 0
    [target_id] = fake.data.targets
    fake.data.targets[target_id]["eventSubscriptions"] = [{"eventType": "thread.thread_created"}]
    # Plain moves on to a version we cannot parse yet: we stay at the newest one we speak.
    fake.data.versions = [
        {"version": "2026-04-21", "isDeprecated": False, "isLatest": False},
        {"version": "2026-09-18", "isDeprecated": False, "isLatest": True},
    ]

    result = _cli("register", "--config", config, "--url", HOOK)

    assert result.returncode == 0, result.stderr
    assert list(fake.data.targets) == [target_id]
    target = fake.data.targets[target_id]
    assert target["version"] == "2026-04-21"
    assert {s["eventType"] for s in target["eventSubscriptions"]} == set(EVENT_TYPES)
    assert f"updated webhook target {target_id}" in result.stdout


def test_no_common_version_is_a_clear_failure(tmp_path, fake, api_url):
    fake.data.versions = [{"version": "2027-01-01", "isDeprecated": False, "isLatest": True}]
    result = _cli("register", "--config", _config(tmp_path, api_url), "--url", HOOK)
    assert result.returncode == 1
    assert "Plain offers webhook versions 2027-01-01" in result.stderr and "upgrade" in result.stderr
    assert fake.data.targets == {}


def test_targets_lists_and_unregister_deletes(tmp_path, fake, api_url):
    config = _config(tmp_path, api_url)
    other = "https://other.example.com/hook"
    assert _cli("register", "--config", config, "--url", HOOK).returncode == 0
    assert _cli("register", "--config", config, "--url", other).returncode == 0

    listed = _cli("targets", "--config", config)
    assert listed.returncode == 0, listed.stderr
    assert HOOK in listed.stdout and other in listed.stdout

    gone = _cli("unregister", "--config", config, "--url", HOOK)
    assert gone.returncode == 0, gone.stderr
    assert [t["url"] for t in fake.data.targets.values()] == [other]
    again = _cli("unregister", "--config", config, "--url", HOOK)
    assert again.returncode == 0 and "nothing to delete" in again.stdout


def test_a_refused_key_fails_without_printing_it(tmp_path, fake, api_url):
    wrong = "wrong-key-do-not-print"
    result = _cli("register", "--config", _config(tmp_path, api_url), "--url", HOOK, key=wrong)
    assert result.returncode == 1
    assert "refused the API key" in result.stderr
    assert wrong not in result.stdout + result.stderr
    assert fake.data.targets == {}


def test_missing_api_key_and_bad_url_are_refused_before_any_call(tmp_path, fake, api_url):
    bare = str(write_setup(tmp_path / "bare", plain={"signing_secret": SECRET, "api_url": api_url}))
    missing = _cli("targets", "--config", bare)
    assert missing.returncode == 1 and "plain.api_key is not set" in missing.stderr
    bad = _cli("register", "--config", _config(tmp_path, api_url), "--url", "sync.example.com/webhooks/plain")
    assert bad.returncode == 1 and "--url must be" in bad.stderr
    assert fake.requests == []
