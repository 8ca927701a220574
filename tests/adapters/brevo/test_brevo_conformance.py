"""The Brevo adapter against FakeBrevo: the shared conformance suite, with creation off and on."""

from __future__ import annotations

from typing import Any, ClassVar

from connector.adapters.brevo import BrevoAdapter
from connector.testing.conformance import AdapterConformance
from connector.testing.fakes.brevo import FakeBrevo

KEY = "xkeysib-conformance-0123456789abcdef0123456789abcdef-AbCdEfGh"
LIST = 7


class _BrevoConformance(AdapterConformance):
    adapter_class = BrevoAdapter
    create_when_asked: ClassVar[bool]

    def make_fake(self) -> FakeBrevo:
        return FakeBrevo(KEY, lists={LIST: "Conformance"})

    def target_config(self, base_url: str, *, create_missing: bool = False) -> dict[str, Any]:
        create = create_missing and self.create_when_asked
        return {"type": "brevo", "api_key": KEY, "base_url": base_url, "create_missing_contacts": create}

    def mapping_options(self) -> dict[str, Any]:
        return {"list": LIST}

    def seed_contact(self, fake: FakeBrevo, email: str) -> None:  # type: ignore[override]
        fake.seed_contact(email)

    def is_member(self, fake: FakeBrevo, email: str) -> bool:  # type: ignore[override]
        return email.lower() in fake.members(LIST)

    def arrange_rejection(self, fake: FakeBrevo, email: str) -> bool:  # type: ignore[override]
        fake.reject.add(email.lower())
        return True


class TestBrevoConformance(_BrevoConformance):
    """Creation off: an email Brevo does not know is "not in CRM"."""

    supports_creation = False
    create_when_asked = False


class TestBrevoConformanceWithCreation(_BrevoConformance):
    """Creation on: an unknown email is created with the list in one call."""

    supports_creation = True
    create_when_asked = True
