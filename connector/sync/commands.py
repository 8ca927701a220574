"""``backfill`` and ``resync`` as commands: messages, output and exit status; the logic is elsewhere."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from connector.config import Config
from connector.mappings import MappingSet, load_mappings
from connector.plain.api import PlainApi
from connector.plain.errors import PlainApiError, PlainAuthError, PlainUsageError
from connector.store import Store, missing_store, open_empty_store, open_store
from connector.sync import progress as progress_view
from connector.sync.backfill import backfill
from connector.sync.render import print_plan

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
T = TypeVar("T")


@asynccontextmanager
async def opened_store(config: Config, *, dry_run: bool = False) -> AsyncIterator[Store]:
    """The configured store; for a dry run where none exists yet, an empty one in memory.

    Opening a SQLite store creates its file: a dry run must leave no trace, yet on a fresh
    install it should still show what the first real run would do.
    """
    missing = missing_store(config.store_url, config.base_dir) if dry_run else None
    if missing is not None:
        print(f"note: store {missing} does not exist yet: read as empty, and not created", file=sys.stderr)
    store = open_empty_store() if missing is not None else open_store(config.store_url, config.base_dir)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def api_key(config: Config) -> str | None:
    key = config.plain.api_key.get_secret_value() if config.plain.api_key is not None else ""
    if not key:
        print(f"error: {config.path}: plain.api_key is not set (e.g. api_key: ${{PLAIN_API_KEY}})", file=sys.stderr)
        return None
    return key


def guarded(config: Config, work: Callable[[], Awaitable[int]], what: str) -> int:
    """Run ``work``; turn Plain's failures and Ctrl-C into a message and an exit status."""
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except PlainAuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except PlainUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except PlainApiError as exc:
        print(f"error: cannot read from Plain's API at {config.plain.api_url}: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{what} interrupted: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED


def run_backfill(config: Config, groups: Sequence[str] | None, dry_run: bool, as_json: bool) -> int:
    key = api_key(config)
    if key is None:
        return EXIT_FAILED
    mappings = load_mappings(config)

    async def work() -> int:
        async with opened_store(config, dry_run=dry_run) as store, PlainApi(key, config.plain.api_url) as api:
            return await _backfill(store, api, mappings, groups or None, dry_run, as_json)

    return guarded(config, work, "backfill")


async def _backfill(
    store: Store, api: PlainApi, mappings: MappingSet, groups: Sequence[str] | None, dry_run: bool, as_json: bool
) -> int:
    progress = progress_view.for_terminal(sys.stderr)
    result = await backfill(store, api, mappings, groups, write=not dry_run, progress=progress)
    if dry_run:
        print_plan(result.plan.changes, result.plan.operations, as_json, sys.stdout)
        if not as_json:
            print(f"dry run: {result.counts.text()} read; nothing was written")
        return EXIT_OK
    run = result.run
    assert run is not None
    totals = progress_view.Counts(run.groups, run.pages, run.customers, run.changes, run.work)
    resumed = f" (resumed run {run.id})" if result.resumed else ""
    print(f"backfill done{resumed}: {totals.text()} queued; a running serve delivers them, or the next serve will")
    return EXIT_OK
