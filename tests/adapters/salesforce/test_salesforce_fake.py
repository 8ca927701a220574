"""The Salesforce adapter against FakeSalesforce: sessions, the org's limits, matching and
check --online, beyond what the conformance suite covers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from connector.adapters.base import Change, Outcome
from connector.adapters.salesforce import SalesforceAdapter, SalesforceConfig
from connector.testing.fakes.salesforce import FakeSalesforce

from tests.adapters.started import apply_batches, check_online

CLIENT_ID = "3MVG9fake.client.id"
SECRET = "fake-client-secret-0123456789"
REFRESH = "5Aep861fake.refresh.token.0123456789"
TOKEN_PATH = "/services/oauth2/token"


def change(email: str, campaign: str, action: str = "add", key: str = "k", **options: str) -> Change:
    return Change(key=key, action=action, customer_id="c", email=email, group_id="cg",  # type: ignore[arg-type]
                  group_key="g", event_id="pEv", options={"campaign": campaign, **options})  # fmt: skip


def adapter_for(fake: FakeSalesforce, **config: Any) -> SalesforceAdapter:
    raw = {"type": "salesforce", "login_url": fake.base_url, "client_id": CLIENT_ID, "client_secret": SECRET, **config}
    return SalesforceAdapter("sf", SalesforceConfig.model_validate(raw))


def run(fake: FakeSalesforce, *batches: Sequence[Change], **config: Any) -> list[list[Outcome]]:
    return apply_batches(adapter_for(fake, **config), *batches)


def kinds(outcomes: list[Outcome]) -> list[str]:
    return [o.kind for o in outcomes]


def test_an_expired_session_is_renewed_once_and_the_call_repeated() -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET)
    campaign = fake.seed_campaign("Spring")
    fake.seed_contact("ada@example.com")
    fake.seed_contact("bob@example.com")
    with fake.serve():

        async def main() -> list[Outcome]:
            adapter = adapter_for(fake)
            await adapter.start()
            try:
                first = await adapter.apply([change("ada@example.com", campaign)])
                fake.expire_tokens()
                return first + await adapter.apply([change("bob@example.com", campaign)])
            finally:
                await adapter.close()

        outcomes = asyncio.run(main())
    assert kinds(outcomes) == ["done", "done"]
    assert len(fake.log.matching("POST", TOKEN_PATH)) == 2
    assert [r.status for r in fake.requests].count(401) == 1
    assert fake.member_emails(campaign) == ["ada@example.com", "bob@example.com"]


def test_a_session_refused_after_renewal_fails_without_looping() -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET)
    campaign = fake.seed_campaign("Spring")
    fake.seed_contact("ada@example.com")
    fake.fail_next(401, "Session expired or invalid", times=2, path="/services/data/*")
    with fake.serve():
        [outcomes] = run(fake, [change("ada@example.com", campaign)])
    assert kinds(outcomes) == ["failed"]
    assert "refused even with a fresh token" in (outcomes[0].reason or "")
    assert len(fake.log.matching("POST", TOKEN_PATH)) == 2


def test_the_refresh_token_flow_sends_the_refresh_token() -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET, refresh_tokens={REFRESH})
    campaign = fake.seed_campaign("Spring")
    fake.seed_contact("ada@example.com")
    with fake.serve():
        [outcomes] = run(fake, [change("ada@example.com", campaign)], client_secret=None, refresh_token=REFRESH)
    assert kinds(outcomes) == ["done"]
    [token] = fake.log.matching("POST", TOKEN_PATH)
    assert b"grant_type=refresh_token" in token.body and b"client_secret" not in token.body


def test_refused_credentials_fail_with_a_reason_that_names_no_secret() -> None:
    fake = FakeSalesforce(CLIENT_ID, "the-real-secret-000")
    campaign = fake.seed_campaign("Spring")
    fake.seed_contact("ada@example.com")
    with fake.serve():
        [outcomes] = run(fake, [change("ada@example.com", campaign)])
    reason = outcomes[0].reason or ""
    assert kinds(outcomes) == ["failed"] and "invalid_client" in reason and "client credentials flow" in reason
    assert SECRET not in reason and not fake.log.matching(path="/services/data/*")


def test_the_daily_limit_becomes_a_retry_an_hour_later_and_sends_nothing_more() -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET, daily_limit=50)
    campaign = fake.seed_campaign("Spring")
    fake.seed_contact("ada@example.com")
    fake.used = 50
    with fake.serve():
        first, second = run(fake, [change("ada@example.com", campaign)], [change("ada@example.com", campaign)])
    assert first[0].kind == "retry" and 3500 <= (first[0].retry_after or 0) <= 3700, first
    assert second[0].kind == "retry"
    assert len(fake.log.matching(path="/services/data/*")) == 1  # the 403, then nothing


def test_a_short_org_limit_is_retried_and_done() -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET)
    campaign = fake.seed_campaign("Spring")
    fake.seed_contact("ada@example.com")
    fake.throttle_next(1.0, path="/services/data/*")  # 403 ConcurrentPerOrgLongTxn
    with fake.serve():
        [outcomes] = run(fake, [change("ada@example.com", campaign)])
    assert kinds(outcomes) == ["done"]
    assert [r.status for r in fake.requests].count(403) == 1
    assert fake.member_emails(campaign) == ["ada@example.com"]


def test_usage_at_the_reserve_stops_the_adapter_for_an_hour_on_its_own() -> None:
    """5 % reserve of 100 calls: the answer that shows 95 used is the last call for an hour."""
    fake = FakeSalesforce(CLIENT_ID, SECRET, daily_limit=100)
    campaign = fake.seed_campaign("Spring")
    fake.seed_contact("ada@example.com")
    fake.used = 94
    with fake.serve():
        first, second = run(fake, [change("ada@example.com", campaign)], [change("ada@example.com", campaign)])
    assert first[0].kind == "retry" and (first[0].retry_after or 0) >= 3500, first
    assert second[0].kind == "retry"
    assert fake.used == 95 and fake.log.counters["requests"] == 2  # the token and the query
    assert not [r for r in fake.requests if r.status == 403], "the org's limit was reached anyway"


def test_usage_in_the_slow_zone_paces_calls_at_the_rate_the_window_frees_them() -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET, daily_limit=1000)
    campaign = fake.seed_campaign("Spring")
    fake.seed_contact("ada@example.com")
    fake.used = 920  # 80 left: under twice the 50-call reserve
    with fake.serve():
        [outcomes] = run(fake, [change("ada@example.com", campaign)])
    # 86,400 s / 1,000 calls: one call every 86.4 s, far over the in-call budget.
    assert outcomes[0].kind == "retry" and 80 <= (outcomes[0].retry_after or 0) <= 87, outcomes
    assert fake.used == 921


def test_contact_then_lead_prefers_the_contact_and_skips_converted_leads() -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET)
    campaign = fake.seed_campaign("Spring")
    fake.seed_lead("both@example.com")
    contact = fake.seed_contact("Both@Example.com")
    fake.seed_lead("lead@example.com")
    fake.seed_lead("converted@example.com", converted=True)
    emails = ["both@example.com", "lead@example.com", "converted@example.com", "nobody@example.com"]
    with fake.serve():
        [outcomes] = run(fake, [change(e, campaign, key=e) for e in emails])
        [contacts_only] = run(fake, [change("lead@example.com", campaign, "remove")], match="contact")
    assert kinds(outcomes) == ["done", "done", "skipped", "skipped"]
    assert "Contact or unconverted Lead" in (outcomes[3].reason or "") and "nobody@" not in (outcomes[3].reason or "")
    assert [m.get("ContactId") for m in fake.members.values() if m.get("ContactId")] == [contact]
    assert kinds(contacts_only) == ["done"] and "lead@example.com" in fake.member_emails(campaign)


def test_emails_with_quotes_and_paged_answers_are_handled() -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET, page_size=2)
    campaign = fake.seed_campaign("Spring")
    emails = ["o'brien@example.com", "back\\slash@example.com"] + [f"p{i}@example.com" for i in range(5)]
    for email in emails:
        fake.seed_contact(email)
    with fake.serve():
        [added] = run(fake, [change(e, campaign, key=e, status="Responded") for e in emails])
        [removed] = run(fake, [change(e, campaign, "remove", key=e) for e in emails[:3]])
    assert kinds(added) == ["done"] * 7 and kinds(removed) == ["done"] * 3
    assert fake.member_emails(campaign) == sorted(emails[3:])
    assert {m["Status"] for m in fake.members.values()} == {"Responded"}
    assert fake.log.matching("GET", "/services/data/v62.0/query/*"), "paging was not exercised"


def test_a_remove_and_an_add_for_one_campaign_in_one_batch_leave_a_member() -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET)
    campaign = fake.seed_campaign("Spring")
    fake.seed_contact("ada@example.com")
    with fake.serve():
        run(fake, [change("ada@example.com", campaign)])
        [outcomes] = run(
            fake, [change("ada@example.com", campaign, "remove", key="1"), change("ada@example.com", campaign, key="2")]
        )
    assert kinds(outcomes) == ["done", "done"] and fake.member_emails(campaign) == ["ada@example.com"]


def test_a_status_the_campaign_lacks_fails_that_change_only() -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET)
    campaign = fake.seed_campaign("Spring")
    other = fake.seed_campaign("Autumn", statuses=("Invited",))
    fake.seed_contact("ada@example.com")
    with fake.serve():
        [outcomes] = run(
            fake,
            [change("ada@example.com", campaign, key="1"), change("ada@example.com", other, key="2", status="Sent")],
        )
    assert kinds(outcomes) == ["done", "failed"]
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in (outcomes[1].reason or "")


def test_check_online_names_missing_campaigns_statuses_and_permissions() -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET)
    campaign = fake.seed_campaign("Spring")
    missing = "701" + "Z" * 15
    fake.permissions["deletable"] = False
    destinations = [{"campaign": campaign, "status": "Sent"}, {"campaign": campaign, "status": "Attended"},
                    {"campaign": missing}]  # fmt: skip

    with fake.serve():
        problems = check_online(adapter_for(fake), destinations)
        refused = check_online(adapter_for(fake, client_secret="wrong-secret-0000"), destinations)
    assert problems == [
        "sf: the user may not delete CampaignMember records (profile or permission set)",
        f"sf: campaign {campaign} has no member status 'Attended'",
        f"sf: campaign {missing} not found in Salesforce (or not visible to the user)",
    ]
    assert len(refused) == 1 and "invalid_client" in refused[0] and "wrong-secret-0000" not in refused[0]
