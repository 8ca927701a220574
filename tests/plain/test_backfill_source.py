"""The Plain-reading half of backfill, against the fake Plain API on loopback."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from connector.plain.api import PlainApi
from connector.plain.backfill_source import GroupDone, GroupPage, read_groups
from connector.plain.errors import PlainUsageError
from connector.testing.fakes.plain_api import FakePlainApi

KEY = "backfill-key"


def _read(fake: FakePlainApi, *args: Any, **kwargs: Any) -> list[GroupPage | GroupDone]:
    async def main(url: str) -> list[GroupPage | GroupDone]:
        async with PlainApi(KEY, url, backoff_base=0.01) as api:
            return [item async for item in read_groups(api, *args, **kwargs)]

    with fake.serve() as url:
        return asyncio.run(main(url))


@pytest.fixture
def fake() -> FakePlainApi:
    fake = FakePlainApi(KEY)
    ent = fake.data.add_group("enterprise")
    beta = fake.data.add_group("beta")
    for i in range(130):
        fake.data.add_customer(f"E {i:03d}", f"e{i}@example.com", groups=[ent], external_id=f"x{i}")
    fake.data.add_customer("Both", "both@example.com", groups=[ent, beta])
    fake.data.add_group("empty")
    return fake


def test_each_group_is_read_in_pages_then_marked_done(fake):
    items = _read(fake, page_size=100)
    shape = [(type(i).__name__, i.group.key, getattr(i, "number", None)) for i in items]
    assert shape == [
        ("GroupPage", "beta", 1), ("GroupDone", "beta", None),
        ("GroupDone", "empty", None),
        ("GroupPage", "enterprise", 1), ("GroupPage", "enterprise", 2), ("GroupDone", "enterprise", None),
    ]  # fmt: skip
    enterprise = [m for i in items if isinstance(i, GroupPage) and i.group.key == "enterprise" for m in i.members]
    assert len(enterprise) == 131 and {m.group_key for m in enterprise} == {"enterprise"}
    assert enterprise[0].email == "both@example.com" and enterprise[1].external_id == "x0"
    assert [i.members for i in items if isinstance(i, GroupDone)] == [1, 0, 131]


def test_started_is_taken_before_the_groups_first_request(fake):
    before = datetime.now(UTC)
    items = _read(fake, ["beta"])
    started = {i.started for i in items}
    assert len(started) == 1
    [stamp] = started
    first_request = datetime.fromtimestamp(fake.requests[1].at, UTC)  # [0] listed the groups
    assert before <= stamp <= first_request


def test_a_joiner_sorting_before_the_cursor_is_missed_and_the_read_still_completes(fake):
    joiner = fake.data.add_customer("Aaron", "aaron@example.com")
    reads = []

    def join_after_first_page(field: str, _args: dict[str, Any]) -> None:
        reads.append(field)
        if reads.count("customers") == 2:
            fake.data.join(joiner, "enterprise")

    fake.on_read = join_after_first_page
    items = _read(fake, ["enterprise"], page_size=100)
    ids = {m.customer_id for i in items if isinstance(i, GroupPage) for m in i.members}
    assert joiner not in ids and len(ids) == 131  # its webhook, newer than `started`, adds it
    assert isinstance(items[-1], GroupDone)


def test_named_groups_and_skip_for_resume(fake):
    done = {i.group.id for i in _read(fake, ["beta"]) if isinstance(i, GroupDone)}
    items = _read(fake, ["beta", "enterprise"], skip=done)
    assert {i.group.key for i in items} == {"enterprise"}


def test_an_unknown_group_is_refused_with_its_name(fake):
    with pytest.raises(PlainUsageError, match="no-such-group"):
        _read(fake, ["enterprise", "no-such-group"])
