"""What the per-vendor CLI tests share: a one-target setup, and the check of the examples."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from connector.adapters import adapter_class

from tests.conftest import write_setup


def check_examples(name: str) -> None:
    """mappings/crm.yaml.example's ``name`` entries pass the adapter's option check, and the
    commented ``name`` block in config.example.yaml validates once uncommented."""
    repo = Path(__file__).resolve().parents[2]
    mappings = yaml.safe_load((repo / "mappings" / "crm.yaml.example").read_text())["mappings"]
    seen = set()
    for entry in mappings:
        for dest in entry["to"]:
            if dest["target"] == name:
                options = {k: v for k, v in dest.items() if k != "target"}
                adapter_class(dest["target"]).validate_options(options)
                seen.add(dest["target"])
    assert seen == {name}
    text = (repo / "config.example.yaml").read_text()
    block = re.search(rf"^  # {name}:.*\n((?:  #   .*\n)+)", text, re.MULTILINE)
    assert block, name
    raw = yaml.safe_load("\n".join(line[5:] for line in block.group(1).splitlines()))
    raw = {k: (f"{name}-example-secret-0123" if "${" in str(v) else v) for k, v in raw.items()}
    adapter_class(name).config_model.model_validate(raw)


def one_target_setup(folder: Path, target: dict[str, Any], *destinations: dict[str, Any]) -> Path:
    """A config with ``target`` named ``crm`` and one group mapped to each destination."""
    mappings = [{"group": f"g{i}", "to": [{"target": "crm", **d}]} for i, d in enumerate(destinations)]
    return write_setup(folder, targets={"crm": target}, mappings=mappings)
