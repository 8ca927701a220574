"""What ``history`` prints: per (group, target) desired, applied, and every attempt kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from connector.redact import mask_email, mask_emails_in
from connector.status_view import when
from connector.store.base import CustomerHistory


def _state(value: bool | None) -> str:
    return "unknown" if value is None else ("member" if value else "not a member")


def history_json(found: Sequence[CustomerHistory]) -> list[dict[str, Any]]:
    """The full records: the operator asked for this customer, so the email is shown whole."""
    return [asdict(c) for c in found]


def render_history(query: str, found: Sequence[CustomerHistory]) -> str:
    if not found:
        return f"no customer with Plain id, email or external id {mask_emails_in(query)!r}"
    lines: list[str] = []
    for c in found:
        lines.append(f"customer {c.customer_id} <{mask_email(c.email)}> external id {c.external_id or '-'}")
        if not c.pairs:
            lines.append("  no mapped group has this customer")
        for p in c.pairs:
            applied = _state(p.applied) + (f" ({p.applied_note.replace('_', ' ')})" if p.applied_note else "")
            lines.append(f"  group {p.group_key or p.group_id} -> {p.target} {p.dest}")
            lines.append(f"    desired {_state(p.desired)}; last applied {applied} at {when(p.applied_at)}")
            if p.pending:
                lines.append(f"    waiting: {p.pending_attempts} attempt(s) so far: {p.pending_error or '-'}")
            if p.dead_letters:
                lines.append(f"    {p.dead_letters} dead letter(s)")
            for a in p.attempts:
                tries = f" attempt {a.attempt}" if a.attempt else ""
                said = f": {mask_emails_in(a.reason)}" if a.reason else ""
                lines.append(f"    {when(a.at)} {a.action} {a.kind}{tries} (event {a.event_id}){said}")
        for group, member in sorted(c.memberships.items()):
            lines.append(f"  group {group}: {_state(member)} (no destination)")
    return "\n".join(lines)
