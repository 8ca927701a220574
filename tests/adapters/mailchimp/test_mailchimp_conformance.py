"""The Mailchimp adapter passes the conformance suite against FakeMailchimp, with and
without contact creation."""

from __future__ import annotations

from typing import Any, ClassVar

from connector.adapters.mailchimp import MailchimpAdapter
from connector.testing.conformance import AdapterConformance
from connector.testing.fakes.mailchimp import FakeMailchimp

from tests.adapters.mailchimp.conftest import AUD, KEY

TAG = "Conformance"


class _MailchimpConformance(AdapterConformance):
    adapter_class = MailchimpAdapter
    create_when_asked: ClassVar[bool]

    def make_fake(self) -> FakeMailchimp:
        return FakeMailchimp(KEY, audiences={AUD})

    def target_config(self, base_url: str, *, create_missing: bool = False) -> dict[str, Any]:
        create = create_missing and self.create_when_asked
        extra = {"create_missing_contacts": True, "status_if_new": "transactional"} if create else {}
        return {"type": "mailchimp", "api_key": KEY, "audience_id": AUD, "base_url": base_url, **extra}

    def mapping_options(self) -> dict[str, Any]:
        return {"tag": TAG}

    def seed_contact(self, fake: FakeMailchimp, email: str) -> None:  # type: ignore[override]
        fake.seed_member(AUD, email, status="subscribed")

    def is_member(self, fake: FakeMailchimp, email: str) -> bool:  # type: ignore[override]
        return TAG in fake.tags_of(AUD, email)

    def arrange_rejection(self, fake: FakeMailchimp, email: str) -> bool:  # type: ignore[override]
        fake.reject.add(email)
        return True


class TestMailchimpConformance(_MailchimpConformance):
    """Creation off: a person outside the audience is skipped, never added."""

    supports_creation = False
    create_when_asked = False


class TestMailchimpConformanceWithCreation(_MailchimpConformance):
    """Creation on (status_if_new: transactional): a person outside the audience is added."""

    supports_creation = True
    create_when_asked = True

    def test_created_member_has_the_configured_status(self, fake: FakeMailchimp) -> None:
        email = self.contact(fake, exists=False)

        async def scenario() -> None:
            async with self.started(fake, create_missing=True) as adapter:
                assert (await self.apply_one(adapter, self.change(email))).kind == "done"

        self.run(scenario())
        member = fake.member(AUD, email)
        assert member is not None and member.status == "transactional" and member.tags == {TAG}
