"""`check` and `check --online` for klaviyo and customerio targets, as an operator runs
them (real CLI, in-repo fakes on loopback)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from connector.adapters import adapter_class
from connector.testing.fakes.customerio import FakeCustomerIo
from connector.testing.fakes.klaviyo import FakeKlaviyo

from tests.conftest import run_cli, write_setup

KEY, LIST = "pk_cli_0123456789abcdef", "Y6nRLr"
SITE, CIO_KEY = "site-cli", "cio-track-key-cli-0123"


def setup(folder: Path, target: dict[str, Any], *destinations: dict[str, Any]) -> Path:
    mappings = [{"group": f"g{i}", "to": [{"target": "crm", **d}]} for i, d in enumerate(destinations)]
    return write_setup(folder, targets={"crm": target}, mappings=mappings)


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


def test_the_example_mappings_and_config_blocks_are_valid() -> None:
    """mappings/crm.yaml.example's klaviyo/customerio entries pass each adapter's option check,
    and the commented blocks in config.example.yaml validate once uncommented."""
    repo = Path(__file__).resolve().parents[2]
    mappings = yaml.safe_load((repo / "mappings" / "crm.yaml.example").read_text())["mappings"]
    seen = set()
    for entry in mappings:
        for dest in entry["to"]:
            if dest["target"] in ("klaviyo", "customerio"):
                options = {k: v for k, v in dest.items() if k != "target"}
                adapter_class(dest["target"]).validate_options(options)
                seen.add(dest["target"])
    assert seen == {"klaviyo", "customerio"}
    text = (repo / "config.example.yaml").read_text()
    for name in ("klaviyo", "customerio"):
        block = re.search(rf"^  # {name}:.*\n((?:  #   .*\n)+)", text, re.MULTILINE)
        assert block, name
        raw = yaml.safe_load("\n".join(line[5:] for line in block.group(1).splitlines()))
        raw = {k: (f"{name}-example-secret-0123" if "${" in str(v) else v) for k, v in raw.items()}
        adapter_class(name).config_model.model_validate(raw)
