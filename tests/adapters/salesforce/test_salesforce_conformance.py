"""The Salesforce adapter against FakeSalesforce: the shared conformance suite (Contacts and
Leads), and the org limits Salesforce answers with 403 instead of 429."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from connector.adapters.salesforce import SalesforceAdapter
from connector.testing.conformance import AdapterConformance
from connector.testing.fakes.salesforce import FakeSalesforce

CLIENT_ID = "3MVG9conformance.client.id"
SECRET = "conformance-client-secret-0123456789"
API = "/services/data/*"


class _SalesforceConformance(AdapterConformance):
    adapter_class = SalesforceAdapter
    people: ClassVar[str]
    campaign: str = ""

    def make_fake(self) -> FakeSalesforce:
        fake = FakeSalesforce(CLIENT_ID, SECRET)
        self.campaign = fake.seed_campaign("Conformance")
        return fake

    def target_config(self, base_url: str, *, create_missing: bool = False) -> dict[str, Any]:
        return {"type": "salesforce", "login_url": base_url, "client_id": CLIENT_ID, "client_secret": SECRET}

    def mapping_options(self) -> dict[str, Any]:
        return {"campaign": self.campaign}

    def seed_contact(self, fake: FakeSalesforce, email: str) -> None:  # type: ignore[override]
        (fake.seed_lead if self.people == "lead" else fake.seed_contact)(email)

    def is_member(self, fake: FakeSalesforce, email: str) -> bool:  # type: ignore[override]
        return email.lower() in fake.member_emails(self.campaign)

    def member_count(self, fake: FakeSalesforce, email: str) -> int:  # type: ignore[override]
        return fake.member_emails(self.campaign).count(email.lower())

    def arrange_rejection(self, fake: FakeSalesforce, email: str) -> bool:  # type: ignore[override]
        fake.reject.add(email.lower())
        return True

    # The token endpoint is not the API: trouble is arranged where the API answers.
    def arrange_throttle(self, fake: FakeSalesforce, retry_after: float) -> None:  # type: ignore[override]
        fake.throttle_next(retry_after, path=API)

    def arrange_server_error(self, fake: FakeSalesforce, times: int = 1) -> None:  # type: ignore[override]
        fake.fail_next(503, times=times, path=API)

    def arrange_permanent_error(self, fake: FakeSalesforce, message: str) -> None:  # type: ignore[override]
        fake.fail_next(400, message, path=API)

    def test_short_throttle_is_honoured(self, fake: FakeSalesforce) -> None:  # type: ignore[override]
        pytest.skip(
            "Salesforce never answers 429 nor says how long to wait; its short limit (403 "
            "ConcurrentPerOrgLongTxn) is covered in test_salesforce_limits.py"
        )


class TestSalesforceConformanceContacts(_SalesforceConformance):
    """People are Contacts (found by the first of the two queries)."""

    people = "contact"


class TestSalesforceConformanceLeads(_SalesforceConformance):
    """People are unconverted Leads (found by the second query, after no Contact)."""

    people = "lead"
