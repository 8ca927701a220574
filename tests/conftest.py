"""Shared fixtures: a config folder on disk, and the real `serve` process on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from connector.testing.postgres import ENV, scratch_schema, server_url
from connector.testing.simulator import Delivery

SECRET = "test-signing-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_setup(
    folder: Path,
    targets: dict[str, Any] | None = None,
    mappings: list[dict[str, Any]] | None = None,
    port: int = 0,
    **extra: Any,
) -> Path:
    """Write config.yaml and mappings/groups.yaml into ``folder``; return the config path."""
    targets = targets if targets is not None else {"audit": {"type": "jsonl", "path": "data/sync-log.jsonl"}}
    if mappings is None:
        mappings = [{"group": "enterprise", "to": [{"target": "audit"}]}]
    (folder / "mappings").mkdir(parents=True, exist_ok=True)
    (folder / "mappings" / "groups.yaml").write_text(yaml.safe_dump({"mappings": mappings}))
    config: dict[str, Any] = {
        "plain": {"signing_secret": SECRET},
        "server": {"host": "127.0.0.1", "port": port},
        "store": {"url": "sqlite:///data/connector.db"},
        "mappings": "mappings/",
        "targets": targets,
        "delivery": {"poll_interval_seconds": 0.1, "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.5},
    }
    config.update(extra)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connector", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


class ServeProcess:
    """`python -m connector serve` as a child process, as an operator runs it."""

    def __init__(self, config: Path, port: int, env: dict[str, str] | None = None, preexec_fn: Any = None) -> None:
        self.preexec_fn = preexec_fn
        self.config = config
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = config.parent / f"serve-{port}.log"

    def start(self) -> ServeProcess:
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "serve", "--config", str(self.config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            preexec_fn=self.preexec_fn,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"serve did not come up:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()


@pytest.fixture
def serve_factory() -> Iterator[Any]:
    started: list[ServeProcess] = []

    def make(config: Path, port: int, env: dict[str, str] | None = None) -> ServeProcess:
        proc = ServeProcess(config, port, env).start()
        started.append(proc)
        return proc

    yield make
    for proc in started:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait()


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail with the last one."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    assert value, "condition not met in time"
    return value


@dataclass
class Posted:
    """What became of a posted stream: the service's ``status`` per accepted delivery, and
    the deliveries not accepted when posting was stopped."""

    statuses: Counter[str] = field(default_factory=Counter)
    pending: list[Delivery] = field(default_factory=list)


def post_stream(
    url: str,
    deliveries: Iterable[Delivery],
    *,
    deadline: float | None = None,
    stop: threading.Event | None = None,
) -> Posted:
    """POST each delivery, in order, to the webhook ``url`` the way Plain delivers.

    By default every delivery must be answered 200. With a ``deadline`` (monotonic time)
    a delivery answered 503 or not answered at all is delivered again until accepted (as
    Plain does, without its long waits); any other answer fails. With ``stop``, posting
    retries likewise until the event is set, and what is left is returned as ``pending``.
    """
    posted = Posted(pending=list(deliveries))
    retrying = deadline is not None or stop is not None
    with httpx.Client(timeout=5) as client:
        while posted.pending and not (stop is not None and stop.is_set()):
            delivery = posted.pending[0]
            try:
                response: httpx.Response | None = client.post(url, content=delivery.body, headers=delivery.headers)
            except httpx.HTTPError:
                if not retrying:
                    raise
                response = None  # the server stopped taking requests: Plain will deliver again
            if response is not None and response.status_code == 200:
                posted.statuses[response.json()["status"]] += 1
                posted.pending.pop(0)
                continue
            assert retrying, response.text if response is not None else "no answer"
            if deadline is not None:
                assert response is None or response.status_code == 503, response.text
                if time.monotonic() > deadline:
                    raise AssertionError(f"{delivery.event_id} never accepted")
                time.sleep(0.05)
    return posted


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long", action="store_true", default=False,
        help="run the long variants of the reliability tests (more events, more kills)",
    )  # fmt: skip


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--long"))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A store URL on its own fresh schema of the test server (dropped afterwards).

    Skips where no server is configured; CI sets the variable, so there it runs.
    """
    url = server_url()
    if url is None:
        pytest.skip(f"{ENV} is not set (no PostgreSQL server to test on)")
    with scratch_schema(url) as scoped:
        yield scoped
