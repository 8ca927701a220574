"""Request checks of the fake Mailchimp: what the real API refuses, as pure functions."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

STATUSES = {"subscribed", "unsubscribed", "cleaned", "pending", "transactional"}


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def is_tag(tag: Any) -> bool:
    return (
        isinstance(tag, dict)
        and isinstance(tag.get("name"), str)
        and bool(tag["name"])
        and tag.get("status") in ("active", "inactive")
    )


def is_email_list(emails: Any) -> bool:
    return isinstance(emails, list) and len(emails) <= 500 and all(isinstance(e, str) for e in emails)


def new_member_problem(email: Any, status: Any, member_hash: str, reject: set[str]) -> str | None:
    """Why Mailchimp would refuse to create this member; None if it would not."""
    if not isinstance(email, str) or "@" not in email:
        return "The resource submitted could not be validated. email_address: required for a new member."
    if status not in STATUSES:
        return "The resource submitted could not be validated. status_if_new: required for a new member."
    if subscriber_hash(email) != member_hash:
        return f'The email address "{email}" does not match the subscriber hash.'
    if email in reject:
        return f"{email} looks fake or invalid, please enter a real email address."
    return None


def paging(query: Mapping[str, str]) -> tuple[int, int] | str:
    """``(count, offset)`` of a list call, or the 400 detail Mailchimp gives for bad ones."""
    try:
        count, offset = int(query.get("count", "10")), int(query.get("offset", "0"))
    except ValueError:
        return "count and offset must be integers."
    if not 0 < count <= 1000 or offset < 0:
        return "count must be between 1 and 1000."
    return count, offset
