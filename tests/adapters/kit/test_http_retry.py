"""The shared HTTP layer's retry policy, against respx on virtual time."""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import time
from typing import Any

import httpx
import pytest
import respx
from connector.adapters.http import CrmError

from tests.adapters.kit.probe import BASE, ProbeAdapter, outcome_of, reply, vnow, with_probe


def calls_at(times: list[float], *responses: Any) -> Any:
    """A respx side effect answering ``responses`` in turn and noting virtual call times."""
    queue = list(responses)

    def answer(request: httpx.Request) -> httpx.Response:
        times.append(vnow())
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return answer


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
def test_transient_status_is_retried_until_it_works(status: int) -> None:
    with respx.mock(base_url=BASE) as mock:
        route = mock.get("/things").mock(side_effect=[reply(status), reply(status), reply(200)])
        result = with_probe(outcome_of)
    assert isinstance(result, httpx.Response) and result.status_code == 200
    assert route.call_count == 3


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
)
def test_network_errors_are_retried(error: Exception) -> None:
    with respx.mock(base_url=BASE) as mock:
        route = mock.get("/things").mock(side_effect=[error, reply(200)])
        result = with_probe(outcome_of)
    assert isinstance(result, httpx.Response)
    assert route.call_count == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_not_retried_and_fail(status: int) -> None:
    with respx.mock(base_url=BASE) as mock:
        route = mock.get("/things").mock(return_value=reply(status, json={"message": "nope"}))
        error = with_probe(outcome_of)
    assert route.call_count == 1
    assert isinstance(error, CrmError) and not error.transient and error.status == status
    assert error.outcome.kind == "failed"


def test_accepted_status_is_returned_not_raised() -> None:
    async def body(adapter: ProbeAdapter) -> httpx.Response:
        return await adapter.request("GET", "/things", accept={404})

    with respx.mock(base_url=BASE) as mock:
        mock.get("/things").mock(return_value=reply(404))
        assert with_probe(body).status_code == 404


def test_attempts_are_bounded_and_end_in_a_retry_outcome() -> None:
    times: list[float] = []
    with respx.mock(base_url=BASE) as mock:
        route = mock.get("/things").mock(side_effect=calls_at(times, reply(503, text="down")))
        error = with_probe(outcome_of)
    assert route.call_count == ProbeAdapter.retry_attempts == 4
    assert isinstance(error, CrmError) and error.transient and error.retry_after is None
    outcome = error.outcome
    assert outcome.kind == "retry" and outcome.retry_after is None
    assert "after 4 attempts" in (outcome.reason or "")
    waits = [b - a for a, b in itertools.pairwise(times)]
    # Exponential with equal jitter: 0.25-0.5, 0.5-1, 1-2 seconds.
    for n, wait in enumerate(waits):
        cap = ProbeAdapter.backoff_seconds * 2**n
        assert cap / 2 <= wait <= cap + 1e-6


def test_retry_after_seconds_is_honoured_exactly() -> None:
    times: list[float] = []
    with respx.mock(base_url=BASE) as mock:
        mock.get("/things").mock(side_effect=calls_at(times, reply(429, headers={"Retry-After": "3"}), reply(200)))
        result = with_probe(outcome_of)
    assert isinstance(result, httpx.Response)
    assert times[1] - times[0] == pytest.approx(3.0, abs=1e-3)


def test_retry_after_http_date_is_honoured() -> None:
    times: list[float] = []
    when = email.utils.formatdate(time.time() + 4, usegmt=True)  # whole seconds: 3-4 s away
    with respx.mock(base_url=BASE) as mock:
        mock.get("/things").mock(side_effect=calls_at(times, reply(503, headers={"Retry-After": when}), reply(200)))
        with_probe(outcome_of)
    assert 3.0 - 0.1 <= times[1] - times[0] <= 4.0


def test_intercom_reset_epoch_is_honoured() -> None:
    times: list[float] = []
    reset = str(int(time.time()) + 5)
    with respx.mock(base_url=BASE) as mock:
        mock.get("/things").mock(
            side_effect=calls_at(times, reply(429, headers={"X-RateLimit-Reset": reset}), reply(200))
        )
        with_probe(outcome_of, vendor="intercom")
    assert 4.0 - 0.1 <= times[1] - times[0] <= 5.0


