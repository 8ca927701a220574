"""A Plain workspace on the fake Plain API, and a config whose store and jsonl audit the tests read."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from connector.testing.fakes.plain_api import FakePlainApi

from tests.conftest import SECRET, run_cli, write_setup

KEY = "backfill-cli-key"


@pytest.fixture
def fake() -> FakePlainApi:
    return FakePlainApi(KEY)


@pytest.fixture
def api_url(fake: FakePlainApi) -> Iterator[str]:
    with fake.serve() as url:
        yield url


def setup(folder: Path, api_url: str, mappings: list[dict[str, Any]] | None = None, **extra: Any) -> Path:
    # serve starts without PLAIN_API_KEY in its environment; the CLI runs are given one
    plain = {"signing_secret": SECRET, "api_key": f"${{PLAIN_API_KEY:-{KEY}}}", "api_url": api_url}
    plain.update(extra.pop("plain", {}))
    return write_setup(folder, mappings=mappings, plain=plain, **extra)


def cli(*args: str, key: str = KEY, timeout: float = 60) -> Any:
    return run_cli(*args, env={"PLAIN_API_KEY": key}, timeout=timeout)


def store_rows(config: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(config.parent / "data" / "connector.db") as conn:
        return conn.execute(sql, params).fetchall()


def members(config: Path, group_id: str) -> set[str]:
    return {r[0] for r in store_rows(config, "SELECT customer_id FROM memberships WHERE group_id = ? AND member = 1",
                                     group_id)}  # fmt: skip


def queued(config: Path, target: str = "audit") -> set[tuple[str, str, bool]]:
    rows = store_rows(config, "SELECT customer_id, group_id, desired FROM outbox WHERE target = ?", target)
    return {(r[0], r[1], bool(r[2])) for r in rows}


def audit_lines(config: Path) -> list[dict[str, Any]]:
    path = config.parent / "data" / "sync-log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
