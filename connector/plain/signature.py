"""Plain webhook request signing: HMAC-SHA256 of the raw body, and the replay window.

The signature covers the exact bytes received, so verify before any parsing or
re-encoding. The replay window holds for every signed body, understood or not: it uses
``webhookMetadata.webhookDeliveryAttemptTimestamp``, which is inside the signed body, and
only where the body gives no readable one the ``Plain-Webhook-Delivery-Attempt-Timestamp``
header (:func:`replay_time`). That header is not signed, so it can only stand in for a
body that has no time of its own; a signed body with neither is refused, as Plain always
sends the header.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

__all__ = ["ATTEMPT_TIME_HEADER", "is_fresh", "replay_time", "sign", "verify"]

ATTEMPT_TIME_HEADER = "plain-webhook-delivery-attempt-timestamp"

_HEX = frozenset("0123456789abcdefABCDEF")
_DIGEST_HEX_LEN = hashlib.sha256().digest_size * 2


def sign(body: bytes, secret: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``body``, as Plain puts in Plain-Request-Signature."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str | None, secret: str) -> bool:
    """True only when ``signature`` is the HMAC of ``body`` under ``secret``.

    The comparison is constant-time. A missing, empty or non-hex header is False, as is an
    empty secret: a misconfigured service must not accept everything signed with "".
    """
    if not signature or not secret:
        return False
    signature = signature.strip()
    # Length and alphabet are not secret; checking them first keeps compare_digest on
    # equal-length ASCII (it refuses non-ASCII str) and costs no timing information.
    if len(signature) != _DIGEST_HEX_LEN or not _HEX.issuperset(signature):
        return False
    return hmac.compare_digest(sign(body, secret), signature.lower())


def is_fresh(attempt_time: datetime | None, now: datetime, tolerance_seconds: float) -> bool:
    """Whether a delivery attempt lies within ``tolerance_seconds`` of ``now``, either way.

    None (no attempt time in the body) is never fresh. Naive datetimes cannot be compared
    safely with aware ones, so they are refused too.
    """
    if attempt_time is None or attempt_time.tzinfo is None or now.tzinfo is None:
        return False
    return abs((now - attempt_time).total_seconds()) <= tolerance_seconds


def replay_time(body_time: datetime | None, headers: Mapping[str, str]) -> datetime | None:
    """The attempt time the replay window judges: the body's, else the header's, else None.

    ``body_time`` is what the parser read from the signed body (None when the body has
    none or is not understood). ``headers`` must be case-insensitive (Starlette's are);
    a header that is not an ISO 8601 time with an offset counts as absent.
    """
    if body_time is not None:
        return body_time
    value = headers.get(ATTEMPT_TIME_HEADER)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        return parsed.astimezone(UTC) if parsed.utcoffset() is not None else None
    except (ValueError, OverflowError):  # OverflowError: year 1 with a positive offset
        return None
