"""HubSpot's JSON shapes, read and written by the ``hubspot`` adapter (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from connector.adapters.ratelimit import DAILY_LIMIT_DELAY, seconds

__all__ = ["CONTACT_OBJECT_TYPE", "WRITABLE", "error_text", "ids_by_email", "list_problem", "norm", "policy_delay",
           "properties", "required_scopes"]  # fmt: skip

CONTACT_OBJECT_TYPE = "0-1"
#: only these lists take records from the API; DYNAMIC lists are filled by HubSpot
WRITABLE = ("MANUAL", "SNAPSHOT")


def norm(email: str | None) -> str:
    # HubSpot stores emails lower-cased and matches them case-insensitively.
    return (email or "").strip().lower()


def error_text(body: Mapping[str, Any] | None) -> str | None:
    message, category = (body or {}).get("message"), (body or {}).get("category")
    if not isinstance(message, str) or not message:
        return None
    return f"{category}: {message}" if isinstance(category, str) and category not in message else message


def policy_delay(body: Mapping[str, Any] | None, headers: httpx.Headers) -> float | None:
    policy = (body or {}).get("policyName")
    if not isinstance(policy, str):
        return None
    if policy == "DAILY":
        return DAILY_LIMIT_DELAY
    if policy == "SECONDLY":
        return 1.0
    # TEN_SECONDLY_ROLLING (and any other rolling window): wait one whole window, the
    # only delay that guarantees it has emptied; HubSpot promises no Retry-After.
    interval = seconds(headers.get("x-hubspot-ratelimit-interval-milliseconds", ""))
    return interval / 1000.0 if interval else 10.0


def ids_by_email(results: Any, asked: Sequence[str]) -> dict[str, str]:
    """Map result objects back to the emails asked for, by their ``email`` property."""
    wanted = set(asked)
    found: dict[str, str] = {}
    for item in results or ():
        if not isinstance(item, dict) or "id" not in item:
            continue
        email = norm((item.get("properties") or {}).get("email"))
        if email in wanted:
            found[email] = str(item["id"])
    return found


def properties(email: str, full_name: str | None) -> dict[str, str]:
    first, _, last = (full_name or "").strip().partition(" ")
    names = {"firstname": first, "lastname": last.strip()}
    return {"email": email, **{k: v for k, v in names.items() if v}}


def list_problem(info: Any, label: str, message: str) -> str | None:
    if not isinstance(info, dict):
        return f"{label} not found in HubSpot: {message}"
    if info.get("objectTypeId") != CONTACT_OBJECT_TYPE:
        return f"{label} holds objects of type {info.get('objectTypeId')}, not contacts ({CONTACT_OBJECT_TYPE})"
    kind = info.get("processingType")
    if kind not in WRITABLE:
        return f"{label} is a {kind} list, which HubSpot fills from its filters; map a MANUAL or SNAPSHOT list"
    return None if "listId" in info else f"{label}: HubSpot's answer carries no listId"


def required_scopes(body: Mapping[str, Any]) -> list[str]:
    scopes: dict[str, None] = {}
    for item in body.get("errors") or ():
        context = item.get("context") if isinstance(item, dict) else None
        for key in ("requiredGranularScopes", "requiredScopes", "requiredAllScopes"):
            for scope in (context or {}).get(key) or ():
                scopes[str(scope)] = None
    return list(scopes)
