"""What odd event text becomes on its way from Plain's JSON to the store and to a CRM.

JSON allows any string, including two things most systems refuse:

- a lone UTF-16 surrogate (``"\\ud83d"`` escaped, half an emoji): it is not a Unicode
  character, so it has no UTF-8 form. SQLite (through Python), PostgreSQL, our JSON logs and
  every CRM API refuse it. It is replaced by U+FFFD REPLACEMENT CHARACTER when the body is
  parsed (:func:`storable`), the only change made to event text before it is stored.
- NUL (``"\\u0000"``): SQLite stores it, so the store keeps it; PostgreSQL text columns and
  CRM APIs refuse or truncate at it, so it is removed when a change is sent (:func:`crm_text`).

Everything else (other control characters, right-to-left marks, combining characters,
names of any length) is stored and sent exactly as received. docs/reliability.md lists the
same rules for operators.

On an operator's terminal, though, a control character in a name is an instruction (ESC
recolours or moves the cursor, CR overwrites the line): the CLI shows them as ``\\xNN``
escapes there (:func:`printable`, :class:`PrintableStream`).
"""

from __future__ import annotations

import re
from typing import Any, TextIO

__all__ = ["PrintableStream", "crm_text", "printable", "storable", "storable_json"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


def storable(value: str) -> str:
    """``value`` with every lone surrogate replaced by U+FFFD; nothing else changes.

    A Python ``str`` holds a valid surrogate pair as one character, so any surrogate code
    point left in it is a lone one.
    """
    return _SURROGATE.sub(_REPLACEMENT, value) if _SURROGATE.search(value) else value


def crm_text(value: str | None) -> str | None:
    """The form every CRM accepts: lone surrogate -> U+FFFD, NUL removed, all else kept.

    This is the one place the rule lives; :class:`connector.adapters.base.Change` applies
    it to every text field it is built with, so no adapter sees the raw forms.
    """
    if value is None:
        return None
    return storable(value).replace("\x00", "")


def storable_json(value: Any) -> Any:
    """Parsed JSON with :func:`storable` applied to every string, keys included.

    Iterative, so it goes as deep as the parser did without using the call stack.
    """
    root = [value]
    pending: list[tuple[Any, Any]] = [(root, 0)]
    while pending:
        container, at = pending.pop()
        item = container[at]
        if isinstance(item, str):
            container[at] = storable(item)
        elif isinstance(item, list):
            pending.extend((item, i) for i in range(len(item)))
        elif isinstance(item, dict):
            rebuilt = {storable(k): v for k, v in item.items()}
            container[at] = rebuilt
            pending.extend((rebuilt, k) for k in rebuilt)
    return root[0]


#: C0 controls but newline and tab, DEL, and the C1 controls
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` for a terminal: control characters as ``\\xNN``; newlines and tabs stay."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class PrintableStream:
    """A text stream that writes :func:`printable` text to ``inner`` (the CLI's stdout on a terminal)."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        return self.inner.write(printable(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
