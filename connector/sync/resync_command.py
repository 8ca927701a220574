"""``resync [--target T] [--group KEY] [--prune] [--verify] [--dry-run] [--json]`` as a command."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from connector.config import Config
from connector.mappings import load_mappings
from connector.sync.commands import EXIT_FAILED, EXIT_OK, guarded, opened_store
from connector.sync.render import print_plan
from connector.sync.resync import UnknownGroup, resync, verify


def run_resync(config: Config, args: argparse.Namespace) -> int:
    mappings = load_mappings(config)
    if args.target is not None and args.target not in config.targets:
        known = ", ".join(sorted(config.targets)) or "none configured"
        print(f"error: no target {args.target!r} in {config.path} (configured: {known})", file=sys.stderr)
        return EXIT_FAILED
    targets = [args.target] if args.target else sorted(config.targets)
    write = not args.dry_run

    async def work() -> int:
        async with opened_store(config, dry_run=args.dry_run) as store:
            try:
                done = await resync(store, mappings, targets, args.group, prune=args.prune, write=write)
                if args.verify:
                    checked = await verify(store, config, mappings, targets, args.group, write=write)
                    done.operations += checked.operations
                    done.notes += checked.notes
            except UnknownGroup as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_FAILED
        for note in done.notes:
            print(f"note: {note}", file=sys.stderr)
        if args.dry_run:
            print_plan(None, done.operations, args.json, sys.stdout)
            if not args.json:
                print("dry run: nothing was written")
            return EXIT_OK
        actions = Counter(op.action for op in done.operations)
        if not done.operations:
            print("resync: every target already has (or is about to get) the desired state: nothing queued")
        else:
            print(
                f"resync: {len(done.operations)} operation(s) queued ({actions['add']} add, {actions['remove']} "
                "remove); a running serve delivers them, or the next serve will"
            )
        return EXIT_OK

    return guarded(config, work, "resync")
