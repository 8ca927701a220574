"""``GET /status/customers?q=``: one customer's desired, applied and attempted state."""

from __future__ import annotations

import json
from collections.abc import Sequence

from connector.redact import mask_email
from connector.store.base import CustomerHistory
from connector.store.history_records import PairHistory
from connector.web.html import answer, cells, esc, page, search_form, section, table, when

_KIND_CSS = {"done": "ok", "skipped": "warn", "retry": "warn", "dead": "bad", "replayed": "muted", "discarded": "bad"}


def _state(value: bool | None) -> str:
    return "unknown" if value is None else ("member" if value else "not a member")


def _pair(p: PairHistory) -> str:
    options = json.loads(p.dest) if p.dest.startswith("{") else p.dest
    dest = ", ".join(f"{k}={v}" for k, v in options.items()) if isinstance(options, dict) else str(options)
    applied = _state(p.applied)
    if p.applied_note:
        applied += f" ({p.applied_note.replace('_', ' ')})"
    status = "in step" if p.desired == p.applied and not p.pending else "pending" if p.pending else "differs"
    if p.dead_letters:
        status = f"{p.dead_letters} dead letter(s)"
    facts = table(
        ("desired", "last applied", "applied at", "status", "waiting"),
        [cells(esc(_state(p.desired)), esc(applied), when(p.applied_at), esc(status),
               esc(f"{p.pending_attempts} attempt(s): {p.pending_error or ''}") if p.pending else "")],
        "",
    )  # fmt: skip
    attempts = table(
        ("when", "action", "outcome", "attempt", "CRM's answer", "event"),
        [
            cells(
                when(a.at),
                esc(a.action),
                f'<span class="{_KIND_CSS.get(a.kind, "")}">{esc(a.kind)}</span>',
                esc(a.attempt or ""),
                answer(a.reason),
                f"<code>{esc(a.event_id)}</code>",
            )
            for a in p.attempts
        ],
        "No attempt kept (none yet, or older than retention.history_days).",
    )
    title = f"{p.group_key or p.group_id} → {p.target}" + (f" ({dest})" if dest else "")
    return f'<article class="pair"><h3>{esc(title)}</h3>{facts}<h4>Attempts</h4>{attempts}</article>'


def _customer(c: CustomerHistory) -> str:
    who = (
        f"<p>Plain id <code>{esc(c.customer_id)}</code> · email {esc(mask_email(c.email) or 'unknown')}"
        f" · external id {esc(c.external_id or '-')}</p>"
    )
    pairs = "".join(_pair(p) for p in c.pairs) or '<p class="muted">No mapped group has this customer.</p>'
    if c.memberships:
        unmapped = ", ".join(f"{esc(g)}: {esc(_state(m))}" for g, m in sorted(c.memberships.items()))
        pairs += f'<p class="muted">Groups without a destination: {unmapped}</p>'
    return section(f"Customer {c.customer_id}", who + pairs, f"customer-{c.customer_id}")


def render_customers(query: str, found: Sequence[CustomerHistory]) -> str:
    body = section("Find a customer", search_form(query), "search")
    if query and not found:
        body += section(
            "No match", f"<p>No customer has the Plain id, email or external id {answer(query)}.</p>", "none"
        )
    body += "".join(_customer(c) for c in found)
    return page("Customer history", body)
