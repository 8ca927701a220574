"""Check recorded HTTP calls against a vendor's own OpenAPI description.

The descriptions live outside the repository, in ``../shared/specs/<vendor>/`` or the
folder ``PLAIN_CRM_SYNC_SPECS`` names (some are proprietary: read at test time, never copied). A contract test loads them with
:meth:`Contract.load`, which skips the test, saying why, where the folder is absent, so a
fresh clone still passes. The checks return lists of problems (empty: fits), so a test
can assert both that real calls fit and that a broken call is caught::

    @pytest.fixture(scope="module")
    def contract() -> Contract:
        return Contract.load("brevo")            # every *.json / *.yaml in the folder

    def test_requests_fit(contract: Contract, fake: FakeBrevo) -> None:
        run_the_adapter_against(fake)
        assert {f"{r.method} {r.path}": contract.request_problems(r) for r in fake.requests} == {...: []}

What is checked for a request (:meth:`Contract.request_problems`): the method and path
name an operation (the server URL's path prefix, e.g. ``/3.0``, must lead; literal
segments beat ``{parameters}``), every query parameter is documented, required and
described header parameters, path parameters described as integers, the auth scheme
the operation's security names (HTTP bearer / basic, or an API key header), the content
type (Swagger 2.0: its ``consumes``), and the JSON body against the operation's schema
(``closed=True`` also refuses body properties the schema does not name, which catches
typos the spec's open objects would let through). For an answer
(:meth:`Contract.response_problems`): the JSON body against the schema of its status,
else its range (``4XX``), else ``default``, else a schema the test names for undescribed
statuses.

OpenAPI 3.0 and Swagger 2.0 schemas are validated as JSON Schema draft 4 (their
dialect) with ``nullable`` / ``x-nullable`` turned into a null type; OpenAPI 3.1 as
draft 2020-12. ``$ref`` resolves into the document the operation came from.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from connector.testing.fakes.log import RecordedRequest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

# A git worktree is not beside ../shared: PLAIN_CRM_SYNC_SPECS names the folder there.
SPECS = Path(os.environ.get("PLAIN_CRM_SYNC_SPECS") or Path(__file__).resolve().parents[3] / "shared" / "specs")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass(frozen=True)
class Document:
    """One description file: its content and the URN its ``$ref``s resolve under."""

    urn: str
    spec: dict[str, Any]

    @property
    def swagger2(self) -> bool:
        return str(self.spec.get("swagger", "")).startswith("2")

    @property
    def prefix(self) -> str:
        """The path every call carries before the described paths ("/3.0", "/v3" or "")."""
        if self.swagger2:
            return str(self.spec.get("basePath", "")).rstrip("/")
        servers = self.spec.get("servers") or [{"url": ""}]
        return httpx.URL(servers[0]["url"]).path.rstrip("/")


@dataclass(frozen=True)
class Operation:
    """A described operation matched by a concrete call."""

    method: str
    template: str
    path_params: dict[str, str]
    op: dict[str, Any]
    document: Document

    @property
    def operation_id(self) -> str | None:
        return self.op.get("operationId")

    def parameters(self, where: str) -> list[dict[str, Any]]:
        """Parameters ``in`` query, header, path or body, with ``$ref``s followed."""
        found = [resolve(self.document.spec, p) for p in self.op.get("parameters", [])]
        shared = self.document.spec["paths"][self.template].get("parameters", [])
        found += [resolve(self.document.spec, p) for p in shared]
        return [p for p in found if p.get("in") == where]

    def body_schema(self, content_type: str) -> dict[str, Any] | None:
        """The request body's schema for ``content_type``; None where it takes no such body."""
        if self.document.swagger2:
            body = self.parameters("body")
            return body[0]["schema"] if body else None
        content = resolve(self.document.spec, self.op.get("requestBody", {})).get("content", {})
        return content.get(content_type, {}).get("schema")  # an exact media type: the wire's must be listed

    def consumes(self, default: str) -> list[str]:
        """The request media types the operation accepts (Swagger 2.0's ``consumes``);
        ``[default]`` where the description names none (OpenAPI 3 lists them per body)."""
        if not self.document.swagger2:
            return [default]
        return list(self.op.get("consumes") or self.document.spec.get("consumes") or [default])

    def body_required(self) -> bool:
        if self.document.swagger2:
            return any(p.get("required") for p in self.parameters("body"))
        return bool(resolve(self.document.spec, self.op.get("requestBody", {})).get("required"))

    def takes_body(self) -> bool:
        return bool(self.parameters("body")) if self.document.swagger2 else "requestBody" in self.op

    def describes(self, status: int) -> bool:
        """Does the operation list ``status`` (or its range, or a default)?"""
        return self._response(status) is not None

    def _response(self, status: int) -> dict[str, Any] | None:
        responses = self.op.get("responses", {})
        return responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")

    def response_schema(self, status: int) -> dict[str, Any] | None:
        answer = self._response(status)
        if answer is None:
            return None
        answer = resolve(self.document.spec, answer)
        if self.document.swagger2:
            return answer.get("schema")
        content = answer.get("content", {})
        json_types = [t for t in content if t == "application/json" or t.endswith("+json")]  # JSON:API too
        media = content[json_types[0]] if json_types else next(iter(content.values()), {})
        return media.get("schema")


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s ("#/components/...") until a node without one."""
    while isinstance(node, dict) and "$ref" in node and str(node["$ref"]).startswith("#/"):
        target: Any = spec
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


class Contract:
    """The operations of one vendor's description files, and checks of calls against them."""

    def __init__(self, documents: list[Document]) -> None:
        self.documents = documents
        self._registry: Registry = Registry().with_resources(
            (d.urn, Resource(_json_schema(d.spec, d.urn), _dialect(d))) for d in documents
        )
        self._templates = [(d, template, _pattern(template)) for d in documents for template in d.spec.get("paths", {})]

    @classmethod
    def load(cls, vendor: str, *files: str, folder: Path | None = None) -> Contract:
        """The description files ``files`` (default: every JSON/YAML file) in ``specs/<vendor>``.

        Skips the calling test, naming what is missing, where they are absent.
        """
        where = (folder or SPECS) / vendor
        names = files or tuple(sorted(p.name for p in where.glob("*") if p.suffix in (".json", ".yaml", ".yml")))
        missing = [name for name in names if not (where / name).is_file()]
        if not names or missing:
            pytest.skip(f"../shared/specs not present: {where} lacks {', '.join(missing) or 'a description'}")
        return cls([Document(f"urn:spec:{vendor}:{name}", _read(where / name)) for name in names])

    # -- finding the operation ------------------------------------------------------------

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation a concrete call names, or None; literal segments beat parameters."""
        found = []
        for document, template, pattern in self._templates:
            prefix = document.prefix
            if not path.startswith(prefix + "/"):
                continue
            match = pattern.match(path[len(prefix) :])
            op = document.spec["paths"][template].get(method.lower()) if match else None
            if match and isinstance(op, dict):
                found.append(Operation(method.upper(), template, match.groupdict(), op, document))
        return min(found, key=lambda o: o.template.count("{"), default=None)

    # -- checks -------------------------------------------------------------------------

    def request_problems(self, request: RecordedRequest, *, closed: bool = False) -> list[str]:
        """What in ``request`` the description does not allow (empty: it fits)."""
        operation = self.operation(request.method, request.path)
        if operation is None:
            return [f"{request.method} {request.path}: no such operation in the spec"]
        problems = self._parameter_problems(operation, request)
        problems += self._auth_problems(operation, request.headers)
        if not operation.takes_body():
            return problems + (["a body was sent to an operation that takes none"] if request.body else [])
        if not request.body:
            return problems + (["the operation needs a body"] if operation.body_required() else [])
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        schema = operation.body_schema(content_type)
        if schema is None or content_type not in operation.consumes(content_type):
            return [*problems, f"content type {content_type!r} not accepted"]
        problems += self.schema_problems(schema, request.json, "body", operation.document)
        if closed:
            spec = operation.document.spec
            found = _unknown_properties(spec, schema, request.json, "body")
            problems += [f"{name}: a property the schema does not name" for name in found]
        return problems

    def response_problems(
        self, method: str, path: str, status: int, body: Any, *, undescribed: dict[str, Any] | None = None
    ) -> list[str]:
        """What in an answer the description does not allow.

        ``undescribed``: the schema for error statuses the operation does not list (some
        vendors document their error shape once, not per operation).
        """
        operation = self.operation(method, path)
        what = f"{method} {path} -> {status}"
        if operation is None:
            return [f"{method} {path}: no such operation in the spec"]
        schema = operation.response_schema(status)
        if schema is None and undescribed is not None and status >= 400:
            schema = undescribed
        if schema is None and operation.describes(status):
            return []  # described without a body schema (a 204, an empty answer)
        if schema is None:
            return [f"{what}: status not described"]
        return self.schema_problems(schema, body, what, operation.document)

    def schema_problems(
        self, schema: dict[str, Any], value: Any, what: str, document: Document | None = None
    ) -> list[str]:
        """``value`` against ``schema`` (whose ``$ref``s point into ``document``, default the first)."""
        document = document or self.documents[0]
        resolved = _json_schema(schema, document.urn)
        validator_class = (
            jsonschema.Draft4Validator if _dialect(document) is DRAFT4 else jsonschema.Draft202012Validator
        )
        validator = validator_class(resolved, registry=self._registry)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        return [f"{what} {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors]

    def component(self, name: str) -> dict[str, Any]:
        """A named schema (components/schemas or definitions) of the first document that has it."""
        for document in self.documents:
            schemas = document.spec.get("definitions") or document.spec.get("components", {}).get("schemas", {})
            if name in schemas:
                return {"$ref": ("#/definitions/" if document.swagger2 else "#/components/schemas/") + name}
        raise KeyError(name)

    def _parameter_problems(self, operation: Operation, request: RecordedRequest) -> list[str]:
        problems: list[str] = []
        for param in operation.parameters("path"):
            kind = (param.get("schema") or param).get("type")
            value = operation.path_params.get(param["name"], "")
            if kind == "integer" and not re.fullmatch(r"-?\d+", value):
                problems.append(f"path parameter {param['name']} is not an integer: {value!r}")
        declared = {p["name"] for p in operation.parameters("query")}
        problems += [f"query parameter {name!r} not in the spec" for name in sorted(set(request.query) - declared)]
        for param in operation.parameters("header"):
            value = request.headers.get(param["name"].lower())
            if value is None and param.get("required"):
                problems.append(f"header {param['name']} missing")
            schema = param.get("schema") or {k: v for k, v in param.items() if k in ("type", "enum", "pattern")}
            if value is not None and schema:
                problems += self.schema_problems(schema, value, f"header {param['name']}", operation.document)
        return problems

    def _auth_problems(self, operation: Operation, headers: Mapping[str, str]) -> list[str]:
        spec = operation.document.spec
        schemes = spec.get("securityDefinitions") or spec.get("components", {}).get("securitySchemes", {})
        requirements = operation.op.get("security", spec.get("security", []))
        named = [schemes.get(name, {}) for requirement in requirements for name in requirement]
        wanted = {_http_scheme(scheme) for scheme in named}
        keys = {str(s["name"]).lower() for s in named if s.get("type") == "apiKey" and s.get("in") == "header"}
        wanted.discard(None)
        if not wanted and not keys:
            return []  # none, or only schemes (query keys, OAuth) this helper does not judge
        scheme = headers.get("authorization", "").partition(" ")[0].lower()
        if scheme in wanted or keys & {name.lower() for name in headers}:
            return []
        named_ones = sorted(map(str, wanted)) + sorted(f"the {key} header" for key in keys)
        return [f"auth is not {' or '.join(named_ones)}, as the spec names"]


def _read(path: Path) -> dict[str, Any]:
    if path.suffix == ".json":
        return dict(json.loads(path.read_text()))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # some descriptions are over 1 MB
    with path.open("rb") as stream:
        return dict(yaml.load(stream, Loader=loader))


def _dialect(document: Document) -> Any:
    return DRAFT202012 if str(document.spec.get("openapi", "")).startswith("3.1") else DRAFT4


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


def _http_scheme(scheme: dict[str, Any]) -> str | None:
    if scheme.get("type") == "http":
        return str(scheme.get("scheme", "")).lower() or None
    return "basic" if scheme.get("type") == "basic" else None  # Swagger 2.0's spelling


def _json_schema(node: Any, urn: str) -> Any:
    """OpenAPI schema -> JSON Schema: ``nullable`` becomes a null type; local refs point at ``urn``."""
    if isinstance(node, list):
        return [_json_schema(item, urn) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v, urn) for k, v in node.items() if k not in ("nullable", "x-nullable", "example")}
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#/"):
        out["$ref"] = urn + out["$ref"]
    if node.get("nullable") is True or node.get("x-nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _unknown_properties(spec: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> Iterator[str]:
    schema = resolve(spec, schema)
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key in schema["properties"]:
                yield from _unknown_properties(spec, schema["properties"][key], item, f"{where}.{key}")
            elif not schema.get("additionalProperties"):
                yield f"{where}.{key}"
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _unknown_properties(spec, schema["items"], item, f"{where}[{index}]")
