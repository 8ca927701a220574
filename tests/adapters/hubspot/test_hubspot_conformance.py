"""The HubSpot adapter passes the shared conformance suite against FakeHubSpot."""

from __future__ import annotations

from typing import Any, TypeVar

from connector.adapters.base import Outcome
from connector.adapters.hubspot import HubSpotAdapter
from connector.testing.conformance import AdapterConformance
from connector.testing.fakes.hubspot import ALL_SCOPES, FakeHubSpot
from connector.testing.fakes.server import FakeServer

from tests.adapters.conftest import run_started
from tests.adapters.hubspot.conftest import TOKEN, adapter

T = TypeVar("T")

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


# -- beyond the suite, against the same fake -----------------------------------------------


def test_check_online_against_the_fake_names_each_problem() -> None:
    fake = FakeHubSpot(TOKEN, scopes=ALL_SCOPES - {"crm.lists.read"})
    fake.seed_list("Enterprise", list_id=LIST_ID)
    with fake.serve():
        [problem] = run_started(adapter(fake), lambda a: a.check_online([{"list": LIST_ID}]))
        fake.scopes = set(ALL_SCOPES)
        fake.seed_list("Active", processing_type="DYNAMIC", list_id="42")
        options = [{"list": LIST_ID}, {"list_name": "active"}, {"list_name": "Nope"}]
        problems = run_started(adapter(fake), lambda a: a.check_online(options))
    assert "lacks scope crm.lists.read" in problem
    assert len(problems) == 2
    assert "list named 'active' is a DYNAMIC list" in problems[0] and "list named 'Nope' not found" in problems[1]


def test_a_contact_deleted_and_recreated_in_hubspot_is_found_again() -> None:
    fake = FakeHubSpot(TOKEN)
    fake.seed_list("Enterprise", list_id=LIST_ID)
    old_id = fake.seed_contact("ann@example.com")
    change = TestHubSpotConformance().change("ann@example.com", key="1")

    async def scenario(adapter: HubSpotAdapter) -> list[Outcome]:
        first = await adapter.apply([change])
        fake.delete_contact("ann@example.com")
        fake.seed_contact("ann@example.com")  # same email, new record id; the adapter cached the old one
        return first + await adapter.apply([change])

    with fake.serve():
        outcomes = run_started(adapter(fake), scenario)
    assert outcomes == [Outcome.done(), Outcome.done()]
    assert fake.member_emails(LIST_ID) == {"ann@example.com"} and old_id not in fake.member_ids(LIST_ID)
    reads = fake.log.matching("POST", "/crm/v3/objects/contacts/batch/read")
    assert len(reads) == 2, "one read, then one fresh read after HubSpot reported the cached id missing"
