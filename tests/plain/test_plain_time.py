"""Event times become UTC text that sorts in time order, whatever offset Plain used."""

from __future__ import annotations

import re
from datetime import datetime

import orjson
import pytest
from connector.plain.changes import normalise_time, parse_event
from connector.testing.plain import event, plain_id

FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

CASES = [
    ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000000Z"),
    ("2024-05-01T10:00:00.5Z", "2024-05-01T10:00:00.500000Z"),
    ("2024-05-01T10:00:00.123Z", "2024-05-01T10:00:00.123000Z"),
    ("2024-05-01T10:00:00.123456+00:00", "2024-05-01T10:00:00.123456Z"),
    ("2024-05-01T12:00:00.124+02:00", "2024-05-01T10:00:00.124000Z"),
    ("2024-05-01T11:59:59+02:00", "2024-05-01T09:59:59.000000Z"),
    ("2024-05-01T09:30:00-01:00", "2024-05-01T10:30:00.000000Z"),
    ("2024-05-02T01:00:00+14:00", "2024-05-01T11:00:00.000000Z"),
    ("2024-05-01T10:00:00.1234567Z", "2024-05-01T10:00:00.123456Z"),
    ("0999-12-31T23:00:00-02:00", "1000-01-01T01:00:00.000000Z"),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_normalise(raw, expected):
    assert normalise_time(raw) == expected
    assert FORMAT.match(expected)


def test_text_order_is_time_order():
    raws = [raw for raw, _ in CASES]
    by_time = sorted(raws, key=datetime.fromisoformat)
    by_text = sorted(raws, key=normalise_time)
    assert by_text == by_time
    # And the naive approach (sorting the raw strings) would have been wrong here.
    assert sorted(raws) != by_time


@pytest.mark.parametrize("raw", ["2024-05-01T10:00:00", "2024-05-01", "1714557600", "", "x"])
def test_times_without_offset_are_refused(raw):
    with pytest.raises(ValueError):
        normalise_time(raw)


def test_event_time_comes_from_the_envelope_timestamp():
    body = event(
        event_id=plain_id("pEv", "t"),
        event_type="thread.thread_created",
        payload={},
        timestamp="2024-05-01T12:00:00.124+02:00",
    )
    assert parse_event(orjson.dumps(body)).event_time == "2024-05-01T10:00:00.124000Z"
