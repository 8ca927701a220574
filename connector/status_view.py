"""Plain-text rendering of ``status`` and ``dead-letters list`` for a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from connector.redact import mask_email
from connector.store.base import DeadLetter, RunInfo, StatusReport


def when(epoch: float | None) -> str:
    if not epoch:
        return "never"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def render_status(report: StatusReport) -> str:
    inbox = ", ".join(f"{k} {v}" for k, v in sorted(report.inbox.items())) or "none yet"
    lines = [f"events received: {inbox}", ""]
    if not report.targets:
        lines.append("targets: no work recorded yet")
    for name, t in sorted(report.targets.items()):
        health = "ok"
        if t.dead_letters:
            health = "has dead letters"
        elif t.retrying:
            health = "retrying"
        lines.append(f"target {name}: {health}")
        lines.append(
            f"  backlog {t.backlog} (due {t.due}, in flight {t.in_flight}, retrying {t.retrying},"
            f" oldest {t.oldest_due_seconds}s)"
        )
        lines.append(
            f"  applied {t.applied}, not in CRM {t.not_in_crm}, dead letters {t.dead_letters},"
            f" last applied {when(t.last_applied_at)}"
        )
        if t.last_error:
            lines.append(f"  last error: {t.last_error}")
    for kind, run in sorted(report.runs.items()):
        lines += ["", *_run_lines(kind, run)]
    if report.deleted_groups:
        lines += ["", "groups deleted in Plain (handled per mapping by on_group_deleted):"]
        for g in report.deleted_groups:
            lines.append(f"  {g['group_key'] or '?'} ({g['group_id']}, {g['name'] or 'no name'}) at {g['deleted_at']}")
    if report.unprocessable:
        lines += ["", f"unprocessable events (newest {len(report.unprocessable)}):"]
        for u in report.unprocessable:
            lines.append(f"  {u['event_id']} {u['event_type'] or '?'} at {when(u['received_at'])}: {u['reason']}")
    return "\n".join(lines)


def _run_lines(kind: str, run: RunInfo) -> list[str]:
    state = {"running": "running (or interrupted: the next run resumes it)", "done": "done",
             "failed": "failed (the next run resumes it)", "abandoned": "abandoned"}[run.status]  # fmt: skip
    ended = f", finished {when(run.finished_at)}" if run.finished_at else ""
    lines = [
        f"{kind}: last run #{run.id} {state}, started {when(run.started_at)}{ended}",
        f"  {run.groups} group(s), {run.pages} page(s), {run.customers} customer(s), {run.changes} change(s),"
        f" {run.work} operation(s) queued",
    ]
    if run.error:
        lines.append(f"  error: {run.error}")
    if run.next_at:
        lines.append(f"  next run {when(run.next_at)} (while serve runs)")
    return lines


def render_dead_letters(letters: Sequence[DeadLetter]) -> str:
    if not letters:
        return "no dead letters"
    lines = []
    for d in letters:
        lines.append(
            f"#{d.id} {when(d.failed_at)} target {d.target} {d.action} {d.customer_id}"
            f" <{mask_email(d.email)}> group {d.group_key or d.group_id} {d.dest}"
            f" after {d.attempts} attempt(s), event {d.event_id}"
        )
        lines.append(f"    {d.reason}")
    return "\n".join(lines)
