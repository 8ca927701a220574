"""`check` and `check --online` for customerio targets, as an operator runs them (real
CLI, the in-repo fake on loopback)."""

from __future__ import annotations

from pathlib import Path

from connector.testing.fakes.customerio import FakeCustomerIo

from tests.adapters.cli_checks import check_examples
from tests.adapters.cli_checks import one_target_setup as setup
from tests.conftest import run_cli

SITE, CIO_KEY = "site-cli", "cio-track-key-cli-0123"


def test_customerio_check_online_checks_credentials_and_region(tmp_path: Path) -> None:
    fake = FakeCustomerIo(SITE, CIO_KEY, segments={42}, region="eu")
    target = {"type": "customerio", "site_id": SITE, "api_key": "${CIO_KEY}", "region": "eu"}
    with fake.serve() as base_url:
        config = setup(tmp_path, {**target, "base_url": base_url}, {"segment": 42})
        good = run_cli("check", "--online", "--config", str(config), env={"CIO_KEY": CIO_KEY})
        refused = run_cli("check", "--online", "--config", str(config), env={"CIO_KEY": "cio-wrong-key-000"})
    assert good.returncode == 0, good.stderr
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr and "check site_id and api_key" in refused.stderr
    assert "cio-wrong-key-000" not in refused.stderr
    bad = run_cli("check", "--config", str(setup(tmp_path, target, {"segment": "vip"})), env={"CIO_KEY": CIO_KEY})
    assert bad.returncode == 1 and "manual segment" in bad.stderr


def test_the_example_mapping_and_config_block_are_valid() -> None:
    check_examples("customerio")
