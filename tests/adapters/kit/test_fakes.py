"""The fake-server base the vendor fakes build on: routes, log, limits, faults, scripts."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import httpx
import pytest
from connector.adapters.webhook import SIGNATURE_HEADER, sign
from connector.testing.fakes import FakeServer, Faults, WindowLimit, serve_app
from connector.testing.fakes.webhook import FakeWebhookReceiver
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route


class Echo(FakeServer):
    """A tiny vendor: echoes JSON, answers 429s in its own shape."""

    def routes(self) -> list[BaseRoute]:
        return [Route("/v1/echo", self.echo, methods=["GET", "POST"])]

    async def echo(self, request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"got": body.decode() or None})

    def throttle_response(self, retry_after: float) -> Response:
        reset = str(int(time.time() + retry_after) + 1)
        return JSONResponse({"type": "error.list"}, 429, headers={"X-RateLimit-Reset": reset})


def test_serves_routes_on_loopback_and_stops_cleanly() -> None:
    fake = Echo()
    with fake.serve() as base_url:
        assert base_url.startswith("http://127.0.0.1:") and fake.base_url == base_url
        response = httpx.post(f"{base_url}/v1/echo?a=1&b=two", json={"x": 1}, headers={"X-Key": "k"})
        assert response.json() == {"got": '{"x":1}'}
    assert fake.base_url is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/v1/echo", timeout=1)
    [seen] = fake.requests
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/echo", {"a": "1", "b": "two"})
    assert seen.headers["x-key"] == "k" and seen.json == {"x": 1} and seen.status == 200
    assert fake.log.counters["requests"] == 1


def test_window_limit_answers_the_vendors_429_and_counts_it() -> None:
    fake = Echo(rate_limit=WindowLimit(requests=3, per_seconds=1.0))
    with fake.serve() as url, httpx.Client(base_url=url) as client:
        statuses = [client.get("/v1/echo").status_code for _ in range(4)]
        limited = fake.requests[-1]
        time.sleep(1.05)
        assert client.get("/v1/echo").status_code == 200
    assert statuses == [200, 200, 200, 429]
    assert limited.cause == "rate_limited" and fake.log.counters["rate_limited"] == 1
    assert "x-ratelimit-reset" not in limited.headers  # request headers, not the answer
    assert fake.retry_not_before > limited.at


def test_concurrency_limit_rejects_the_extra_requests() -> None:
    fake = Echo(max_concurrency=2, faults=Faults(latency=0.6))
    with fake.serve() as url, concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(lambda _: httpx.get(f"{url}/v1/echo").status_code, range(4)))
    assert statuses == [200, 200, 429, 429]
    assert fake.concurrency is not None and fake.concurrency.peak == 2
    assert fake.log.counters["concurrency"] == 2


def test_random_faults_follow_their_rates_reproducibly() -> None:
    def run(seed: int) -> list[int]:
        fake = Echo(faults=Faults(error_rate=0.3, error_statuses=(500, 503)), seed=seed)
        with fake.serve() as url, httpx.Client(base_url=url) as client:
            return [client.get("/v1/echo").status_code for _ in range(200)]

    first = run(1)
    assert first == run(1)
    errors = [s for s in first if s != 200]
    assert 35 <= len(errors) <= 85 and set(errors) <= {500, 503}


def test_dropped_connection_is_a_protocol_error_for_the_client() -> None:
    fake = Echo(faults=Faults(drop_rate=1.0))
    with fake.serve() as url:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{url}/v1/echo")
        fake.faults = Faults()
        assert httpx.get(f"{url}/v1/echo").status_code == 200  # the server survived it
    assert [r.status for r in fake.requests] == [None, 200]
    assert fake.log.counters["dropped"] == 1


def test_latency_is_added() -> None:
    fake = Echo(faults=Faults(latency=0.2))
    with fake.serve() as url:
        started = time.monotonic()
        httpx.get(f"{url}/v1/echo")
    assert time.monotonic() - started >= 0.2


def test_scripts_answer_matching_requests_in_order_then_routes_resume() -> None:
    fake = Echo()
    fake.fail_next(502, "bad gateway", times=2, method="POST")
    fake.throttle_next(2.0, path="/v1/*")
    with fake.serve() as url, httpx.Client(base_url=url) as client:
        got = [client.get("/v1/echo"), client.post("/v1/echo"), client.post("/v1/echo"), client.post("/v1/echo")]
    assert [r.status_code for r in got] == [429, 502, 502, 200]
    assert got[1].json() == {"message": "bad gateway"}
    reset = int(got[0].headers["X-RateLimit-Reset"])
    assert reset >= fake.requests[0].at + 2.0
    assert [r.cause for r in fake.requests] == ["throttled", "fault", "fault", "route"]


def test_enqueue_takes_any_response_factory() -> None:
    fake = Echo()
    fake.enqueue(lambda: PlainTextResponse("teapot", 418), path="/v1/echo")
    with fake.serve() as url:
        assert httpx.get(f"{url}/v1/echo").status_code == 418
        assert httpx.get(f"{url}/v1/echo").status_code == 200


def test_serve_app_runs_any_asgi_app() -> None:
    async def hello(request: Request) -> Response:
        return PlainTextResponse("hi")

    with serve_app(Starlette(routes=[Route("/", hello)])) as url:
        assert httpx.get(url + "/").text == "hi"


def test_webhook_receiver_checks_signatures_and_keeps_membership() -> None:
    fake = FakeWebhookReceiver("receiver-secret")

    def post(change: dict[str, Any], secret: str = "receiver-secret") -> int:
        body = httpx.Request("POST", "/", json=change).content
        headers = {SIGNATURE_HEADER: sign(body, secret), "Content-Type": "application/json"}
        return httpx.post(fake.url, content=body, headers=headers).status_code

    with fake.serve():
        add = {"action": "add", "email": "a@x.io", "group_key": "vip"}
        assert post(add, secret="wrong-secret") == 401
        assert post(add) == 200 and post(add) == 200
        assert post({"action": "remove", "email": "b@x.io", "group_key": "vip"}) == 200
        assert post({"nope": 1}) == 400
    assert fake.bad_signatures == 1
    assert fake.members == {"vip": {"a@x.io"}}
    assert len(fake.deliveries) == 3
