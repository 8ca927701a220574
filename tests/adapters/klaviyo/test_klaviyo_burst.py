"""A 1,000-change burst through the real runner and SQLite store to Klaviyo, against its
fake with Klaviyo's limits on (10/s and 150/min on list calls).

1,000 changes a batch and 1,000 ids a call: ten lookups, one call per action, no 429.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from connector.adapters.klaviyo import KlaviyoAdapter, KlaviyoConfig
from connector.testing.fakes.klaviyo import FakeKlaviyo

from tests.adapters.crm_burst import CUSTOMERS, LEAVING, MISSING, email, expected_members, run_burst

KEY, LIST = "pk_burst_0123456789abcdef", "Y6nRLr"


def test_klaviyo_burst_is_ten_lookups_and_one_call_per_action(tmp_path: Path) -> None:
    fake = FakeKlaviyo(KEY, lists={LIST})  # Klaviyo's limits: 10/s and 150/min on list calls
    for i in range(CUSTOMERS):
        if i not in MISSING:
            pid = fake.seed_profile(email(i))
            if i in LEAVING:
                fake.lists[LIST].add(pid)

    def make(base_url: str) -> KlaviyoAdapter:
        return KlaviyoAdapter("crm", KlaviyoConfig(type="klaviyo", api_key=KEY, base_url=base_url))

    report = run_burst(tmp_path, fake, make, {"list": LIST})
    calls = Counter(f"{r.method} {r.path}" for r in fake.requests)
    print(f"\nklaviyo burst: {CUSTOMERS} changes, {len(fake.requests)} calls: {dict(calls)}")
    assert fake.log.counters["rate_limited"] == 0 and all(
        r.status is not None and r.status < 400 for r in fake.requests
    )
    assert calls["GET /api/profiles"] == CUSTOMERS // 100
    assert calls[f"POST /api/lists/{LIST}/relationships/profiles"] == 1
    assert calls[f"DELETE /api/lists/{LIST}/relationships/profiles"] == 1
    assert len(fake.requests) == CUSTOMERS // 100 + 2
    assert fake.member_emails(LIST) == expected_members()
    assert report["dead_letters"] == 0 and report["retrying"] == 0
    assert report["not_in_crm"] == len(MISSING) and report["applied"] == CUSTOMERS - len(MISSING)
