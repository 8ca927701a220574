"""The docs' example adapter passes the conformance suite, missing-contact tests included."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from connector.testing.conformance import AdapterConformance

from tests.adapters.kit.toycrm import ToyCrmAdapter
from tests.adapters.kit.toycrm_fake import FakeToyCrm

TOKEN = "toy-token-0123456789"
LIST = "L1"


class TestToyCrmConformance(AdapterConformance):
    adapter_class = ToyCrmAdapter
    supports_creation = True

    def make_fake(self) -> FakeToyCrm:
        return FakeToyCrm(TOKEN, lists={LIST})

    def target_config(self, base_url: str, *, create_missing: bool = False) -> dict[str, Any]:
        return {"type": "toycrm", "token": TOKEN, "base_url": base_url, "create_missing_contacts": create_missing}

    def mapping_options(self) -> dict[str, Any]:
        return {"list": LIST}

    def seed_contact(self, fake: FakeToyCrm, email: str) -> None:  # type: ignore[override]
        fake.contacts[email] = f"ct_seed_{len(fake.contacts)}"

    def is_member(self, fake: FakeToyCrm, email: str) -> bool:  # type: ignore[override]
        return email in fake.member_emails(LIST)


def test_docs_show_exactly_this_adapter() -> None:
    """docs/adapters.md embeds tests/adapters/kit/toycrm.py; keep them the same."""
    root = Path(__file__).resolve().parents[3]
    docs = (root / "docs" / "adapters.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", docs, flags=re.DOTALL)
    source = (root / "tests" / "adapters" / "kit" / "toycrm.py").read_text()
    assert source in blocks
