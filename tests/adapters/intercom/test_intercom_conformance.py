"""The Intercom adapter against FakeIntercom: the shared conformance suite, then what is
particular to Intercom (409 on create, stale ids after deletes, shared emails, regions)."""

from __future__ import annotations

import asyncio
from typing import Any

from connector.adapters.base import Change, Outcome
from connector.adapters.intercom import IntercomAdapter, IntercomConfig
from connector.redact import mask_email
from connector.testing.conformance import AdapterConformance
from connector.testing.fakes.intercom import FakeIntercom

from tests.adapters.conftest import run_started
from tests.adapters.intercom.conftest import TOKEN, change, intercom_adapter

TAG = "Conformance Tag"


class TestIntercomConformance(AdapterConformance):
    """Creation on and off; the fake answers 404 for an unattached tag (the default)."""

    adapter_class = IntercomAdapter
    supports_creation = True

    def make_fake(self) -> FakeIntercom:
        return FakeIntercom(TOKEN)

    def target_config(self, base_url: str, *, create_missing: bool = False) -> dict[str, Any]:
        return {"type": "intercom", "token": TOKEN, "base_url": base_url, "create_missing_contacts": create_missing}

    def mapping_options(self) -> dict[str, Any]:
        return {"tag": TAG}

    def seed_contact(self, fake: FakeIntercom, email: str) -> None:  # type: ignore[override]
        fake.seed_contact(email)

    def is_member(self, fake: FakeIntercom, email: str) -> bool:  # type: ignore[override]
        return TAG in fake.tags_for_email(email)

    def member_count(self, fake: FakeIntercom, email: str) -> int:  # type: ignore[override]
        return sum(TAG in fake.tags_of(c.id) for c in fake.with_email(email))

    def arrange_rejection(self, fake: FakeIntercom, email: str) -> bool:  # type: ignore[override]
        (contact,) = fake.with_email(email)
        fake.blocked.add(contact.id)
        return True


class TestIntercomConformanceLeadsAndLenientDetach(TestIntercomConformance):
    """The same suite with ``contact_role: lead`` and a fake answering 200 to an unattached detach."""

    def make_fake(self) -> FakeIntercom:
        return FakeIntercom(TOKEN, detach_unattached=200)

    def target_config(self, base_url: str, *, create_missing: bool = False) -> dict[str, Any]:
        return {**super().target_config(base_url, create_missing=create_missing), "contact_role": "lead"}

    def test_created_contact_is_a_lead(self, fake: FakeIntercom) -> None:
        self.test_missing_contact_is_created_when_enabled(fake)
        (created,) = [c for c in fake.contacts.values() if c.role == "lead"]
        assert created.external_id is None  # leads carry none


# -- Intercom specifics ---------------------------------------------------------------


def run(fake: FakeIntercom, *batches: list[Change], between: Any = None, **config: Any) -> list[list[Outcome]]:
    """Apply ``batches`` with one adapter (caches persist); ``between(fake)`` runs after the first."""

    async def main(adapter: IntercomAdapter) -> list[list[Outcome]]:
        results = []
        for index, batch in enumerate(batches):
            if index == 1 and between is not None:
                between(fake)
            results.append(await adapter.apply(batch))
        return results

    return run_started(intercom_adapter(fake, **config), main)


def kinds(results: list[list[Outcome]]) -> list[list[str]]:
    return [[o.kind for o in outcomes] for outcomes in results]


def calls(fake: FakeIntercom, method: str, path: str) -> int:
    return len(fake.log.matching(method, path))


def test_conflict_on_create_is_found_by_searching_again(fake: FakeIntercom) -> None:
    """Search lags behind a create made elsewhere: our create gets 409, the next search finds it."""
    existing = fake.seed_contact("lag@example.com", search_misses=1)
    [[outcome]] = run(fake, [change("lag@example.com")], create_missing_contacts=True)
    assert outcome.kind == "done", outcome
    assert [c.id for c in fake.with_email("lag@example.com")] == [existing]
    assert fake.tags_of(existing) == {TAG}
    assert [r.status for r in fake.log.matching("POST", "/contacts")] == [409]
    assert calls(fake, "POST", "/contacts/search") == 2


def test_conflict_that_search_cannot_see_yet_is_a_retry_not_a_crash(fake: FakeIntercom) -> None:
    fake.seed_contact("lag@example.com", search_misses=5)
    [[outcome]] = run(fake, [change("lag@example.com")], create_missing_contacts=True)
    assert outcome.kind == "retry", outcome
    assert "409" in (outcome.reason or "") and "lag@example.com" not in (outcome.reason or "")
    assert mask_email("lag@example.com") in (outcome.reason or "")
    assert fake.tags_for_email("lag@example.com") == set()


