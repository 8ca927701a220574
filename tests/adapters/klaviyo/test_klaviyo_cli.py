"""`check` and `check --online` for klaviyo targets, as an operator runs them (real CLI,
the in-repo fake on loopback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.testing.fakes.klaviyo import FakeKlaviyo

from tests.adapters.cli_checks import check_examples
from tests.adapters.cli_checks import one_target_setup as setup
from tests.conftest import run_cli

KEY, LIST = "pk_cli_0123456789abcdef", "Y6nRLr"


def klaviyo(base_url: str) -> dict[str, Any]:
    return {"type": "klaviyo", "api_key": "${KLAVIYO_API_KEY}", "base_url": base_url}


def test_klaviyo_check_online_is_clean_then_names_a_missing_list_and_a_refused_key(tmp_path: Path) -> None:
    fake = FakeKlaviyo(KEY, lists={LIST})
    with fake.serve() as base_url:
        good = run_cli("check", "--online", "--config", str(setup(tmp_path, klaviyo(base_url), {"list": LIST})),
                       env={"KLAVIYO_API_KEY": KEY})  # fmt: skip
        config = setup(tmp_path, klaviyo(base_url), {"list": LIST}, {"list": "Gone1"})
        lists = run_cli("check", "--online", "--config", str(config), env={"KLAVIYO_API_KEY": KEY})
        refused = run_cli("check", "--online", "--config", str(config), env={"KLAVIYO_API_KEY": "pk_revoked_000000"})
    assert good.returncode == 0, good.stderr
    assert lists.returncode == 1 and "GET /api/lists/Gone1 -> HTTP 404" in lists.stderr
    assert "no such list" in lists.stderr and LIST not in lists.stderr.replace("Gone1", "")
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr and "check api_key" in refused.stderr
    assert "pk_revoked_000000" not in refused.stderr and KEY not in good.stdout + good.stderr


def test_klaviyo_check_refuses_a_bad_list_option_and_an_unset_key(tmp_path: Path) -> None:
    config = setup(tmp_path, klaviyo("http://127.0.0.1:9"), {"list": "a/b"})
    options = run_cli("check", "--config", str(config), env={"KLAVIYO_API_KEY": KEY})
    assert options.returncode == 1 and "groups.yaml:" in options.stderr and "Klaviyo list id" in options.stderr
    unset = run_cli("check", "--config", str(setup(tmp_path, klaviyo("http://127.0.0.1:9"), {"list": LIST})),
                    env={"KLAVIYO_API_KEY": ""})  # fmt: skip
    assert unset.returncode == 1 and "api_key is empty" in unset.stderr


def test_the_example_mapping_and_config_block_are_valid() -> None:
    check_examples("klaviyo")
