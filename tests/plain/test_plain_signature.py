"""Request signatures and the replay window."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import pytest
from connector.plain import signature
from connector.plain.signature import is_fresh, sign, verify

BODY = b'{"id":"pEv_1","type":"customer.customer_group_memberships_changed"}'
SECRET = "whsec_test"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_sign_is_lowercase_hex_hmac_sha256_of_raw_bytes():
    expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, SECRET) == expected
    assert len(expected) == 64 and expected == expected.lower()
    # Known-answer vector so a change of algorithm cannot hide behind the same helper.
    assert sign(b"", "key") == "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0"


def test_verify_accepts_the_right_signature():
    assert verify(BODY, sign(BODY, SECRET), SECRET) is True


def test_verify_accepts_uppercase_and_surrounding_space():
    assert verify(BODY, " " + sign(BODY, SECRET).upper() + " ", SECRET) is True


@pytest.mark.parametrize(
    "sig",
    [
        None,
        "",
        "   ",
        "zz" * 32,
        sign(BODY, SECRET)[:-1],
        sign(BODY, SECRET) + "0",
        "é" * 64,
        "sha256=" + sign(BODY, SECRET),
    ],
)
def test_verify_refuses_malformed_signatures(sig):
    assert verify(BODY, sig, SECRET) is False


def test_verify_refuses_wrong_secret():
    assert verify(BODY, sign(BODY, "other-secret"), SECRET) is False


def test_verify_refuses_tampered_body():
    sig = sign(BODY, SECRET)
    assert verify(BODY + b" ", sig, SECRET) is False
    assert verify(BODY.replace(b"pEv_1", b"pEv_2"), sig, SECRET) is False


def test_verify_refuses_empty_secret():
    assert verify(BODY, sign(BODY, ""), "") is False


def test_verify_compares_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signature.hmac, "compare_digest", spy)
    good = sign(BODY, SECRET)
    assert verify(BODY, good, SECRET) is True
    assert verify(BODY, "0" * 64, SECRET) is False
    assert calls == [(good, good), (good, "0" * 64)]


@pytest.mark.parametrize(
    ("offset", "fresh"),
    [(0, True), (299.999, True), (300, True), (-300, True), (300.001, False), (-300.001, False), (86400 * 365, False)],
)
def test_is_fresh_window_is_symmetric(offset, fresh):
    attempt = NOW - timedelta(seconds=offset)
    assert is_fresh(attempt, NOW, 300) is fresh


def test_is_fresh_refuses_missing_or_naive_times():
    assert is_fresh(None, NOW, 300) is False
    assert is_fresh(NOW.replace(tzinfo=None), NOW, 300) is False
    assert is_fresh(NOW, NOW.replace(tzinfo=None), 300) is False


def test_is_fresh_compares_across_offsets():
    attempt = datetime(2025, 3, 1, 14, 4, tzinfo=timezone(timedelta(hours=2)))
    assert is_fresh(attempt, NOW, 300) is True
    assert is_fresh(attempt, NOW, 200) is False


@pytest.mark.parametrize(
    ("body_time", "header", "expected"),
    [
        (NOW, "2020-01-01T00:00:00Z", NOW),  # the signed body's time wins
        (None, "2025-03-01T14:00:00.000+02:00", NOW),
        (None, " 2025-03-01T12:00:00.000Z ", NOW),
        (None, "2025-03-01T12:00:00", None),  # no offset: no guess
        (None, "yesterday", None),
        (None, "0001-01-01T00:00:00+05:00", None),  # before year 1 in UTC
        (None, "", None),
        (None, None, None),
    ],
)
def test_replay_time_prefers_the_body_then_the_header(body_time, header, expected):
    headers = {} if header is None else {signature.ATTEMPT_TIME_HEADER: header}
    got = signature.replay_time(body_time, headers)
    assert got == expected
    assert got is None or got.utcoffset() == timedelta(0)
