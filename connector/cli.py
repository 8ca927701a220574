"""Command line: ``plain-crm-sync <command> --config FILE`` (README: commands)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from connector.config import Config, YamlError, load_config
from connector.store import StoreUnavailable, StoreURLError

if TYPE_CHECKING:
    from connector.store import Store

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop where installed: the receive path's throughput depends on it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _load(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def cmd_serve(args: argparse.Namespace) -> int:
    from connector.logs import setup_logging
    from connector.service import Service

    config = _load(args)
    setup_logging(args.log_json or config.logging.json_format, config.logging.level, config.secrets())

    async def main() -> None:
        await Service(config).run()

    _run(main())
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from connector.checks import check_online, summary
    from connector.mappings import load_mappings

    config = _load(args)
    mappings = load_mappings(config)
    print(summary(config, mappings))
    from connector.lifecycle_view import stale_key_warnings

    for warning in _run(stale_key_warnings(config, mappings)):
        print(f"warning: {warning}", file=sys.stderr)
    if not args.online:
        return EXIT_OK
    problems = _run(check_online(config, mappings))
    for target, problem in problems:
        print(f"{config.path}: target {target!r}: {problem}", file=sys.stderr)
    return EXIT_INVALID if problems else EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from connector.mappings import load_mappings
    from connector.plain.changes import UnprocessableEvent, parse_event
    from connector.plan import render_plan

    config = _load(args)
    mappings = load_mappings(config)
    try:
        body = Path(args.event).read_bytes()
        event = parse_event(body)
    except UnprocessableEvent as exc:
        print(f"{args.event}: not an event we understand: {exc.reason}", file=sys.stderr)
        return EXIT_INVALID
    except OSError as exc:
        print(f"{args.event}: {exc.strerror}", file=sys.stderr)
        return EXIT_INVALID
    from connector.lifecycle_view import plan_lines

    print(render_plan(event, mappings, plan_lines(event, body, config, mappings)))
    return EXIT_OK


def _with_store(args: argparse.Namespace, use: Callable[[Store], Awaitable[int]]) -> int:
    """Run ``use`` on the configured store, which must exist: these commands read state, not make it."""
    from connector.store import missing_store, open_store

    config = _load(args)
    missing = missing_store(config.store_url, config.base_dir)
    if missing is not None:  # opening would create an empty file, hiding a wrong path in the config
        raise StoreUnavailable(f"store {missing} does not exist; run serve or backfill first")

    async def main() -> int:
        store = open_store(config.store_url, config.base_dir)
        await store.open()
        try:
            return await use(store)
        finally:
            await store.close()

    return _run(main())


def cmd_status(args: argparse.Namespace) -> int:
    from connector.status_view import render_status

    async def use(store: Store) -> int:
        report = await store.status()
        print(json.dumps(asdict(report), indent=2) if args.json else render_status(report))
        return EXIT_OK

    return _with_store(args, use)


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from connector.status_view import render_dead_letters

    async def use(store: Store) -> int:
        if args.action == "list":
            letters = await store.dead_letters(args.target, args.limit)
            print(json.dumps([asdict(d) for d in letters], indent=2) if args.json else render_dead_letters(letters))
            return EXIT_OK
        ids = args.id or None
        if ids is None and args.target is None and not args.all:
            print("replay what? give --id N (repeatable), --target NAME or --all", file=sys.stderr)
            return EXIT_USAGE
        count = await store.replay_dead_letters(ids, args.target)
        print(f"re-queued {count} change(s)")
        return EXIT_OK

    return _with_store(args, use)


def cmd_history(args: argparse.Namespace) -> int:
    from connector.history_view import history_json, render_history

    query = args.customer or args.email

    async def use(store: Store) -> int:
        found = await store.customer_history(query)
        print(json.dumps(history_json(found), indent=2) if args.json else render_history(query, found))
        return EXIT_OK if found else EXIT_INVALID

    return _with_store(args, use)


def cmd_reprocess(args: argparse.Namespace) -> int:
    """Parse kept unprocessable events again (after an upgrade) and apply those now understood."""
    from connector.mappings import load_mappings
    from connector.reprocess import reprocess_kept

    mappings = load_mappings(_load(args))

    async def use(store: Store) -> int:
        async for line in reprocess_kept(store, mappings):
            print(line)
        return EXIT_OK

    return _with_store(args, use)


def cmd_send(args: argparse.Namespace) -> int:
    """Sign an event file with the configured secret and POST it, as Plain would."""
    import httpx

    from connector.plain.send import post_signed

    config = _load(args)
    try:
        event = json.loads(Path(args.event).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{args.event}: cannot read a JSON event: {exc}", file=sys.stderr)
        return EXIT_INVALID
    url = args.url or f"http://{config.server.host}:{config.server.port}/webhooks/plain"
    try:
        response = post_signed(url, event, config.plain.signing_secret.get_secret_value())
    except httpx.HTTPError as exc:
        print(f"cannot reach {url}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{response.status_code} {response.text}")
    return EXIT_OK if response.is_success else EXIT_INVALID


def cmd_migrate_store(args: argparse.Namespace) -> int:
    """Copy all state from one store URL to another (SQLite <-> PostgreSQL)."""
    from connector.store.migrate import DestinationNotEmpty, migrate_store

    try:
        copied = migrate_store(args.source, args.destination, force=args.force)
    except DestinationNotEmpty as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(", ".join(f"{table}: {n}" for table, n in copied.rows.items()))
    return EXIT_OK


def _add_migrate_store(sub: Any) -> None:
    p = sub.add_parser("migrate-store", help="copy all state between stores (SQLite <-> PostgreSQL)")
    p.add_argument("--from", dest="source", required=True, metavar="URL", help="store URL to copy from")
    p.add_argument("--to", dest="destination", required=True, metavar="URL", help="store URL to copy into")
    p.add_argument("--force", action="store_true", help="replace whatever the destination holds")
    p.set_defaults(func=cmd_migrate_store)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plain-crm-sync", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--config", required=True, help="path to the config YAML")
        p.set_defaults(func=func)
        return p

    command("serve", cmd_serve, "run the receiver and the delivery workers").add_argument(
        "--log-json", action="store_true", help="JSON log lines"
    )
    command("check", cmd_check, "validate config and mappings").add_argument(
        "--online", action="store_true", help="also ask each CRM whether token, lists and tags work"
    )
    command("plan", cmd_plan, "print what an event would do; calls nothing").add_argument("event")
    command("status", cmd_status, "backlog, per-target health, dead letters").add_argument(
        "--json", action="store_true"
    )
    dl = command("dead-letters", cmd_dead_letters, "list or replay permanent failures")
    dl.add_argument("action", choices=["list", "replay"])
    dl.add_argument("--target")
    dl.add_argument("--id", type=int, action="append", help="dead letter id (repeatable)")
    dl.add_argument("--all", action="store_true", help="replay every dead letter")
    dl.add_argument("--limit", type=int, default=100)
    dl.add_argument("--json", action="store_true")
    history = command("history", cmd_history, "one customer's desired and applied state and every attempt kept")
    who = history.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", help="Plain customer id (or external id)")
    who.add_argument("--email")
    history.add_argument("--json", action="store_true")
    command("reprocess", cmd_reprocess, "parse kept unprocessable events again and apply them")
    send = command("send", cmd_send, "sign an event JSON file and POST it to the running service")
    send.add_argument("event")
    send.add_argument("--url", help="default: the configured server address")
    _add_plain_commands(sub)
    _add_sync_commands(sub)
    _add_migrate_store(sub)
    return parser


def _add_plain_commands(sub: Any) -> None:
    """``plain register|unregister|targets``: the logic is in :mod:`connector.plain.register`."""

    def cmd_plain(args: argparse.Namespace) -> int:
        from connector.plain.register import run

        return run(_load(args), args.action, getattr(args, "url", None))

    plain = sub.add_parser("plain", help="manage the service's webhook target in Plain").add_subparsers(
        dest="action", required=True
    )
    for action, help_text in (
        ("register", "create or update the webhook target for --url"),
        ("unregister", "delete the webhook target(s) with --url"),
        ("targets", "list the workspace's webhook targets"),
    ):
        p = plain.add_parser(action, help=help_text)
        p.add_argument("--config", required=True, help="path to the config YAML")
        if action != "targets":
            p.add_argument(
                "--url", required=True, help="the service's public webhook URL, e.g. https://host/webhooks/plain"
            )
        p.set_defaults(func=cmd_plain)


def _add_sync_commands(sub: Any) -> None:
    """``backfill`` and ``resync``: the logic is in :mod:`connector.sync`."""

    def cmd_backfill(args: argparse.Namespace) -> int:
        from connector.sync.commands import run_backfill

        return run_backfill(_load(args), args.group, args.dry_run, args.json)

    def cmd_resync(args: argparse.Namespace) -> int:
        from connector.sync.resync_command import run_resync

        return run_resync(_load(args), args)

    common = {"--dry-run": "print what would change; write nothing", "--json": "with --dry-run: JSON lines"}
    bf = sub.add_parser("backfill", help="read mapped groups' members from Plain's API into desired state")
    bf.add_argument("--group", action="append", help="group key or id to read (repeatable; default: every mapped)")
    rs = sub.add_parser("resync", help="bring targets to the known desired state (after a mapping edit)")
    rs.add_argument("--target", help="only this target")
    rs.add_argument("--group", help="only this group (key or id)")
    rs.add_argument("--prune", action="store_true", help="also remove what no mapping names any more")
    rs.add_argument("--verify", action="store_true", help="read what each CRM holds and correct drift")
    for parser, func in ((bf, cmd_backfill), (rs, cmd_resync)):
        parser.add_argument("--config", required=True, help="path to the config YAML")
        for flag, text in common.items():
            parser.add_argument(flag, action="store_true", help=text)
        parser.set_defaults(func=func)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if sys.stdout.isatty():  # names and CRM answers are Plain's and the CRMs' text: no escape codes
        from connector.text import PrintableStream

        sys.stdout = PrintableStream(sys.stdout)
    try:
        return args.func(args)
    except (YamlError, StoreURLError, StoreUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return EXIT_OK