@pytest.mark.parametrize(
    "vendor, response, delay",
    [
        (None, reply(429, headers={"Retry-After": "120"}), 120.0),
        ("intercom", reply(429, headers={"X-RateLimit-Reset": "{epoch+600}"}), 600.0),
        (None, reply(429, headers={"Retry-After": "{date+900}"}), 900.0),
        ("hubspot", reply(429, json={"status": "error", "policyName": "DAILY", "errorType": "RATE_LIMIT"}), 3600.0),
        (
            "salesforce",
            reply(403, json=[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
            3600.0,
        ),
    ],
    ids=["retry-after", "x-ratelimit-reset", "http-date", "hubspot-daily", "salesforce-daily"],
)
def test_delay_beyond_the_budget_becomes_retry_outcome_at_once(
    vendor: str | None, response: httpx.Response, delay: float
) -> None:
    now = time.time()
    for name, value in list(response.headers.items()):
        if value == "{epoch+600}":
            response.headers[name] = str(int(now) + 600)
        elif value == "{date+900}":
            response.headers[name] = email.utils.formatdate(now + 900, usegmt=True)
    with respx.mock(base_url=BASE) as mock:
        route = mock.get("/things").mock(return_value=response)
        error = with_probe(outcome_of, vendor=vendor)
    assert route.call_count == 1, "a long vendor delay is the runner's to wait"
    assert isinstance(error, CrmError) and error.transient
    outcome = error.outcome
    assert outcome.kind == "retry" and outcome.retry_after == pytest.approx(delay, abs=2)


def test_hubspot_rolling_window_waits_one_interval() -> None:
    """HubSpot's 429 promises no Retry-After: wait the window its headers name."""
    limited = reply(
        429,
        json={
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
        },
        headers={
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": "0",
        },
    )
    with respx.mock(base_url=BASE) as mock:
        mock.get("/things").mock(return_value=limited)
        error = with_probe(outcome_of, vendor="hubspot")  # 10 s is the whole default budget
    assert isinstance(error, CrmError) and error.retry_after == 10.0
    assert "ten_secondly_rolling" in error.reason

    times: list[float] = []
    with respx.mock(base_url=BASE) as mock:
        mock.get("/things").mock(side_effect=calls_at(times, limited, reply(200)))
        original = ProbeAdapter.retry_budget_seconds
        ProbeAdapter.retry_budget_seconds = 30.0
        try:
            result = with_probe(outcome_of, vendor="hubspot")
        finally:
            ProbeAdapter.retry_budget_seconds = original
    assert isinstance(result, httpx.Response)
    assert times[1] - times[0] == pytest.approx(10.0, abs=1e-3)


def test_salesforce_concurrent_limit_is_retried_with_backoff() -> None:
    busy = reply(
        403,
        json=[
            {
                "message": "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
                "errorCode": "REQUEST_LIMIT_EXCEEDED",
            }
        ],
    )
    with respx.mock(base_url=BASE) as mock:
        route = mock.get("/things").mock(side_effect=[busy, reply(200)])
        assert isinstance(with_probe(outcome_of, vendor="salesforce"), httpx.Response)
    assert route.call_count == 2


def test_a_429_pauses_every_caller_on_the_target() -> None:
    """Caller B starts after A was told to wait 5 s: B waits too, before calling."""
    times: list[float] = []

    async def body(adapter: ProbeAdapter) -> None:
        async def later() -> Any:
            await asyncio.sleep(1)
            return await outcome_of(adapter, path="/other")

        await asyncio.gather(outcome_of(adapter), later())

    with respx.mock(base_url=BASE) as mock:
        mock.get("/things").mock(side_effect=calls_at(times, reply(429, headers={"Retry-After": "5"}), reply(200)))
        other = mock.get("/other").mock(side_effect=calls_at(times, reply(200)))
        with_probe(body)
    assert other.call_count == 1
    assert times[0] == 0.0
    assert all(t >= 5.0 - 1e-3 for t in times[1:]), times


def test_a_target_paused_past_the_budget_fails_fast_without_calling() -> None:
    async def body(adapter: ProbeAdapter) -> Any:
        adapter.limiter.pause_for(300)
        return await outcome_of(adapter)

    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        route = mock.get("/things").mock(return_value=reply(200))
        error = with_probe(body)
    assert route.call_count == 0
    assert isinstance(error, CrmError) and error.transient
    assert error.retry_after == pytest.approx(300, abs=1)


def test_budget_in_seconds_ends_retries_before_attempts_run_out() -> None:
    times: list[float] = []
    with respx.mock(base_url=BASE) as mock:
        mock.get("/things").mock(side_effect=calls_at(times, reply(503, headers={"Retry-After": "6"})))
        error = with_probe(outcome_of)
    # 6 s fits the 10 s budget once; a second 6 s wait would not.
    assert len(times) == 2
    assert isinstance(error, CrmError) and error.retry_after == 6.0
