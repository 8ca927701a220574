"""Every request the Brevo adapter sends is one Brevo's published spec describes.

The spec (Swagger 2.0, from Brevo's Go SDK) lives outside the repository in
``../shared/specs/brevo`` (see SOURCES.md there); without it these tests skip, so a fresh
clone still passes. The requests are the ones FakeBrevo recorded while the real adapter
ran: method, path under ``basePath``, path and query parameters, the ``api-key`` header,
and the JSON body against the operation's body schema, with no property the schema does
not name.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from connector.adapters.base import Change
from connector.adapters.brevo import BrevoAdapter, BrevoConfig
from connector.testing.fakes.brevo import FakeBrevo
from connector.testing.fakes.log import RecordedRequest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "brevo"
KEY = "xkeysib-contract-0123456789abcdef-AbCd"
BASE = "urn:brevo-spec"
USED = {"getAccount", "getList", "addContactToList", "removeContactFromList", "getContactInfo", "createContact"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    files = sorted(SPECS.glob("*.yaml")) if SPECS.is_dir() else []
    if not files:
        pytest.skip(f"../shared/specs not present: no Brevo spec in {SPECS}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with files[0].open("rb") as stream:
        return yaml.load(stream, Loader=loader)


@pytest.fixture(scope="module")
def recorded() -> list[RecordedRequest]:
    """A realistic run: check, add (one already in, one unknown), remove, then with creation."""
    fake = FakeBrevo(KEY, lists={12: "Enterprise"})
    fake.seed_contact("ann@example.com")
    fake.seed_contact("bea@example.com", lists=(12,))

    def change(email: str, action: str = "add") -> Change:
        return Change(key=email + action, action=action, customer_id="c", email=email,  # type: ignore[arg-type]
                      group_id="cg", group_key="g", event_id="pEv", options={"list": 12})  # fmt: skip

    async def run(base_url: str, **extra: Any) -> None:
        config = BrevoConfig.model_validate({"type": "brevo", "api_key": KEY, "base_url": base_url, **extra})
        adapter = BrevoAdapter("brevo", config)
        await adapter.start()
        try:
            assert await adapter.check_online([{"list": 12}]) == []
            batch = [change("Ann@example.com"), change("bea@example.com"), change("new@example.com")]
            outcomes = await adapter.apply(batch)
            assert [o.kind for o in outcomes] == ["done", "done", "done" if extra else "skipped"]
            assert [o.kind for o in await adapter.apply([change("ann@example.com", "remove")])] == ["done"]
        finally:
            await adapter.close()

    with fake.serve() as base_url:
        asyncio.run(run(base_url))
        asyncio.run(run(base_url, create_missing_contacts=True))
    return fake.requests


def _operation(spec: dict[str, Any], method: str, path: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    prefix = spec["basePath"].rstrip("/")
    if not path.startswith(prefix + "/"):
        return None
    local = path[len(prefix) :]
    for template, operations in spec["paths"].items():
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        found = re.match(pattern, local)
        if found and method.lower() in operations:
            return operations[method.lower()], found.groupdict()
    return None


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _unknown_properties(spec: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> Iterator[str]:
    schema = _resolve(spec, schema)
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key in schema["properties"]:
                yield from _unknown_properties(spec, schema["properties"][key], item, f"{where}.{key}")
            elif not schema.get("additionalProperties"):
                yield f"{where}.{key}"


def _problems(spec: dict[str, Any], request: RecordedRequest) -> list[str]:
    found = _operation(spec, request.method, request.path)
    if found is None:
        return [f"{request.method} {request.path}: no such operation in the spec"]
    operation, path_params = found
    parameters = operation.get("parameters", [])
    problems = []
    declared = {p["name"] for p in parameters if p["in"] == "query"}
    problems += [f"query parameter {name!r} not in the spec" for name in set(request.query) - declared]
    for p in parameters:
        if p["in"] == "path" and p.get("type") == "integer" and not path_params[p["name"]].isdigit():
            problems.append(f"path parameter {p['name']} is not an integer")
    if not request.headers.get("api-key"):
        problems.append("no api-key header, which the spec's securityDefinitions name")
    body = next((p for p in parameters if p["in"] == "body"), None)
    if body is None:
        return problems + (["a body was sent to an operation that takes none"] if request.body else [])
    if request.headers.get("content-type", "").split(";")[0] not in spec["consumes"]:
        problems.append("content type not in the spec's consumes")
    registry = Registry().with_resource(BASE, Resource.from_contents(spec, default_specification=DRAFT4))
    validator = Draft4Validator({"$ref": BASE + body["schema"]["$ref"]}, registry=registry)
    problems += [f"body: {error.message}" for error in validator.iter_errors(request.json)]
    problems += [f"body has {name}, which the schema does not name"
                 for name in _unknown_properties(spec, body["schema"], request.json, "body")]  # fmt: skip
    return problems


def test_every_recorded_request_is_described_by_the_spec(spec: dict[str, Any], recorded: list[RecordedRequest]) -> None:
    problems = {f"{r.method} {r.path}": _problems(spec, r) for r in recorded}
    assert {call: found for call, found in problems.items() if found} == {}
    used = {found[0]["operationId"] for r in recorded if (found := _operation(spec, r.method, r.path))}
    assert used == USED, "the run should exercise every operation the adapter uses"


def test_the_checker_catches_what_the_spec_forbids(spec: dict[str, Any], recorded: list[RecordedRequest]) -> None:
    add = next(r for r in recorded if r.path.endswith("/contacts/add"))
    too_many = {"emails": [f"p{i}@example.com" for i in range(151)]}
    bad = [
        RecordedRequest(**{**vars(add), "json": too_many}),
        RecordedRequest(**{**vars(add), "json": {"emails": ["a@b.c"], "email": "typo"}}),
        RecordedRequest(**{**vars(add), "path": add.path.replace("/add", "/append")}),
        RecordedRequest(**{**vars(add), "path": add.path.replace("/12/", "/twelve/")}),
        RecordedRequest(**{**vars(add), "headers": {k: v for k, v in add.headers.items() if k != "api-key"}}),
    ]
    assert all(_problems(spec, r) for r in bad), [_problems(spec, r) for r in bad]


def test_the_fakes_answers_have_the_specs_shapes(spec: dict[str, Any]) -> None:
    definitions = spec["definitions"]
    registry = Registry().with_resource(BASE, Resource.from_contents(spec, default_specification=DRAFT4))

    def check(name: str, body: Any) -> None:
        Draft4Validator({"$ref": f"{BASE}#/definitions/{name}"}, registry=registry).validate(body)
        assert name in definitions

    fake = FakeBrevo(KEY, lists={12: "Enterprise"}, unlimited=True)
    fake.seed_contact("ann@example.com")
    headers = {"api-key": KEY}
    with fake.serve() as base_url:
        added = httpx.post(
            f"{base_url}/v3/contacts/lists/12/contacts/add",
            headers=headers,
            json={"emails": ["ann@example.com", "x@example.com"]},
        )
        errors = [
            httpx.get(f"{base_url}/v3/account"),
            httpx.get(f"{base_url}/v3/contacts/lists/99", headers=headers),
            httpx.post(
                f"{base_url}/v3/contacts/lists/12/contacts/add", headers=headers, json={"emails": ["ann@example.com"]}
            ),
        ]
    assert added.status_code == 201
    check("postContactInfo", added.json())
    assert [e.status_code for e in errors] == [401, 404, 400]
    for answer in errors:
        check("errorModel", answer.json())
