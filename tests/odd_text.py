"""Strings JSON allows that systems often refuse: shared by the parser, server and e2e tests."""

from __future__ import annotations

from hypothesis import strategies as st

#: the issue's example: a lone high surrogate, a space, NUL between two letters
SURROGATE_NUL = "\ud83d x\u0000y"

#: one of each kind, named for test ids
ODD_TEXT = {
    "lone high surrogate": "\ud83d",
    "lone low surrogate, then an escaped pair": "\ude00\ud83d\ude00",
    "surrogate and NUL": SURROGATE_NUL,
    "NUL only": "\u0000",
    "control characters": "a\u0001\u0007\u001b[31m\u007f\u009fb",
    "right-to-left marks": "\u200f\u202eevil\u202c\u200e",
    "combining characters": "Zo\u0308e\u0301\u0336\u0336",
    "BOM and zero-width": "\ufeff\u200b\u2060x",
    "10,000 characters": "\u00e9\ud83d" * 5_000,
}

_any_char = st.characters(codec=None) | st.characters(categories=["Cs"]) | st.sampled_from(list("\x00\u200f\u0301"))

#: any string a JSON text can carry (lone surrogates as \uXXXX escapes), sometimes very long
json_strings = st.text(_any_char, max_size=40) | st.sampled_from(list(ODD_TEXT.values()))
