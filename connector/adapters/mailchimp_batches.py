"""Mailchimp batch helpers: how one batch of changes becomes static-segment calls (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connector.adapters import Change, Ledger


def email(change: Change) -> str:
    # Mailchimp matches addresses case-insensitively and answers in its own spelling.
    return str(change.email).strip().lower()


def tag_key(change: Change) -> str:
    return str(change.options["tag"]).casefold()


def rounds(changes: Sequence[Change], indices: list[int]) -> list[list[int]]:
    """One tag's changes split so each member is in a call once, in event order.

    A member's first change (by event time) goes in round 0, its second in round 1...:
    one call cannot say "add, then remove" for one address, and two groups can map to
    the same tag.
    """
    rounds: list[list[int]] = []
    seen: dict[str, int] = {}
    for index in sorted(indices, key=lambda i: changes[i].event_time or ""):
        member = email(changes[index])
        turn = seen[member] = seen.get(member, -1) + 1
        if turn == len(rounds):
            rounds.append([])
        rounds[turn].append(index)
    return rounds


def chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def kind(batch: Ledger, index: int) -> str | None:
    outcome = batch.outcome(index)
    return outcome.kind if outcome else None


def error_emails(body: dict[str, Any] | None) -> set[str]:
    """The addresses a segment call's ``errors`` name, normalised."""
    named: set[str] = set()
    for error in (body or {}).get("errors") or ():
        if isinstance(error, dict):
            named.update(str(e).strip().lower() for e in error.get("email_addresses") or ())
    return named
