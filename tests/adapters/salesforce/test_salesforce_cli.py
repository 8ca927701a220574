"""`check --online` for a salesforce target, as an operator runs it (real CLI, fake org)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.testing.fakes.salesforce import FakeSalesforce

from tests.conftest import run_cli, write_setup

CLIENT_ID = "3MVG9cli.client.id"
SECRET = "cli-client-secret-0123456789"


def setup(folder: Path, login_url: str, *destinations: dict[str, Any]) -> Path:
    target = {"type": "salesforce", "login_url": login_url, "client_id": CLIENT_ID,
              "client_secret": "${SF_CLIENT_SECRET}"}  # fmt: skip
    mappings = [{"group": f"g{i}", "to": [{"target": "sf", **d}]} for i, d in enumerate(destinations)]
    return write_setup(folder, targets={"sf": target}, mappings=mappings)


def test_check_online_is_clean_then_names_the_bad_campaign_and_the_refused_secret(tmp_path: Path) -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET)
    campaign = fake.seed_campaign("Spring", statuses=("Sent", "Responded"))
    with fake.serve() as base_url:
        config = setup(tmp_path, base_url, {"campaign": campaign, "status": "Responded"})
        clean = run_cli("check", "--online", "--config", str(config), env={"SF_CLIENT_SECRET": SECRET})
        config = setup(tmp_path, base_url, {"campaign": campaign, "status": "Attended"}, {"campaign": "701" + "0" * 15})
        bad = run_cli("check", "--online", "--config", str(config), env={"SF_CLIENT_SECRET": SECRET})
        refused = run_cli("check", "--online", "--config", str(config), env={"SF_CLIENT_SECRET": "old-secret-000"})
    assert clean.returncode == 0, clean.stderr
    assert bad.returncode == 1 and "no member status 'Attended'" in bad.stderr and "7010000" in bad.stderr
    assert refused.returncode == 1 and "invalid_client" in refused.stderr
    assert "old-secret-000" not in refused.stdout + refused.stderr and SECRET not in clean.stdout + clean.stderr


def test_check_names_an_unset_secret_then_a_malformed_campaign(tmp_path: Path) -> None:
    config = setup(tmp_path, "http://127.0.0.1:9", {"campaign": "Spring launch"})
    unset = run_cli("check", "--config", str(config), env={"SF_CLIENT_SECRET": ""})
    malformed = run_cli("check", "--config", str(config), env={"SF_CLIENT_SECRET": SECRET})
    assert unset.returncode == 1 and "config.yaml:" in unset.stderr and "client_secret is empty" in unset.stderr
    assert malformed.returncode == 1 and "groups.yaml:" in malformed.stderr and "starting with 701" in malformed.stderr
