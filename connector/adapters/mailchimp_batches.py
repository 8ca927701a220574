"""Mailchimp helpers: how one batch of changes becomes static-segment calls (pure functions),
and the one listing of an audience's tag segments that both apply and ``members()`` use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from connector.adapters import Change, Ledger
from connector.adapters.http import json_object

#: documented: the largest page of segments (count)
SEGMENT_PAGE = 1000
SEGMENT_FIELDS = "segments.id,segments.name,total_items"

Request = Callable[..., Awaitable[httpx.Response]]


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


async def list_segments(request: Request, audience: str) -> dict[str, int] | None:
    """Every static segment (tag) of the audience by tag key, page by page; None: no such audience.

    One page holds at most 1,000: an audience with more tags than that has the rest on later
    pages, and a tag looked for only on the first would be taken for missing.
    """
    path = f"/3.0/lists/{audience}/segments"
    found: dict[str, int] = {}
    offset = 0
    while True:
        params = {"type": "static", "count": SEGMENT_PAGE, "offset": offset, "fields": SEGMENT_FIELDS}
        page = await request("GET", path, params=params, accept={404})
        if page.status_code == 404:
            return None
        body = json_object(page) or {}
        segments = [s for s in body.get("segments") or () if isinstance(s, dict)]
        for segment in segments:
            if isinstance(segment.get("name"), str) and isinstance(segment.get("id"), int):
                found.setdefault(segment["name"].casefold(), segment["id"])
        offset += len(segments)
        total = body.get("total_items")
        if not segments or not isinstance(total, int) or offset >= total:
            return found