def test_conflict_with_an_archived_contact_is_skipped(fake: FakeIntercom) -> None:
    fake.seed_contact("old@example.com", archived=True)
    [[outcome]] = run(fake, [change("old@example.com")], create_missing_contacts=True)
    assert outcome.kind == "skipped" and "archived" in (outcome.reason or ""), outcome


def test_contact_deleted_since_cached_is_looked_up_again(fake: FakeIntercom) -> None:
    first = fake.seed_contact("moved@example.com")

    def recreate(fake: FakeIntercom) -> None:
        fake.delete_contact(first)
        fake.seed_contact("moved@example.com")  # e.g. re-imported: same email, new id

    results = run(
        fake, [change("moved@example.com", tag="A")], [change("moved@example.com", tag="B")], between=recreate
    )
    assert kinds(results) == [["done"], ["done"]]
    assert fake.tags_for_email("moved@example.com") == {"B"}
    assert calls(fake, "POST", "/contacts/search") == 2  # the cache served nothing stale twice


def test_contact_deleted_since_cached_and_gone_is_skipped_or_recreated(fake: FakeIntercom) -> None:
    first = fake.seed_contact("gone@example.com")
    results = run(
        fake,
        [change("gone@example.com", tag="A")],
        [change("gone@example.com", tag="B")],
        between=lambda f: f.delete_contact(first),
    )
    assert kinds(results) == [["done"], ["skipped"]]
    assert "not in Intercom" in (results[1][0].reason or "") and mask_email("gone@example.com") in (
        results[1][0].reason or ""
    )

    second = fake.seed_contact("gone2@example.com")
    results = run(
        fake,
        [change("gone2@example.com", tag="A")],
        [change("gone2@example.com", tag="B")],
        between=lambda f: f.delete_contact(second),
        create_missing_contacts=True,
    )
    assert kinds(results) == [["done"], ["done"]]
    assert fake.tags_for_email("gone2@example.com") == {"B"}


def test_removal_from_a_contact_deleted_since_cached_is_done(fake: FakeIntercom) -> None:
    first = fake.seed_contact("gone@example.com")
    results = run(
        fake,
        [change("gone@example.com")],
        [change("gone@example.com", "remove")],
        between=lambda f: f.delete_contact(first),
        create_missing_contacts=True,
    )
    assert kinds(results) == [["done"], ["done"]]
    assert fake.with_email("gone@example.com") == []  # never created just to untag
    assert len(fake.log.matching("DELETE", "/contacts/*")) == 1
    assert len(fake.log.matching("POST", "/contacts/search")) == 2  # looked up again after the 404


def test_tag_deleted_since_cached_is_created_again(fake: FakeIntercom) -> None:
    fake.seed_contact("a@example.com")
    fake.seed_contact("b@example.com")
    results = run(fake, [change("a@example.com")], [change("b@example.com")], between=lambda f: f.delete_tag(TAG))
    assert kinds(results) == [["done"], ["done"]]
    assert fake.tags_for_email("b@example.com") == {TAG}
    assert calls(fake, "POST", "/tags") == 2


def test_tag_lookup_is_once_per_name_case_blind(fake: FakeIntercom) -> None:
    emails = [f"p{i}@example.com" for i in range(6)]
    for email in emails:
        fake.seed_contact(email)
    batch = [change(e, tag=TAG if i % 2 else TAG.upper()) for i, e in enumerate(emails)]
    [outcomes] = run(fake, batch)
    assert [o.kind for o in outcomes] == ["done"] * 6
    assert calls(fake, "POST", "/tags") == 1
    assert len(fake.tags) == 1


def test_add_prefers_the_user_remove_clears_every_contact(fake: FakeIntercom) -> None:
    user = fake.seed_contact("both@example.com", role="user")
    lead = fake.seed_contact("both@example.com", role="lead", tags=(TAG,))  # tagged by hand earlier
    [[added]] = run(fake, [change("both@example.com")])
    assert added.kind == "done"
    assert (fake.tags_of(user), fake.tags_of(lead)) == ({TAG}, {TAG})
    assert fake.log.matching("POST", "/tags")[-1].json == {"name": TAG, "users": [{"id": user}]}
    [[removed]] = run(fake, [change("both@example.com", "remove")])
    assert removed.kind == "done"
    assert (fake.tags_of(user), fake.tags_of(lead)) == (set(), set())


