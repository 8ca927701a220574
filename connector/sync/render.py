"""What backfill and resync print: membership changes and CRM operations, as a table or JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TextIO

from connector.store.base import Operation
from connector.store.sync_records import MembershipMove


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = [list(r) for r in rows]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in [list(header), *rows]]


def _dest(dest: str) -> str:
    options = json.loads(dest)
    return ", ".join(f"{k}={v}" for k, v in options.items()) or "-"


def change_rows(changes: Sequence[MembershipMove]) -> list[tuple[str, str, str, str]]:
    return [
        ("join" if c.joined else "leave", c.group_key or c.group_id, c.customer_id, c.email or "-") for c in changes
    ]


def operation_rows(operations: Sequence[Operation]) -> list[tuple[str, str, str, str, str]]:
    return [
        (o.target, o.action, o.email or o.customer_id, o.group_key or o.group_id, _dest(o.dest)) for o in operations
    ]


def print_changes(changes: Sequence[MembershipMove], out: TextIO) -> None:
    print(f"membership changes ({len(changes)}):", file=out)
    if changes:
        for line in _table(("change", "group", "customer", "email"), change_rows(changes)):
            print("  " + line, file=out)


def print_operations(operations: Sequence[Operation], out: TextIO) -> None:
    print(f"CRM operations ({len(operations)}):", file=out)
    if operations:
        for line in _table(("target", "action", "contact", "group", "destination"), operation_rows(operations)):
            print("  " + line, file=out)


def change_json(change: MembershipMove) -> str:
    return json.dumps(
        {"type": "change", "change": "join" if change.joined else "leave", "group_id": change.group_id,
         "group_key": change.group_key, "customer_id": change.customer_id, "email": change.email},
        ensure_ascii=False,
    )  # fmt: skip


def operation_json(op: Operation) -> str:
    return json.dumps(
        {"type": "operation", "target": op.target, "action": op.action, "customer_id": op.customer_id,
         "email": op.email, "group_id": op.group_id, "group_key": op.group_key, "options": json.loads(op.dest)},
        ensure_ascii=False,
    )  # fmt: skip


def print_plan(
    changes: Sequence[MembershipMove] | None, operations: Sequence[Operation], as_json: bool, out: TextIO
) -> None:
    """A dry run's findings: membership changes (None: nothing was read) then the operations."""
    if as_json:
        for line in [*map(change_json, changes or ()), *map(operation_json, operations)]:
            print(line, file=out)
        return
    if changes is not None:
        print_changes(changes, out)
    print_operations(operations, out)
