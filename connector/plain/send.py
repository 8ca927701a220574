"""Sending an event the way Plain does: the signed body, its headers and a fresh attempt time.

The ``send`` command uses this to replay an event file against a running service, and the
test kit (:mod:`connector.testing.plain`) re-exports it, so the CLI needs no test code.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from connector.plain.changes import load_json
from connector.plain.signature import sign

__all__ = ["plain_time", "post_signed", "signed_request", "with_fresh_attempt"]


def plain_time(value: datetime | str) -> str:
    """Format as Plain does (JavaScript ``toISOString``: UTC, milliseconds, ``Z``).

    Strings pass through untouched so tests can send offsets or odd precisions.
    """
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("naive datetime: give a timezone, Plain always sends UTC")
    u = value.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"


def signed_request(event: dict[str, Any] | bytes, secret: str) -> tuple[bytes, dict[str, str]]:
    """The body bytes and the headers Plain would send with them.

    Accepts raw bytes too (malformed-body tests); headers whose values cannot be read
    from the body are left out rather than invented.
    """
    if isinstance(event, bytes):
        body = event
        try:
            parsed = load_json(body)
        except ValueError:
            parsed = None
    else:
        body = _dumps(event)
        parsed = event
    data = parsed if isinstance(parsed, dict) else {}
    raw_meta = data.get("webhookMetadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    headers = {"Content-Type": "application/json", "Plain-Request-Signature": sign(body, secret)}
    for header, value in (
        ("Plain-Event-Id", data.get("id")),
        ("Plain-Event-Type", data.get("type")),
        ("Plain-Workspace-Id", data.get("workspaceId")),
        ("Plain-Webhook-Target-Id", meta.get("webhookTargetId")),
        ("Plain-Webhook-Target-Version", meta.get("webhookTargetVersion")),
        ("Plain-Webhook-Delivery-Attempt-Number", meta.get("webhookDeliveryAttemptNumber")),
        ("Plain-Webhook-Delivery-Attempt-Id", meta.get("webhookDeliveryAttemptId")),
        ("Plain-Webhook-Delivery-Attempt-Timestamp", meta.get("webhookDeliveryAttemptTimestamp")),
    ):
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            headers[header] = str(value)
    return body, headers


def _dumps(event: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(event)
    except orjson.JSONEncodeError:
        # A lone surrogate (a test of odd text): the standard library escapes it as
        # "\\udXXX", which is still valid JSON and what such a Plain body looks like.
        return json.dumps(event, separators=(",", ":")).encode()


def with_fresh_attempt(event: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A deep copy of ``event`` whose delivery attempt happened ``now`` (default: now)."""
    out = copy.deepcopy(event)
    meta = out.get("webhookMetadata")
    if not isinstance(meta, dict):
        meta = out["webhookMetadata"] = {}
    meta["webhookDeliveryAttemptTimestamp"] = plain_time(now or datetime.now(UTC))
    return out


def post_signed(url: str, event: dict[str, Any], secret: str, timeout: float = 10) -> httpx.Response:
    """POST ``event`` to ``url`` as a fresh delivery attempt, signed with ``secret``.

    Raises :class:`httpx.HTTPError` when the service cannot be reached.
    """
    body, headers = signed_request(with_fresh_attempt(event), secret)
    return httpx.post(url, content=body, headers=headers, timeout=timeout)
