"""The little SOQL FakeSalesforce understands: enough for the adapter, strict about the rest.

``SELECT f, … FROM Object [WHERE cond] [ORDER BY f, …] [LIMIT n]`` where ``cond`` combines
``field = value``, ``field != value`` and ``field IN (value, …)`` with ``AND``, ``OR`` and
parentheses; values are string literals (``\\'`` and ``\\\\`` escapes), ``true``, ``false``,
``null`` or numbers. Field names are checked against a small schema per object and, as in
Salesforce, matched case-insensitively; text compares case-insensitively, ids by their
first 15 characters. Anything else raises :class:`SoqlError` (``MALFORMED_QUERY``,
``INVALID_FIELD``), which the fake answers as Salesforce does: 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SCHEMA", "Soql", "SoqlError", "parse_soql"]

SCHEMA: dict[str, tuple[str, ...]] = {
    "Contact": ("Id", "Email", "CreatedDate"),
    "Lead": ("Id", "Email", "CreatedDate", "IsConverted"),
    "Campaign": ("Id", "Name", "IsActive", "CreatedDate"),
    "CampaignMember": ("Id", "CampaignId", "ContactId", "LeadId", "Status", "Contact.Email", "Lead.Email"),
    "CampaignMemberStatus": ("Id", "CampaignId", "Label"),
}

_STATEMENT = re.compile(
    r"\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<table>\w+)(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>[\w.]+(?:\s*,\s*[\w.]+)*))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*",
    re.IGNORECASE | re.DOTALL,
)
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>!=|=|\(|\)|,)|(?P<word>[A-Za-z_][\w.]*)|(?P<num>\d+))")

Row = dict[str, Any]
Test = Callable[[Row], bool]


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Soql:
    table: str
    fields: list[str]
    where: Test | None
    order: list[str]
    limit: int | None

    def select(self, rows: Sequence[Row]) -> list[Row]:
        found = [row for row in rows if self.where is None or self.where(row)]
        found.sort(key=lambda row: tuple(str(row.get(f)) for f in self.order))
        return found[: self.limit] if self.limit is not None else found

    def project(self, row: Row, version: str) -> dict[str, Any]:
        record: dict[str, Any] = {"attributes": _attributes(self.table, row["Id"], version)}
        for field in self.fields:
            if "." not in field:
                record[field] = row.get(field)
                continue
            kind, name = field.split(".", 1)
            related = (row.get("_related") or {}).get(kind)
            if related is None:
                record[kind] = None
            else:
                record.setdefault(kind, {"attributes": _attributes(kind, related["Id"], version)})[name] = related.get(
                    name
                )
        return record


def _attributes(table: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": table, "url": f"/services/data/v{version}/sobjects/{table}/{record_id}"}


def parse_soql(text: str) -> Soql:
    statement = _STATEMENT.fullmatch(text)
    if statement is None:
        raise SoqlError("MALFORMED_QUERY", f"unexpected token in query: {text[:60]!r}")
    table = next((t for t in SCHEMA if t.lower() == statement["table"].lower()), None)
    if table is None:
        raise SoqlError("INVALID_TYPE", f"sObject type '{statement['table']}' is not supported.")
    resolve = _resolver(table)
    fields = [resolve(f.strip()) for f in statement["fields"].split(",")]
    where = _Parser(_tokens(statement["where"]), resolve).parse() if statement["where"] else None
    order = [resolve(f.strip()) for f in statement["order"].split(",")] if statement["order"] else []
    return Soql(table, fields, where, order, int(statement["limit"]) if statement["limit"] else None)


def _resolver(table: str) -> Callable[[str], str]:
    known = {name.lower(): name for name in SCHEMA[table]}

    def resolve(name: str) -> str:
        if name.lower() not in known:
            raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{table}'.")
        return known[name.lower()]

    return resolve


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token at {text[position : position + 20]!r}")
        kind = found.lastgroup or ""
        tokens.append((kind, found[kind]))
        position = found.end()
    return tokens


def _literal(kind: str, token: str) -> Any:
    if kind == "str":
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    if kind == "num":
        return int(token)
    words = {"true": True, "false": False, "null": None}
    if kind == "word" and token.lower() in words:
        return words[token.lower()]
    raise SoqlError("MALFORMED_QUERY", f"expected a value, found {token!r}")


def _same(field: str, stored: Any, wanted: Any) -> bool:
    if stored is None or wanted is None:
        return stored is wanted
    if isinstance(stored, str) and isinstance(wanted, str):
        if field == "Id" or field.endswith("Id"):
            return stored[:15] == wanted[:15]
        return stored.lower() == wanted.lower()
    return bool(stored == wanted)


class _Parser:
    """Recursive descent over ``or := and (OR and)*``, ``and := atom (AND atom)*``."""

    def __init__(self, tokens: list[tuple[str, str]], resolve: Callable[[str], str]) -> None:
        self.tokens, self.at, self.resolve = tokens, 0, resolve

    def parse(self) -> Test:
        test = self._or()
        if self.at != len(self.tokens):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token {self.tokens[self.at][1]!r}")
        return test

    def _peek(self) -> str:
        return self.tokens[self.at][1].upper() if self.at < len(self.tokens) else ""

    def _take(self) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise SoqlError("MALFORMED_QUERY", "unexpected end of query")
        self.at += 1
        return self.tokens[self.at - 1]

    def _or(self) -> Test:
        parts = [self._and()]
        while self._peek() == "OR":
            self._take()
            parts.append(self._and())
        return lambda row: any(p(row) for p in parts)

    def _and(self) -> Test:
        parts = [self._atom()]
        while self._peek() == "AND":
            self._take()
            parts.append(self._atom())
        return lambda row: all(p(row) for p in parts)

    def _atom(self) -> Test:
        if self._peek() == "(":
            self._take()
            inner = self._or()
            if self._take()[1] != ")":
                raise SoqlError("MALFORMED_QUERY", "expected ')'")
            return inner
        kind, name = self._take()
        if kind != "word":
            raise SoqlError("MALFORMED_QUERY", f"expected a field, found {name!r}")
        field = self.resolve(name)
        op = self._take()[1].upper()
        if op == "IN":
            values = self._values()
            return lambda row: any(_same(field, row.get(field), v) for v in values)
        if op not in ("=", "!="):
            raise SoqlError("MALFORMED_QUERY", f"unsupported operator {op!r}")
        value = _literal(*self._take())
        return lambda row: _same(field, row.get(field), value) == (op == "=")

    def _values(self) -> list[Any]:
        if self._take()[1] != "(":
            raise SoqlError("MALFORMED_QUERY", "expected '(' after IN")
        values = [_literal(*self._take())]
        while (token := self._take())[1] == ",":
            values.append(_literal(*self._take()))
        if token[1] != ")":
            raise SoqlError("MALFORMED_QUERY", "expected ')' to close IN")
        return values
