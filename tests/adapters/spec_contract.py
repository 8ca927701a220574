"""Recorded requests and fake answers checked against a vendor's OpenAPI description.

The descriptions are reference material outside the repository (``../shared/specs``);
:func:`load_spec` skips the calling test with its reason where they are absent, so a fresh
clone still passes. Handles OpenAPI 3.0 (``nullable``) and 3.1, path-level parameters,
``4XX``-style response ranges, and any JSON media type (Klaviyo's JSON:API).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from connector.testing.fakes.log import RecordedRequest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def specs_dir() -> Path | None:
    """``shared/specs`` next to the checkout (or next to a folder holding worktrees)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "specs").is_dir():
            return parent / "shared" / "specs"
    return None


def load_spec(relative: str) -> dict[str, Any]:
    folder = specs_dir()
    if folder is None or not (folder / relative).is_file():
        pytest.skip(f"../shared/specs/{relative} not present (vendor reference material outside the repo)")
    return json.loads((folder / relative).read_text())


def _json_schema(node: Any, urn: str, nullable: bool) -> Any:
    if isinstance(node, list):
        return [_json_schema(item, urn, nullable) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v, urn, nullable) for k, v in node.items() if k not in ("nullable", "example", "examples")}
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#/"):
        out["$ref"] = urn + out["$ref"]
    if nullable and node.get("nullable") is True:
        out = {"anyOf": [out, {"type": "null"}]}
    return out


class SpecContract:
    """One OpenAPI description: find the operation of a call, validate what went over the wire."""

    def __init__(self, spec: dict[str, Any], name: str) -> None:
        self.spec, self.urn = spec, f"urn:{name}"
        self.nullable = str(spec.get("openapi", "")).startswith("3.0")
        self.registry: Registry = Registry().with_resource(
            self.urn, Resource(_json_schema(spec, self.urn, self.nullable), DRAFT202012)
        )
        self.templates = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in spec["paths"]]

    def has(self, path: str) -> bool:
        return any(rx.match(path) for rx, _ in self.templates)

    def operation(self, method: str, path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The operation and its parameters (path-level ones included) for a concrete call."""
        for template in sorted((t for rx, t in self.templates if rx.match(path)), key=lambda t: t.count("{")):
            item = self.spec["paths"][template]
            op = item.get(method.lower())
            if op:
                params = [self._deref(p) for p in [*item.get("parameters", []), *op.get("parameters", [])]]
                return op, params
        raise AssertionError(f"{method} {path} is not an operation of {self.urn}")

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def validate(self, instance: Any, schema: dict[str, Any], what: str) -> None:
        validator = jsonschema.Draft202012Validator(
            _json_schema(schema, self.urn, self.nullable), registry=self.registry
        )
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, f"{what}: " + "; ".join(f"{list(e.path)}: {e.message[:200]}" for e in errors)

    def check_request(self, request: RecordedRequest) -> None:
        op, params = self.operation(request.method, request.path)
        what = f"{request.method} {request.path}"
        for param in params:
            where = {"header": request.headers, "query": request.query}.get(param["in"])
            if where is None:
                continue
            value = where.get(param["name"].lower() if param["in"] == "header" else param["name"])
            assert value is not None or not param.get("required"), f"{what}: no {param['name']}"
            if value is not None:
                schema = param.get("schema", {})
                typed: Any = value
                if schema.get("type") == "integer" and value.isdigit():
                    typed = int(value)
                elif schema.get("type") == "array":  # explode: false, the form these APIs use
                    typed = value.split(",")
                self.validate(typed, schema, f"{what} {param['in']} {param['name']}")
        unknown = set(request.query) - {p["name"] for p in params if p["in"] == "query"}
        assert not unknown, f"{what}: query parameters the description does not have: {unknown}"
        content = op.get("requestBody", {}).get("content", {})
        if not content:
            assert not request.body, f"{what} sends a body the description does not have"
            return
        media = request.headers.get("content-type", "").split(";")[0]
        assert media in content, f"{what}: content type {media!r}, described: {sorted(content)}"
        self.validate(request.json, content[media]["schema"], f"{what} body")

    def check_response(self, method: str, path: str, status: int, body: Any) -> None:
        op, _ = self.operation(method, path)
        responses = op["responses"]
        described = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
        assert described is not None, f"{method} {path}: undescribed status {status}"
        content = self._deref(described).get("content", {})
        schema = next((c["schema"] for c in content.values() if "schema" in c), None)
        if schema is not None:
            self.validate(body, schema, f"{method} {path} -> {status}")
