"""Salesforce's API limits for the Salesforce adapter: the org's rolling daily count.

Salesforce has no per-second limit. Every answer carries ``Sforce-Limit-Info:
api-usage=used/limit`` (the org's rolling 24-hour count); once it is spent, calls answer
403 ``REQUEST_LIMIT_EXCEEDED`` rather than 429. See docs/targets/salesforce.md.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import httpx

from connector.adapters import json_body

__all__ = ["QUOTA_RECHECK_SECONDS", "USAGE_WINDOW_SECONDS", "Pause", "error_codes", "limit_exceeded", "usage_pause"]

#: the org's API request count is a rolling 24 hours
USAGE_WINDOW_SECONDS = 86_400.0
#: how often to look again once the reserve is reached or the org's limit was hit
QUOTA_RECHECK_SECONDS = 3600.0

_USAGE = re.compile(r"(?:^|[\s;,])api-usage=(\d+)/(\d+)")


class Pause(NamedTuple):
    seconds: float
    at_reserve: bool  # the reserve is reached (worth a warning), not merely near
    used: int
    limit: int


def error_codes(response: httpx.Response) -> set[str]:
    """The ``errorCode`` values of an API error answer (``[{"errorCode", "message"}]``)."""
    body = json_body(response)
    return {str(e.get("errorCode")) for e in body if isinstance(e, dict)} if isinstance(body, list) else set()


def limit_exceeded(response: httpx.Response) -> bool:
    """Is this the 403 an org's spent limit answers with?"""
    return response.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in error_codes(response)


def usage_pause(response: httpx.Response, reserve_percent: float) -> Pause | None:
    """How long to pause the target for, read from ``Sforce-Limit-Info``.

    None while the org has more than twice its reserve left. Within that margin, the pace
    the rolling window frees calls at; at the reserve, a pause until the next recheck.
    """
    found = _USAGE.search(response.headers.get("sforce-limit-info", ""))
    if not found:
        return None
    used, limit = int(found.group(1)), int(found.group(2))
    reserve = limit * reserve_percent / 100
    left = limit - used
    if left <= reserve:
        return Pause(QUOTA_RECHECK_SECONDS, True, used, limit)
    if left <= 2 * reserve:
        return Pause(USAGE_WINDOW_SECONDS / limit, False, used, limit)
    return None
