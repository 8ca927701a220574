"""Intercom's JSON shapes, read and written by the ``intercom`` adapter (pure functions).

Search limits are Intercom's documented ones: at most 15 filters in one ``AND``/``OR``
group, and at most 2 levels of nesting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.adapters.change import Change
from connector.adapters.ratelimit import seconds

__all__ = [
    "SEARCH_EMAILS",
    "TAG_USERS",
    "Contact",
    "add_targets",
    "best_matches",
    "contact_from",
    "contacts_in",
    "email_key",
    "email_query",
    "error_text",
    "next_cursor",
    "reset_delay",
    "rounds_by_person",
    "tag_name_problems",
    "tag_packs",
    "tagged_emails",
]

#: documented: "a limit of max 15 filters for each AND or OR group"
SEARCH_EMAILS = 15
#: Intercom recommends tagging at most 50 users a call: larger ones can time out
TAG_USERS = 50


@dataclass(frozen=True, slots=True)
class Contact:
    id: str
    role: str
    external_id: str | None


def email_key(email: str) -> str:
    return email.strip().lower()


def contacts_in(body: Mapping[str, Any], email: str) -> tuple[Contact, ...]:
    """The search result's contacts that really have ``email`` (compared case-blind)."""
    found = []
    for item in body.get("data") or ():
        contact = contact_from(item)
        if contact and isinstance(item.get("email"), str) and email_key(item["email"]) == email_key(email):
            found.append(contact)
    return tuple(found)


def contact_from(item: Any) -> Contact | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        return None
    external = item.get("external_id")
    role = item["role"] if isinstance(item.get("role"), str) else "user"
    return Contact(item["id"], role, external if isinstance(external, str) and external else None)


def best_matches(contacts: Sequence[Contact], external_id: str | None) -> Sequence[Contact]:
    """Whom an add tags: the user with our external id, else all users, else all leads."""
    users = [c for c in contacts if c.role == "user"]
    same = [c for c in users if external_id and c.external_id == external_id]
    return same or users or contacts


def error_text(body: Mapping[str, Any] | None) -> str | None:
    """``{code}: {message}`` of the first error of Intercom's ``error.list``."""
    for item in (body or {}).get("errors") or ():
        message = item.get("message") if isinstance(item, dict) else item
        if isinstance(message, str) and message:
            code = item.get("code") if isinstance(item, dict) else None
            return f"{code}: {message}" if isinstance(code, str) and code not in message else message
    return None


def reset_delay(value: str, now: float) -> float | None:
    """Seconds until ``X-RateLimit-Reset``: epoch seconds (or milliseconds)."""
    stamp = seconds(value)
    if stamp is None:
        return None
    if stamp > 1e12:  # epoch milliseconds
        stamp /= 1000.0
    # Intercom sends epoch seconds; a small number can only mean "seconds from now".
    return max(0.0, stamp - now) if stamp > 1e9 else max(0.0, stamp)


def email_query(emails: Sequence[str]) -> dict[str, Any]:
    """A search for contacts with any of ``emails`` (at most :data:`SEARCH_EMAILS`)."""
    filters = [{"field": "email", "operator": "=", "value": e} for e in emails]
    return filters[0] if len(filters) == 1 else {"operator": "OR", "value": filters}


def next_cursor(body: Mapping[str, Any]) -> str | None:
    """``pages.next.starting_after`` of a search answer, when there is another page."""
    pages = body.get("pages")
    following = pages.get("next") if isinstance(pages, dict) else None
    cursor = following.get("starting_after") if isinstance(following, dict) else None
    return cursor if isinstance(cursor, str) and cursor else None


def tag_name_problems(destinations: Sequence[Mapping[str, Any]]) -> list[str]:
    """Mapped names that Intercom would treat as one tag (its names are case-insensitive)."""
    spellings: dict[str, set[str]] = {}
    for options in destinations:
        tag = options.get("tag")
        if isinstance(tag, str):
            spellings.setdefault(tag.casefold(), set()).add(tag)
    return [
        f"tags {', '.join(repr(n) for n in sorted(names))} are one tag in Intercom "
        "(names are case-insensitive): use one spelling"
        for names in spellings.values()
        if len(names) > 1
    ]


def rounds_by_person(changes: Sequence[Change], indices: Sequence[int]) -> list[list[int]]:
    """A person's n-th change (in batch order) in the n-th round: one change each per round."""
    seen: dict[str, int] = {}
    rounds: list[list[int]] = []
    for index in indices:
        person = email_key(str(changes[index].email))
        turn = seen[person] = seen.get(person, -1) + 1
        if turn == len(rounds):
            rounds.append([])
        rounds[turn].append(index)
    return rounds


def add_targets(change: Change, found: Mapping[str, tuple[Contact, ...]]) -> Sequence[Contact]:
    """The contacts an add tags (:func:`best_matches` of the email's contacts)."""
    return best_matches(found.get(email_key(str(change.email)), ()), change.external_id)


def tag_packs(
    changes: Sequence[Change], indices: list[int], found: Mapping[str, tuple[Contact, ...]]
) -> list[list[int]]:
    """Adds split so no call names more than :data:`TAG_USERS` contacts."""
    packs: list[list[int]] = [[]]
    size = 0
    for i in indices:
        count = len(add_targets(changes[i], found))
        if packs[-1] and size + count > TAG_USERS:
            packs.append([])
            size = 0
        packs[-1].append(i)
        size += count
    return [pack for pack in packs if pack]


async def tagged_emails(call: Callable[..., Awaitable[dict[str, Any]]], tag_name: str) -> AsyncIterator[str]:
    """Emails of the contacts carrying ``tag_name`` (found with ``GET /tags``), by search pages."""
    listed = await call("GET", "/tags")
    name = tag_name.casefold()
    tag = next(
        (t for t in listed.get("data") or () if isinstance(t, dict) and str(t.get("name", "")).casefold() == name),
        None,
    )
    query: dict[str, Any] = {"query": {"field": "tag_id", "operator": "=", "value": str((tag or {}).get("id"))},
                             "pagination": {"per_page": 150}}  # fmt: skip
    while tag is not None:
        page = await call("POST", "/contacts/search", json=query)
        for contact in page.get("data") or ():
            if isinstance(contact, dict) and isinstance(contact.get("email"), str):
                yield contact["email"]
        after = ((page.get("pages") or {}).get("next") or {}).get("starting_after")
        if not after:
            return
        query["pagination"] = {"per_page": 150, "starting_after": after}
