"""`check --online` for a brevo target, as an operator runs it (real CLI, fake Brevo)."""

from __future__ import annotations

from pathlib import Path

from connector.testing.fakes.brevo import FakeBrevo

from tests.conftest import run_cli, write_setup

KEY = "xkeysib-cli-0123456789abcdef-AbCd"


def setup(folder: Path, base_url: str, *lists: int | str) -> Path:
    targets = {"brevo": {"type": "brevo", "api_key": "${BREVO_API_KEY}", "base_url": base_url}}
    mappings = [{"group": f"g{i}", "to": [{"target": "brevo", "list": lst}]} for i, lst in enumerate(lists)]
    return write_setup(folder, targets=targets, mappings=mappings)


def test_check_online_is_clean_then_names_a_missing_list_and_a_refused_key(tmp_path: Path) -> None:
    fake = FakeBrevo(KEY, lists={12: "Enterprise"})
    with fake.serve() as base_url:
        config = setup(tmp_path, base_url, 12, "12")
        clean = run_cli("check", "--online", "--config", str(config), env={"BREVO_API_KEY": KEY})
        config = setup(tmp_path, base_url, 12, 99)
        missing = run_cli("check", "--online", "--config", str(config), env={"BREVO_API_KEY": KEY})
        refused = run_cli("check", "--online", "--config", str(config), env={"BREVO_API_KEY": "xkeysib-revoked-000"})
    assert clean.returncode == 0, clean.stderr
    assert (
        missing.returncode == 1 and "list 99 not found in Brevo" in missing.stderr and "list 12" not in missing.stderr
    )
    assert refused.returncode == 1 and "api_key was refused" in refused.stderr
    assert "xkeysib-revoked-000" not in refused.stdout + refused.stderr and KEY not in clean.stdout + clean.stderr


def test_check_refuses_a_list_that_is_not_a_number(tmp_path: Path) -> None:
    config = setup(tmp_path, "http://127.0.0.1:9", "Enterprise")
    result = run_cli("check", "--config", str(config), env={"BREVO_API_KEY": KEY})
    assert result.returncode == 1 and "groups.yaml:" in result.stderr and "numeric Brevo list id" in result.stderr
