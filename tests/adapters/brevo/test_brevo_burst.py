"""A 1,000-change burst to one Brevo list through the runner: 150-email list calls, no 429
under Brevo's 10 requests per second, and the list ends as the events say."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from connector.adapters.brevo import BrevoAdapter, BrevoConfig
from connector.testing.fakes.brevo import FakeBrevo

from tests.adapters.crm_burst import CUSTOMERS, LEAVING, MISSING, email, expected_members, run_burst

KEY = "xkeysib-burst-0123456789abcdef-AbCd"
LIST = 12


def test_a_thousand_changes_cost_a_dozen_list_calls_and_no_429(tmp_path: Path) -> None:
    fake = FakeBrevo(KEY, lists={LIST: "Enterprise"})  # 10 requests in any second
    for i in range(CUSTOMERS):
        if i not in MISSING:
            fake.seed_contact(email(i), lists=(LIST,) if i in LEAVING else ())

    def make(base_url: str) -> BrevoAdapter:
        return BrevoAdapter("crm", BrevoConfig.model_validate({"type": "brevo", "api_key": KEY, "base_url": base_url}))

    report = run_burst(tmp_path, fake, make, {"list": LIST})

    calls = Counter(f"{r.method} {'/v3/contacts/{email}' if '@' in r.path else r.path}" for r in fake.requests)
    adds = len(fake.log.matching("POST", f"/v3/contacts/lists/{LIST}/contacts/add"))
    removes = len(fake.log.matching("POST", f"/v3/contacts/lists/{LIST}/contacts/remove"))
    lookups = len(fake.log.matching("GET", "/v3/contacts/*"))
    print(f"\nbrevo burst: {CUSTOMERS} changes, {len(fake.requests)} calls: {dict(calls)}")
    joiners = CUSTOMERS - len(LEAVING)
    # max_batch 600: at most two batches, each splitting its adds and removes by 150.
    assert adds <= math.ceil(joiners / 150) + 1 and removes <= 2
    assert lookups == len(MISSING), "only adds Brevo listed under failure are looked up"
    assert fake.log.counters["rate_limited"] == 0 and all(r.status in (200, 201, 400, 404) for r in fake.requests)
    assert fake.members(LIST) == expected_members()
    assert report["dead_letters"] == 0 and report["retrying"] == 0
    assert report["not_in_crm"] == len(MISSING) and report["applied"] == CUSTOMERS - len(MISSING)
