"""A tag's segment past Mailchimp's first page of 1,000 segments, against FakeMailchimp.

Both lookups (apply's tag -> segment id, and ``members()`` for ``resync --verify``) read
every page: a tag seen as missing would be created again (Mailchimp refuses the name) or
listed as having nobody (verify would queue every member again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from connector.adapters.change import Change
from connector.adapters.errors import CrmError
from connector.adapters.mailchimp import MailchimpAdapter
from connector.testing.fakes.mailchimp import FakeMailchimp

from tests.adapters.mailchimp.conftest import AUD, change, config

T = TypeVar("T")
OTHER_TAGS = 1500


def _crowded(fake: FakeMailchimp) -> int:
    """1,500 other tags first, so Enterprise's segment is on the second page; its id."""
    for i in range(OTHER_TAGS):
        fake.seed_segment(AUD, f"Other {i:04d}")
    for who in ("ann", "bob"):
        fake.seed_member(AUD, f"{who}@example.com", tags=["Enterprise"])
    fake.seed_member(AUD, "cy@example.com")
    return fake.seed_segment(AUD, "Enterprise")


def _with_adapter(fake: FakeMailchimp, use: Callable[[MailchimpAdapter], Awaitable[T]], **extra: Any) -> T:
    async def main() -> T:
        adapter = MailchimpAdapter("mc", config(base_url=fake.base_url, **extra))
        await adapter.start()
        try:
            return await use(adapter)
        finally:
            await adapter.close()

    return asyncio.run(main())


def _segment_pages(fake: FakeMailchimp) -> list[tuple[str, str]]:
    listed = [r for r in fake.requests if r.method == "GET" and r.path == f"/3.0/lists/{AUD}/segments"]
    return [(r.query.get("offset", "0"), r.query.get("count", "10")) for r in listed]


def test_members_finds_a_tag_on_the_second_page_of_segments(fake: FakeMailchimp) -> None:
    _crowded(fake)

    async def members(adapter: MailchimpAdapter) -> tuple[list[str], list[str]]:
        tagged = [email async for email in adapter.members({"tag": "Enterprise"})]
        return tagged, [email async for email in adapter.members({"tag": "Nobody"})]

    tagged, nobody = _with_adapter(fake, members)
    assert sorted(tagged) == ["ann@example.com", "bob@example.com"]
    assert nobody == []
    # 1,501 segments: two pages of at most 1,000; a tag not found then is looked for afresh
    assert _segment_pages(fake) == [("0", "1000"), ("1000", "1000")] * 2


def test_apply_uses_the_existing_segment_past_the_first_page_instead_of_creating_it(fake: FakeMailchimp) -> None:
    segment = _crowded(fake)
    changes: list[Change] = [change("cy@example.com"), change("ann@example.com", action="remove", key="k2")]
    outcomes = _with_adapter(fake, lambda adapter: adapter.apply(changes))
    assert [o.kind for o in outcomes] == ["done", "done"]
    assert not [r for r in fake.requests if r.method == "POST" and r.path == f"/3.0/lists/{AUD}/segments"]
    assert [r.path for r in fake.requests if r.method == "POST"] == [f"/3.0/lists/{AUD}/segments/{segment}"]
    assert fake.tags_of(AUD, "cy@example.com") == {"Enterprise"} and fake.tags_of(AUD, "ann@example.com") == set()
    assert _segment_pages(fake) == [("0", "1000"), ("1000", "1000")]


def test_members_of_a_missing_audience_is_an_error_naming_it(fake: FakeMailchimp) -> None:
    async def members(adapter: MailchimpAdapter) -> list[str]:
        return [email async for email in adapter.members({"tag": "Enterprise"})]

    with pytest.raises(CrmError, match="audience 'nope' does not exist in this Mailchimp account"):
        _with_adapter(fake, members, audience_id="nope")
