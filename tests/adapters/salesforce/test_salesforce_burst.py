"""A 1,000-change burst to one Salesforce campaign through the runner: SOQL per ~150 emails,
200-record collections, one token, no 403, and the campaign ends as the events say."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from connector.adapters.salesforce import SalesforceAdapter, SalesforceConfig
from connector.testing.fakes.salesforce import FakeSalesforce

from tests.adapters.crm_burst import CUSTOMERS, LEAVING, MISSING, email, expected_members, run_burst

CLIENT_ID = "3MVG9burst.client.id"
SECRET = "burst-client-secret-0123456789"


def test_a_thousand_changes_use_collections_of_200_and_never_meet_the_org_limit(tmp_path: Path) -> None:
    fake = FakeSalesforce(CLIENT_ID, SECRET, daily_limit=15_000)
    campaign = fake.seed_campaign("Enterprise")
    for i in range(CUSTOMERS):
        if i in MISSING:
            continue
        person = fake.seed_lead(email(i)) if i % 10 == 3 else fake.seed_contact(email(i))  # some are Leads
        if i in LEAVING:
            kind = "LeadId" if person.startswith("00Q") else "ContactId"
            fake.members[f"00v{i:015d}"] = {
                "Id": f"00v{i:015d}",
                "CampaignId": campaign,
                kind: person,
                "Status": "Sent",
            }

    def make(base_url: str) -> SalesforceAdapter:
        raw = {"type": "salesforce", "login_url": base_url, "client_id": CLIENT_ID, "client_secret": SECRET}
        return SalesforceAdapter("crm", SalesforceConfig.model_validate(raw))

    report = run_burst(tmp_path, fake, make, {"campaign": campaign})

    calls = Counter(f"{r.method} {r.path}" for r in fake.requests)
    per_100 = len(fake.requests) / CUSTOMERS * 100
    print(f"\nsalesforce burst: {CUSTOMERS} changes, {len(fake.requests)} calls ({per_100:.2f} per 100): {dict(calls)}")
    inserts = calls["POST /services/data/v62.0/composite/sobjects"]
    joiners = CUSTOMERS - len(LEAVING)
    # max_batch 400: three batches at least, each inserting in collections of up to 200.
    assert inserts <= math.ceil(joiners / 200) + 3
    assert calls["DELETE /services/data/v62.0/composite/sobjects"] <= 3
    assert calls["POST /services/oauth2/token"] == 1
    assert per_100 <= 4
    assert not [r for r in fake.requests if r.status in (401, 403, 429)]
    assert sorted(fake.member_emails(campaign)) == sorted(expected_members())
    assert report["dead_letters"] == 0 and report["retrying"] == 0
    assert report["not_in_crm"] == len(MISSING) and report["applied"] == CUSTOMERS - len(MISSING)
