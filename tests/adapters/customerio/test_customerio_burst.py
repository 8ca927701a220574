"""A 1,000-change burst through the real runner and SQLite store to Customer.io, against
its fake with a 10/s window on.

1,000 changes a batch and 1,000 ids a call: one call per action, no 429.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from connector.adapters.customerio import CustomerIoAdapter, CustomerIoConfig
from connector.testing.fakes import WindowLimit
from connector.testing.fakes.customerio import FakeCustomerIo

from tests.adapters.crm_burst import CUSTOMERS, LEAVING, email, run_burst

SITE, CIO_KEY, SEGMENT = "site-burst", "cio-track-key-burst-0123", 42


def test_customerio_burst_is_one_call_per_action(tmp_path: Path) -> None:
    fake = FakeCustomerIo(SITE, CIO_KEY, segments={SEGMENT}, rate_limit=WindowLimit(10, 1.0))
    for i in range(CUSTOMERS):
        person = fake.seed_person(id=f"u-{i}", email=email(i))  # the burst's external ids
        if i in LEAVING:
            fake.segments[SEGMENT].add(person.cio_id)

    def make(base_url: str) -> CustomerIoAdapter:
        raw = {"type": "customerio", "site_id": SITE, "api_key": CIO_KEY, "base_url": base_url}
        return CustomerIoAdapter("crm", CustomerIoConfig.model_validate(raw))

    report = run_burst(tmp_path, fake, make, {"segment": str(SEGMENT)})
    calls = Counter(f"{r.method} {r.path}" for r in fake.requests)
    print(f"\ncustomerio burst: {CUSTOMERS} changes, {len(fake.requests)} calls: {dict(calls)}")
    assert fake.log.counters["rate_limited"] == 0 and all(
        r.status is not None and r.status < 400 for r in fake.requests
    )
    assert calls == {f"POST /api/v1/segments/{SEGMENT}/add_customers": 1,
                     f"POST /api/v1/segments/{SEGMENT}/remove_customers": 1}  # fmt: skip
    assert fake.member_emails(SEGMENT) == {email(i) for i in range(CUSTOMERS) if i not in LEAVING}
    assert report["dead_letters"] == 0 and report["retrying"] == 0 and report["applied"] == CUSTOMERS
