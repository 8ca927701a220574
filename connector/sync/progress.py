"""Backfill progress on stderr: a rich bar on a terminal, one plain line per page otherwise."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Protocol, TextIO


@dataclass
class Counts:
    groups: int = 0
    pages: int = 0
    customers: int = 0
    changes: int = 0
    work: int = 0

    def text(self) -> str:
        return (
            f"{self.groups} group(s), {self.pages} page(s), {self.customers} customer(s), "
            f"{self.changes} change(s), {self.work} operation(s)"
        )


class Progress(Protocol):
    def start(self, groups: int) -> None: ...
    def update(self, group: str, counts: Counts) -> None: ...
    def note(self, text: str) -> None: ...
    def close(self) -> None: ...


class Silent:
    """For serve's scheduled reconcile: progress goes nowhere (the run record says it all)."""

    def start(self, groups: int) -> None: ...
    def update(self, group: str, counts: Counts) -> None: ...
    def note(self, text: str) -> None: ...
    def close(self) -> None: ...


class Lines:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.total = 0

    def start(self, groups: int) -> None:
        self.total = groups
        print(f"backfill: {groups} group(s) to read", file=self.out, flush=True)

    def update(self, group: str, counts: Counts) -> None:
        done = f"{counts.groups}/{self.total} group(s) done"
        detail = f"{counts.pages} page(s), {counts.customers} customer(s), {counts.changes} change(s)"
        print(f"backfill: {group}: {done}, {detail}", file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(f"backfill: {text}", file=self.out, flush=True)

    def close(self) -> None: ...


class Bar:
    """rich's progress bar: groups done of all, with pages, customers and changes so far."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("[bold]backfill[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=Console(file=out),
        )  # fmt: skip
        self._task: Any = None

    def start(self, groups: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task("groups", total=groups, detail="")

    def update(self, group: str, counts: Counts) -> None:
        from rich.markup import escape

        detail = f"{counts.pages} pages, {counts.customers} customers, {counts.changes} changes"
        # A group key is Plain's free text: "vip[/b]" read as markup would raise and stop the run.
        self._bar.update(self._task, completed=counts.groups, description=escape(group), detail=detail)

    def note(self, text: str) -> None:
        # notes quote group keys and mapping names: print them as written, not as markup
        self._bar.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        self._bar.stop()


def for_terminal(out: TextIO = sys.stderr) -> Progress:
    return Bar(out) if out.isatty() else Lines(out)
