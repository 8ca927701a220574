"""``GET /status``: targets, dead letters with Replay / Discard, recent events, mappings, store."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.mappings import MappingSet
from connector.redact import mask_email
from connector.store.base import DeadLetter, RecentEvent, RunInfo, StatusReport, TargetStatus
from connector.web.html import answer, cells, duration, esc, page, section, table, when

#: oldest pending change older than this makes a target "behind"
BEHIND_SECONDS = 300.0


@dataclass(frozen=True)
class MappingView:
    current: MappingSet
    loaded_at: float | None
    last_error: str | None
    last_refused: str | None
    refused_at: float | None


def health(t: TargetStatus) -> tuple[str, str]:
    """(css class, word) for a target line."""
    if t.dead_letters:
        return "bad", "dead letters"
    if t.oldest_due_seconds > BEHIND_SECONDS:
        return "warn", "behind"
    if t.retrying:
        return "warn", "retrying"
    return "ok", "ok"


def _targets(report: StatusReport, names: Sequence[str]) -> str:
    rows = []
    for name in sorted(set(names) | set(report.targets)):
        t = report.targets.get(name) or TargetStatus()
        css, word = health(t)
        rows.append(
            cells(
                f"<strong>{esc(name)}</strong>",
                f'<span class="{css}">{esc(word)}</span>',
                esc(t.backlog),
                esc(duration(t.oldest_due_seconds)),
                esc(t.retrying),
                esc(t.in_flight),
                esc(t.not_in_crm),
                f'<span class="{"bad" if t.dead_letters else ""}">{esc(t.dead_letters)}</span>',
                esc(t.applied),
                when(t.last_applied_at),
                answer(t.last_error),
            )
        )
    headers = ("target", "health", "backlog", "oldest pending", "retrying", "in flight", "not in CRM",
               "dead letters", "applied", "last applied", "last error")  # fmt: skip
    return table(headers, rows, "No targets configured and no work recorded yet.", "targets")


def _form(action: str, csrf: str, fields: Mapping[str, object], label: str, css: str = "") -> str:
    hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in fields.items())
    klass = f' class="{css}"' if css else ""
    return (
        f'<form class="inline" method="post" action="{esc(action)}">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">{hidden}'
        f'<button type="submit"{klass}>{esc(label)}</button></form>'
    )


def _dead_letters(letters: Sequence[DeadLetter], csrf: str) -> str:
    rows = []
    for d in letters:
        buttons = (
            _form("/status/dead-letters/replay", csrf, {"id": d.id}, "Replay")
            + " "
            + _form("/status/dead-letters/discard", csrf, {"id": d.id}, "Discard", "danger")
        )
        rows.append(
            f'<tr data-letter="{esc(d.id)}"><td>{esc(d.target)}</td><td>{esc(d.group_key or d.group_id)}</td>'
            f"<td>{esc(mask_email(d.email) or d.customer_id)}</td><td>{esc(d.action)}</td><td>{esc(d.attempts)}</td>"
            f'<td>{answer(d.reason)}</td><td>{when(d.failed_at)}</td><td style="white-space:nowrap">{buttons}</td></tr>'
        )
    body = table(
        ("target", "group", "email", "action", "attempts", "CRM's answer", "failed", ""),
        rows, "No dead letters.", "dead-letters-table",
    )  # fmt: skip
    targets = sorted({d.target for d in letters})
    if targets:
        body += "<p>" + " ".join(
            _form("/status/dead-letters/replay", csrf, {"target": t}, f"Replay all for {t}") for t in targets
        ) + "</p>"  # fmt: skip
        body += '<p class="muted">Replay re-drives each change against the desired state as it is now.</p>'
    return body


def _events(events: Sequence[RecentEvent]) -> str:
    rows = []
    for e in events:
        outcome = ", ".join(f"{esc(t)}: {esc(k)}" for t, k in sorted(e.outcomes.items()))
        if not outcome:
            outcome = '<span class="muted">no destination</span>' if e.status == "processed" else ""
        rows.append(
            cells(
                f"<code>{esc(e.event_id)}</code>",
                esc(e.event_type),
                when(e.received_at),
                esc(e.status),
                outcome or answer(e.reason),
            )
        )
    return table(("event", "type", "received", "handling", "per target"), rows, "No events received yet.", "events")


def _mappings(view: MappingView) -> str:
    files = "".join(f"<li><code>{esc(f)}</code></li>" for f in view.current.files) or "<li>none</li>"
    body = f"<p>Loaded {when(view.loaded_at)} from:</p><ul>{files}</ul>"
    if view.last_error:
        body += f'<p class="bad">The last edit was refused, the mappings above stay live: <code>{esc(view.last_error)}</code></p>'
    elif view.last_refused:
        body += (f'<p class="muted">Last refused reload ({when(view.refused_at)}): '
                 f"<code>{esc(view.last_refused)}</code></p>")  # fmt: skip
    rows = []
    for group in view.current.groups():
        for d in view.current.by_group[group]:
            options = json.dumps(dict(d.options), sort_keys=True, ensure_ascii=False)
            rows.append(
                cells(esc(group), esc(d.target), f"<code>{esc(options)}</code>", f"<code>{esc(d.source)}</code>")
            )
    return body + table(("group", "target", "options", "written at"), rows, "No group is mapped.", "mappings")


def _storage(report: StatusReport) -> str:
    size = report.storage.get("size_bytes")
    oldest: Mapping[str, Any] = report.storage.get("oldest") or {}
    shown = f"{size / 1_048_576:.1f} MiB" if isinstance(size, int | float) else "unknown"
    inbox = ", ".join(f"{esc(k)} {esc(v)}" for k, v in sorted(report.inbox.items())) or "none yet"
    rows = [cells(esc(kind.replace("_", " ")), when(at) if at else "none kept") for kind, at in sorted(oldest.items())]
    return f"<p>Size {esc(shown)}. Events kept: {inbox}.</p>" + table(("oldest row kept", "at"), rows, "")


def _runs(runs: Mapping[str, RunInfo]) -> str:
    rows = [
        cells(
            esc(r.kind),
            f"#{r.id} {esc(r.status)}",
            when(r.started_at),
            when(r.finished_at),
            esc(f"{r.groups} group(s), {r.customers} customer(s)"),
            esc(r.changes),
            when(r.next_at) if r.next_at else "",
            answer(r.error),
        )
        for _, r in sorted(runs.items())
    ]
    headings = ("kind", "run", "started", "finished", "read", "changes", "next run", "error")
    return table(headings, rows, "No backfill or reconcile run yet.", "runs")


def render_status(
    report: StatusReport, letters: Sequence[DeadLetter], events: Sequence[RecentEvent], mappings: MappingView,
    targets: Sequence[str], csrf: str, notice: str | None = None,
) -> str:  # fmt: skip
    unprocessable = [
        cells(f"<code>{esc(u['event_id'])}</code>", esc(u["event_type"]), when(u["received_at"]), answer(u["reason"]))
        for u in report.unprocessable
    ]
    body = (
        section("Targets", _targets(report, targets), "targets-section")
        + section(
            f"Dead letters ({sum(t.dead_letters for t in report.targets.values())})",
            _dead_letters(letters, csrf),
            "dead-letters",
        )
        + section("Recent events", _events(events), "recent-events")
        + section("Mappings", _mappings(mappings), "mappings-section")
        + section("Backfill and reconcile", _runs(report.runs), "runs-section")
        + section(
            "Unprocessable events",
            table(("event", "type", "received", "reason"), unprocessable, "None kept."),
            "unprocessable",
        )
        + section("Store", _storage(report), "store")
    )
    return page("Status", body, notice)
