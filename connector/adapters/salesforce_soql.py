"""SOQL text for the Salesforce adapter: string literals and ``IN`` lists that fit a URL.

Queries go in the URL (``GET /query?q=``), which Salesforce caps at 16,384 bytes, so a long
list of emails is split into several queries, each well under the cap once URL-encoded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from urllib.parse import quote

__all__ = ["QUERY_CHARS", "soql_in", "soql_list", "soql_literal"]

#: the URL-encoded ``IN`` list of one query stays well under the 16,384-byte URI limit
QUERY_CHARS = 8000


def soql_literal(value: str) -> str:
    """A SOQL string literal: quotes and backslashes escaped (emails may hold ``'``)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def soql_list(values: Sequence[str]) -> str:
    return ", ".join(soql_literal(v) for v in values)


def soql_in(values: Sequence[str], limit: int = QUERY_CHARS) -> Iterator[str]:
    """``IN (...)`` lists of ``values`` whose URL-encoded form stays within ``limit`` characters."""
    chunk: list[str] = []
    size = 0
    for value in values:
        cost = len(quote(soql_literal(value) + ", ", safe=""))
        if chunk and size + cost > limit:
            yield soql_list(chunk)
            chunk, size = [], 0
        chunk.append(value)
        size += cost
    if chunk:
        yield soql_list(chunk)
