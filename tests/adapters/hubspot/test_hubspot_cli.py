"""`check` and `check --online` for a hubspot target, as an operator runs them (real CLI, fake HubSpot)."""

from __future__ import annotations

from pathlib import Path

from connector.testing.fakes.hubspot import FakeHubSpot

from tests.conftest import run_cli, write_setup

TOKEN = "pat-na1-cli-0123456789abcdef"


def setup(folder: Path, base_url: str, *destinations: dict[str, str]) -> Path:
    targets = {"hubspot": {"type": "hubspot", "token": "${HUBSPOT_TOKEN}", "base_url": base_url}}
    mappings = [{"group": f"g{i}", "to": [{"target": "hubspot", **d}]} for i, d in enumerate(destinations)]
    return write_setup(folder, targets=targets, mappings=mappings)


def test_check_online_is_clean_for_a_good_token_and_writable_lists(tmp_path: Path) -> None:
    fake = FakeHubSpot(TOKEN)
    list_id = fake.seed_list("Enterprise")
    fake.seed_list("Beta", processing_type="SNAPSHOT")
    with fake.serve() as base_url:
        config = setup(tmp_path, base_url, {"list": list_id}, {"list_name": "beta"})
        result = run_cli("check", "--online", "--config", str(config), env={"HUBSPOT_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_check_online_names_the_bad_list_and_the_bad_token(tmp_path: Path) -> None:
    fake = FakeHubSpot(TOKEN)
    fake.seed_list("Active", processing_type="DYNAMIC", list_id="8")
    with fake.serve() as base_url:
        config = setup(tmp_path, base_url, {"list": "8"}, {"list": "9"})
        lists = run_cli("check", "--online", "--config", str(config), env={"HUBSPOT_TOKEN": TOKEN})
        token = run_cli("check", "--online", "--config", str(config), env={"HUBSPOT_TOKEN": "pat-na1-revoked-000"})
    assert lists.returncode == 1
    assert "target 'hubspot'" in lists.stderr and "list 8 is a DYNAMIC list" in lists.stderr
    assert "list 9 not found in HubSpot" in lists.stderr
    assert token.returncode == 1 and "token was refused" in token.stderr and "pat-na1-revoked-000" not in token.stderr


def test_check_refuses_a_mapping_with_both_or_neither_list_option(tmp_path: Path) -> None:
    config = setup(tmp_path, "http://127.0.0.1:9", {"list": "1", "list_name": "E"})
    result = run_cli("check", "--config", str(config), env={"HUBSPOT_TOKEN": TOKEN})
    assert result.returncode == 1
    assert "groups.yaml:" in result.stderr and "exactly one of list" in result.stderr
