"""Any text JSON allows is understood: odd names, emails, ids and group names never make an
event unprocessable; the store gets them losslessly but for lone surrogates, CRMs a form
they accept (connector.text)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from connector.adapters.base import Change
from connector.plain.changes import UnprocessableEvent, load_json, parse_event
from connector.testing.plain import membership_event, plain_id
from connector.text import crm_text, storable
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.odd_text import ODD_TEXT, SURROGATE_NUL, json_strings

CUSTOMER = plain_id("c", "odd")


def _event(text: str, generation: str = "versioned") -> dict[str, Any]:
    group = (plain_id("cg", "odd"), f"key{text}", f"group {text}")
    ev = membership_event(
        event_id=plain_id("pEv", "odd"), customer_id=CUSTOMER, email=f"{text}@example.com",
        groups_before=[], groups_after=[group], timestamp="2026-01-01T00:00:00Z",
        generation=generation, full_name=text, external_id=f"ext-{text}",  # type: ignore[arg-type]
    )  # fmt: skip
    return ev


def _meaning(text: str) -> str:
    """What a JSON text carrying ``text`` (escaped) means, made storable: the expected value."""
    return storable(json.loads(json.dumps(text)))


def _body(ev: dict[str, Any], ascii_only: bool) -> bytes:
    # ensure_ascii=False sends UTF-8 where it can; lone surrogates can only travel escaped.
    return json.dumps(ev, ensure_ascii=ascii_only).encode("utf-8", "backslashreplace")


@pytest.mark.parametrize("generation", ["versioned", "legacy"])
@pytest.mark.parametrize("text", ODD_TEXT.values(), ids=ODD_TEXT.keys())
def test_odd_text_in_every_field_is_understood(text: str, generation: str) -> None:
    parsed = parse_event(_body(_event(text, generation), ascii_only=True))
    expected = _meaning(text)
    assert parsed.kind == "membership" and len(parsed.changes) == 1
    change = parsed.changes[0]
    assert change.added and change.customer.id == CUSTOMER
    assert change.customer.full_name == expected
    assert change.customer.email == f"{expected}@example.com".strip()
    assert change.customer.external_id == f"ext-{expected}"
    assert (change.group.key, change.group.name) == (f"key{expected}", f"group {expected}")


def test_the_issues_example_keeps_nul_and_replaces_the_surrogate() -> None:
    parsed = parse_event(_body(_event(SURROGATE_NUL), ascii_only=True))
    assert parsed.changes[0].customer.full_name == "\ufffd x\x00y"  # what the store holds
    assert crm_text(parsed.changes[0].customer.full_name) == "\ufffd xy"  # what a CRM gets


def test_nul_and_controls_in_utf8_bodies_take_the_fast_path_unchanged() -> None:
    text = "a\u0000\u200f\u0301\u0007b"
    body = orjson.dumps(_event(text))  # orjson reads this itself: no surrogates
    assert orjson.loads(body)  # the fast path, not the fallback
    assert parse_event(body).changes[0].customer.full_name == text


@pytest.mark.parametrize(
    ("body", "mention"),
    [
        (b'{"id": "\\ud800"}', "event type"),  # valid JSON, not an event
        (b'{"id": "\\ud800", "x": NaN}', "JSON"),  # NaN is not JSON, surrogate or not
        (b'["\\ud800", Infinity]', "JSON"),
        (b'"\\ud800', "JSON"),  # unterminated
        (b'\xef\xbb\xbf{"a": "\\ud800"}', "JSON"),  # a BOM is not JSON text
        (b'{"a": "\\ud800\xff"}', "JSON"),  # invalid UTF-8 stays invalid
        (b"[" * 5_000 + b'"\\ud800"' + b"]" * 5_000, "JSON"),  # too deep for either reader
    ],
)
def test_what_is_still_unprocessable(body: bytes, mention: str) -> None:
    with pytest.raises(UnprocessableEvent) as info:
        parse_event(body)
    assert mention in info.value.reason


def test_lone_surrogate_in_an_id_is_a_bad_id_not_bad_json() -> None:
    ev = _event("x")
    ev["payload"]["customer"]["id"] = ev["payload"]["previousCustomer"]["id"] = "c_\ud83d"
    with pytest.raises(UnprocessableEvent) as info:
        parse_event(_body(ev, ascii_only=True))
    assert "payload.customer.id" in info.value.reason and info.value.event_id == plain_id("pEv", "odd")


def test_surrogates_in_keys_are_replaced_too() -> None:
    assert load_json(b'{"\\udc00": ["\\ud83d\\ude00", "\\ud83d"]}') == {"\ufffd": ["\U0001f600", "\ufffd"]}


def test_change_sends_every_text_field_in_crm_form() -> None:
    change = Change(
        key="1", action="add", customer_id="c_1", email="a\x00b\ud83d@example.com", group_id="cg_1",
        group_key="k\x00", event_id="pEv_1", full_name=SURROGATE_NUL, external_id="\x00",
        group_name="\udfff\u200fG",
    )  # fmt: skip
    assert (change.email, change.full_name, change.external_id) == ("ab\ufffd@example.com", "\ufffd xy", "")
    assert (change.group_key, change.group_name) == ("k", "\ufffd\u200fG")
    orjson.dumps([change.email, change.full_name, change.group_name])  # every CRM payload encoder accepts it


@settings(max_examples=300, deadline=None)
@given(text=json_strings, ascii_only=st.booleans(), generation=st.sampled_from(["versioned", "legacy"]))
def test_any_json_string_in_a_membership_event_is_understood(text: str, ascii_only: bool, generation: str) -> None:
    parsed = parse_event(_body(_event(text, generation), ascii_only))
    expected = _meaning(text)
    customer = parsed.changes[0].customer
    assert parsed.kind == "membership"
    assert customer.full_name == (expected or None) and customer.external_id == f"ext-{expected}"
    sent = crm_text(customer.full_name)
    assert sent is None or ("\x00" not in sent and orjson.dumps(sent))
