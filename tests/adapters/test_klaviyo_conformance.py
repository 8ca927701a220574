"""The Klaviyo adapter passes the conformance suite against FakeKlaviyo, with and
without profile creation (the bulk import)."""

from __future__ import annotations

from typing import Any

from connector.adapters.klaviyo import KlaviyoAdapter
from connector.testing.conformance import AdapterConformance
from connector.testing.fakes.klaviyo import FakeKlaviyo

KEY = "pk_conformance_0123456789abcdef"
LIST = "Y6nRLr"


class _KlaviyoConformance(AdapterConformance):
    adapter_class = KlaviyoAdapter

    def make_fake(self) -> FakeKlaviyo:
        return FakeKlaviyo(KEY, lists={LIST})

    def target_config(self, base_url: str, *, create_missing: bool = False) -> dict[str, Any]:
        create = create_missing and self.supports_creation
        return {"type": "klaviyo", "api_key": KEY, "base_url": base_url, "create_missing_contacts": create}

    def mapping_options(self) -> dict[str, Any]:
        return {"list": LIST}

    def seed_contact(self, fake: FakeKlaviyo, email: str) -> None:  # type: ignore[override]
        fake.seed_profile(email)

    def is_member(self, fake: FakeKlaviyo, email: str) -> bool:  # type: ignore[override]
        return email.lower() in fake.member_emails(LIST)

    def arrange_throttle(self, fake: FakeKlaviyo, retry_after: float) -> None:  # type: ignore[override]
        fake.throttle_next(retry_after, path="/api/lists/*")

    def arrange_server_error(self, fake: FakeKlaviyo, times: int = 1) -> None:  # type: ignore[override]
        fake.fail_next(503, times=times, path="/api/lists/*")

    def arrange_permanent_error(self, fake: FakeKlaviyo, message: str) -> None:  # type: ignore[override]
        fake.fail_next(400, message, path="/api/lists/*")


class TestKlaviyoConformance(_KlaviyoConformance):
    """Creation off: a person Klaviyo does not know is skipped."""

    supports_creation = False


class TestKlaviyoConformanceWithCreation(_KlaviyoConformance):
    """Creation on: a missing joiner is imported into the list by a bulk import job."""

    supports_creation = True