def test_add_prefers_the_user_with_our_external_id(fake: FakeIntercom) -> None:
    other = fake.seed_contact("shared@example.com", external_id="u-other")
    ours = fake.seed_contact("shared@example.com", external_id="u-42")
    [[outcome]] = run(fake, [change("shared@example.com", external_id="u-42")])
    assert outcome.kind == "done"
    assert (fake.tags_of(ours), fake.tags_of(other)) == ({TAG}, set())


def test_only_leads_are_all_tagged(fake: FakeIntercom) -> None:
    leads = [fake.seed_contact("lead@example.com", role="lead") for _ in range(2)]
    [[outcome]] = run(fake, [change("lead@example.com")])
    assert outcome.kind == "done"
    assert [fake.tags_of(lead) for lead in leads] == [{TAG}, {TAG}]


def test_same_person_in_one_batch_is_searched_once(fake: FakeIntercom) -> None:
    fake.seed_contact("multi@example.com")
    batch = [change("multi@example.com", tag=t) for t in ("A", "B", "C")] + [change("MULTI@example.com", tag="D")]
    [outcomes] = run(fake, batch)
    assert [o.kind for o in outcomes] == ["done"] * 4
    assert calls(fake, "POST", "/contacts/search") == 1
    assert fake.tags_for_email("multi@example.com") == {"A", "B", "C", "D"}


def test_change_without_email_is_skipped_without_a_call(fake: FakeIntercom) -> None:
    [[blank, none]] = run(fake, [change(" "), change(None)])
    assert (blank.kind, none.kind) == ("skipped", "skipped")
    assert "email" in (none.reason or "")
    assert len(fake.requests) == 0


def test_bad_token_fails_with_a_readable_reason(fake: FakeIntercom) -> None:
    fake.seed_contact("a@example.com")
    fake.token = "a-different-token-entirely"
    [[outcome]] = run(fake, [change("a@example.com")])
    assert outcome.kind == "failed", outcome
    assert "401" in (outcome.reason or "") and "Access Token Invalid" in (outcome.reason or "")
    assert TOKEN not in (outcome.reason or "")


def test_created_user_carries_email_external_id_and_name(fake: FakeIntercom) -> None:
    [[outcome]] = run(fake, [change("new@example.com", external_id="u-7")], create_missing_contacts=True)
    assert outcome.kind == "done"
    (created,) = fake.with_email("new@example.com")
    assert (created.role, created.external_id, created.name) == ("user", "u-7", "Ada Lovelace")
    assert fake.tags_of(created.id) == {TAG}


# -- check --online -------------------------------------------------------------------


def check(fake: FakeIntercom, destinations: list[dict[str, Any]] = (), **config: Any) -> list[str]:  # type: ignore[assignment]
    return run_started(intercom_adapter(fake, **config), lambda adapter: adapter.check_online(destinations))


def test_check_online_is_read_only_and_clean(fake: FakeIntercom) -> None:
    assert check(fake, [{"tag": "Enterprise"}, {"tag": "Beta"}]) == []
    assert {r.method for r in fake.requests} == {"GET"}
    assert fake.tags == {}


def test_check_online_reports_a_bad_token_with_a_hint(fake: FakeIntercom) -> None:
    fake.token = "another-token-0000"
    (problem,) = check(fake)
    assert "401" in problem and "region" in problem and TOKEN not in problem


def test_check_online_reports_tag_names_that_are_one_tag(fake: FakeIntercom) -> None:
    (problem,) = check(fake, [{"tag": "Enterprise"}, {"tag": "enterprise"}, {"tag": "Beta"}])
    assert "'Enterprise'" in problem and "'enterprise'" in problem and "case-insensitive" in problem


def test_check_online_reports_the_wrong_region() -> None:
    """Without base_url the region decides the host; /me says where the workspace lives."""
    import respx

    with respx.mock(assert_all_called=True) as mock:
        mock.get("https://api.intercom.io/me").respond(200, json={"type": "admin", "app": {"region": "EU"}})

        async def main() -> list[str]:
            adapter = IntercomAdapter("intercom", IntercomConfig.model_validate({"type": "intercom", "token": TOKEN}))
            await adapter.start()
            try:
                return await adapter.check_online()
            finally:
                await adapter.close()

        (problem,) = asyncio.run(main())
    assert "'eu'" in problem and "region: eu" in problem
