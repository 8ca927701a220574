"""The HubSpot adapter passes the shared conformance suite against FakeHubSpot."""

from __future__ import annotations

from typing import Any

from connector.adapters.hubspot import HubSpotAdapter
from connector.testing.conformance import AdapterConformance
from connector.testing.fakes.hubspot import FakeHubSpot
from connector.testing.fakes.server import FakeServer

TOKEN = "pat-na1-conformance-0123456789"
LIST_ID = "41"


class TestHubSpotConformance(AdapterConformance):
    adapter_class = HubSpotAdapter
    supports_creation = True

    def make_fake(self) -> FakeHubSpot:
        fake = FakeHubSpot(TOKEN)
        fake.seed_list("Conformance", list_id=LIST_ID)
        return fake

    def target_config(self, base_url: str, *, create_missing: bool = False) -> dict[str, Any]:
        return {"type": "hubspot", "token": TOKEN, "base_url": base_url, "create_missing_contacts": create_missing}

    def mapping_options(self) -> dict[str, Any]:
        return {"list": LIST_ID}

    def seed_contact(self, fake: FakeServer, email: str) -> None:
        assert isinstance(fake, FakeHubSpot)
        fake.seed_contact(email)

    def is_member(self, fake: FakeServer, email: str) -> bool:
        assert isinstance(fake, FakeHubSpot)
        return email in fake.member_emails(LIST_ID)


class TestHubSpotConformanceByListName(TestHubSpotConformance):
    """Same suite with the list named instead of numbered (one extra, cached, lookup)."""

    def mapping_options(self) -> dict[str, Any]:
        return {"list_name": "conformance"}  # HubSpot matches list names case-insensitively


class TestHubSpotConformanceWithoutCreation(TestHubSpotConformance):
    """An adapter that never creates: missing contacts are skipped, never created."""

    supports_creation = False
