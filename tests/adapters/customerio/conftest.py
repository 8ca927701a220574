"""Customer.io fixtures: FakeCustomerIo on loopback, the adapter, its changes."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from connector.adapters.base import Change, Outcome
from connector.adapters.customerio import CustomerIoAdapter, CustomerIoConfig
from connector.testing.fakes.customerio import FakeCustomerIo

from tests.adapters.conftest import make_change, run_started

SITE, KEY = "site-respx", "cio-track-key-respx-0123"
US, EU = "https://track.customer.io", "https://track-eu.customer.io"
AUTH = "Basic " + base64.b64encode(f"{SITE}:{KEY}".encode()).decode()
SEGMENT = 7


def make(**config: Any) -> CustomerIoAdapter:
    raw = {"type": "customerio", "site_id": SITE, "api_key": KEY, **config}
    return CustomerIoAdapter("cio", CustomerIoConfig.model_validate(raw))


def apply(changes: Sequence[Change], **config: Any) -> list[Outcome]:
    """One batch through a started adapter, on a virtual clock (respx tests' waits cost nothing)."""
    return run_started(make(**config), lambda adapter: adapter.apply(changes), virtual=True)


def change(email: str | None, action: str = "add", external_id: str | None = None, segment: str = "12") -> Change:
    return make_change(key=str(email), action=action, customer_id="c", email=email, group_id="cg", group_key="g",
                       event_id="pEv", options={"segment": segment}, external_id=external_id)  # fmt: skip


@pytest.fixture
def fake() -> Iterator[FakeCustomerIo]:
    server = FakeCustomerIo(SITE, KEY, segments={SEGMENT})
    with server.serve():
        yield server
