"""The Customer.io adapter passes the conformance suite against FakeCustomerIo.

Customer.io's segment calls answer ``{}`` whoever they were about, so a person missing
from the workspace cannot be told apart (``contacts_can_be_missing = False``). Every
person the suite makes has a Customer.io ``id``, given to the adapter as the Plain
customer's external id: removal works only by ``id`` (see the adapter's docstring).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from connector.adapters.base import Action, Change
from connector.adapters.customerio import CustomerIoAdapter
from connector.testing.conformance import AdapterConformance
from connector.testing.fakes.customerio import FakeCustomerIo

SITE, KEY = "site-conformance", "cio-track-key-0123456789"
SEGMENT = 42


def person_id(email: str) -> str:
    return "u-" + email.split("@")[0]


class TestCustomerIoConformance(AdapterConformance):
    adapter_class = CustomerIoAdapter
    contacts_can_be_missing = False

    def make_fake(self) -> FakeCustomerIo:
        return FakeCustomerIo(SITE, KEY, segments={SEGMENT})

    def target_config(self, base_url: str, *, create_missing: bool = False) -> dict[str, Any]:
        return {"type": "customerio", "site_id": SITE, "api_key": KEY, "base_url": base_url}

    def mapping_options(self) -> dict[str, Any]:
        return {"segment": SEGMENT}

    def contact(self, fake: FakeCustomerIo, *, exists: bool = True) -> str:  # type: ignore[override]
        email = super().contact(fake, exists=False)
        fake.seed_person(id=person_id(email), email=email)
        return email

    def change(self, email: str, action: Action = "add", key: str = "k") -> Change:
        return dataclasses.replace(super().change(email, action, key), external_id=person_id(email))

    def is_member(self, fake: FakeCustomerIo, email: str) -> bool:  # type: ignore[override]
        return email in fake.member_emails(SEGMENT)
