"""The `members` hook (resync --verify) of each vendor adapter, through the adapter API against its fake."""

from __future__ import annotations

import asyncio
from typing import Any

from connector.adapters.base import Adapter, lists_members
from connector.adapters.hubspot import HubSpotAdapter, HubSpotConfig
from connector.adapters.intercom import IntercomAdapter, IntercomConfig
from connector.adapters.jsonl import JsonlAdapter, JsonlConfig
from connector.adapters.mailchimp import MailchimpAdapter, MailchimpConfig
from connector.testing.fakes.hubspot import FakeHubSpot
from connector.testing.fakes.intercom import FakeIntercom
from connector.testing.fakes.mailchimp import FakeMailchimp

MC_KEY = "0123456789abcdef0123456789abcdef-us21"


def _members(adapter: Adapter, options: dict[str, Any]) -> list[str]:
    async def main() -> list[str]:
        await adapter.start()
        try:
            return [email async for email in adapter.members(options)]
        finally:
            await adapter.close()

    return asyncio.run(main())


def test_hubspot_lists_every_member_across_pages():
    hub = FakeHubSpot("tok", unlimited=True)
    list_id = hub.seed_list("Big")
    emails = {f"m{i}@example.com" for i in range(260)}  # over one page of 250
    hub.lists[list_id]["members"].update(hub.seed_contact(e) for e in emails)
    hub.seed_contact("outside@example.com")
    with hub.serve() as url:
        adapter = HubSpotAdapter(
            "hs", HubSpotConfig.model_validate({"type": "hubspot", "token": "tok", "base_url": url})
        )
        assert sorted(_members(adapter, {"list": list_id})) == sorted(emails)
        by_name = HubSpotAdapter(
            "hs", HubSpotConfig.model_validate({"type": "hubspot", "token": "tok", "base_url": url})
        )
        assert len(_members(by_name, {"list_name": "Big"})) == 260


def test_mailchimp_lists_the_tags_members_and_nothing_for_an_unknown_tag():
    fake = FakeMailchimp(MC_KEY, ["aud1"])
    for i in range(3):
        fake.seed_member("aud1", f"t{i}@example.com", tags=["Enterprise"])
    fake.seed_member("aud1", "other@example.com", tags=["Beta"])
    with fake.serve() as url:
        raw = {"type": "mailchimp", "api_key": MC_KEY, "audience_id": "aud1", "base_url": url}
        make = lambda: MailchimpAdapter("mc", MailchimpConfig.model_validate(raw))  # noqa: E731
        assert sorted(_members(make(), {"tag": "Enterprise"})) == [f"t{i}@example.com" for i in range(3)]
        assert _members(make(), {"tag": "Nobody"}) == []


def test_intercom_lists_tagged_contacts_across_pages_without_creating_a_tag():
    fake = FakeIntercom("intercom-token-0123456789")
    emails = {f"i{i}@example.com" for i in range(160)}  # over one page of 150
    for email in emails:
        fake.seed_contact(email, tags=("Enterprise",))
    fake.seed_contact("plain@example.com")
    with fake.serve() as url:
        raw = {"type": "intercom", "token": "intercom-token-0123456789", "base_url": url}
        make = lambda: IntercomAdapter("ic", IntercomConfig.model_validate(raw))  # noqa: E731
        assert set(_members(make(), {"tag": "enterprise"})) == emails
        assert _members(make(), {"tag": "Nobody"}) == []
    assert set(fake.tags.values()) == {"Enterprise"}


def test_adapters_without_the_hook_say_so(tmp_path):
    jsonl = JsonlAdapter("audit", JsonlConfig.model_validate({"type": "jsonl", "path": str(tmp_path / "x.jsonl")}))
    assert not lists_members(jsonl)
    assert lists_members(HubSpotAdapter("hs", HubSpotConfig.model_validate({"type": "hubspot", "token": "t"})))
