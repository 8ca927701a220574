"""Contract: every call the adapter makes, and every answer the fake gives, fits Intercom's
own OpenAPI description (2.14). The description is reference material outside the repo
(../shared/specs); without it these tests skip, so a fresh clone still passes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from connector.adapters.base import Change
from connector.adapters.intercom import IntercomAdapter, IntercomConfig
from connector.adapters.intercom_shapes import SEARCH_EMAILS, email_query
from connector.testing.fakes.intercom import FakeIntercom
from connector.testing.fakes.log import RecordedRequest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).resolve().parents[4] / "shared" / "specs" / "intercom" / "api.intercom.io-2.14.yaml"
TOKEN = "dG9rOmNvbnRyYWN0X2ludGVyY29tX3Rva2VuXzEy"
URN = "urn:intercom-2.14"


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema 2020-12: ``nullable`` becomes a null type, and
    refs point into the registry's copy of the whole description."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k not in ("nullable", "example", "examples")}
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#/"):
        out["$ref"] = URN + out["$ref"]
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


class Contract:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.registry: Registry = Registry().with_resource(URN, Resource(_json_schema(spec), DRAFT202012))
        self.templates = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in spec["paths"]]

    def operation(self, method: str, path: str) -> dict[str, Any]:
        """The described operation for a concrete call; fails if Intercom has none."""
        # Literal paths win over templates (/contacts/search is not /contacts/{id}).
        matches = sorted((t for rx, t in self.templates if rx.match(path)), key=lambda t: t.count("{"))
        for template in matches:
            op = self.spec["paths"][template].get(method.lower())
            if op:
                return op
        raise AssertionError(f"{method} {path} is not an operation in Intercom's 2.14 description")

    def validate(self, instance: Any, schema: dict[str, Any], what: str) -> None:
        validator = jsonschema.Draft202012Validator(_json_schema(schema), registry=self.registry)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, f"{what}: " + "; ".join(f"{list(e.path)}: {e.message[:200]}" for e in errors)

    def check_request(self, request: RecordedRequest) -> None:
        op = self.operation(request.method, request.path)
        what = f"{request.method} {request.path}"
        for param in op.get("parameters", []):
            if param["in"] == "header":
                value = request.headers.get(param["name"].lower())
                assert value is not None or not param.get("required"), f"{what}: no {param['name']}"
                if value is not None:
                    self.validate(value, param["schema"], f"{what} header {param['name']}")
        security = op.get("security", self.spec.get("security", []))
        if any("bearerAuth" in s for s in security):
            assert request.headers.get("authorization", "").startswith("Bearer "), what
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is None:
            assert not request.body, f"{what} sends a body the description does not have"
            return
        assert request.headers.get("content-type") == "application/json", what
        self.validate(request.json, self.branch(body["schema"], request.json, what), f"{what} body")

    def branch(self, schema: dict[str, Any], instance: Any, what: str) -> dict[str, Any]:
        """The ``oneOf`` branch a body means: the one naming all its keys and whose
        required keys it has. ``POST /tags``'s branches allow extra keys, so ``{name,
        users}`` is valid under two of them; the strict reading is the one Intercom means."""
        if "oneOf" not in schema or not isinstance(instance, dict):
            return schema
        fits = []
        for option in schema["oneOf"]:
            resolved = self.resolve(option)
            names, required = set(resolved.get("properties", {})), set(resolved.get("required", []))
            if set(instance) <= names and required <= set(instance):
                fits.append(option)
        assert len(fits) == 1, f"{what} body: {len(fits)} branches of oneOf name exactly its keys"
        return fits[0]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.spec
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def check_response(self, method: str, path: str, response: httpx.Response) -> None:
        op = self.operation(method, path)
        described = op["responses"].get(str(response.status_code))
        schema = (described or {}).get("content", {}).get("application/json", {}).get("schema")
        if schema is None:  # a status the description omits (409, 429…): Intercom's error shape
            assert response.status_code >= 400, f"{method} {path}: undescribed {response.status_code}"
            schema = {"$ref": "#/components/schemas/error"}
        self.validate(response.json(), schema, f"{method} {path} -> {response.status_code}")


@pytest.fixture(scope="module")
def contract() -> Contract:
    if not SPEC.exists():
        pytest.skip(f"../shared/specs not present: {SPEC} (reference material outside the repo)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return Contract(yaml.load(SPEC.read_text(), Loader=loader))


@pytest.fixture
def fake() -> Iterator[FakeIntercom]:
    server = FakeIntercom(TOKEN)
    with server.serve():
        yield server


def _change(email: str, action: str, tag: str, external_id: str | None = None) -> Change:
    return Change(
        key=email,
        action=action,
        customer_id="c",
        email=email,
        group_id="cg",  # type: ignore[arg-type]
        group_key="g",
        event_id="pEv",
        options={"tag": tag},
        external_id=external_id,
        full_name="Grace Hopper",
    )


def _exercise(fake: FakeIntercom, role: str) -> None:
    """Every call the adapter can make: search, tag lookup, attach, detach (attached and
    not), create (and its 409), /me."""
    fake.seed_contact("here@example.com")
    fake.seed_contact("also@example.com")
    fake.seed_contact("lagging@example.com", search_misses=1)

    async def main() -> None:
        raw = {
            "type": "intercom",
            "token": TOKEN,
            "base_url": fake.base_url,
            "create_missing_contacts": True,
            "contact_role": role,
        }
        adapter = IntercomAdapter("intercom", IntercomConfig.model_validate(raw))
        await adapter.start()
        try:
            assert await adapter.check_online([{"tag": "Enterprise"}]) == []
            batch = [
                _change("here@example.com", "add", "Enterprise"),
                _change("also@example.com", "add", "Enterprise"),
                _change("new@example.com", "add", "Beta", "u-1"),
                _change("lagging@example.com", "add", "Beta"),
                _change("here@example.com", "remove", "Beta"),
            ]
            outcomes = await adapter.apply(batch)
            outcomes += await adapter.apply([_change("here@example.com", "remove", "Enterprise")])
            assert [o.kind for o in outcomes] == ["done"] * 6, outcomes
        finally:
            await adapter.close()

    asyncio.run(main())


@pytest.mark.parametrize("role", ["user", "lead"])
def test_every_request_fits_the_description(contract: Contract, fake: FakeIntercom, role: str) -> None:
    _exercise(fake, role)
    seen = {(r.method, re.sub(r"/[0-9a-f]{24}|/\d+$", "/{id}", r.path)) for r in fake.requests}
    assert seen == {
        ("GET", "/me"),
        ("POST", "/contacts/search"),
        ("POST", "/tags"),
        ("POST", "/contacts"),
        ("POST", "/contacts/{id}/tags"),
        ("DELETE", "/contacts/{id}/tags/{id}"),
    }, seen
    assert 409 in {r.status for r in fake.requests} and 404 in {r.status for r in fake.requests}
    # The bulk calls are among them: an OR search for many emails, a tag call naming many contacts.
    searches = [r.json["query"] for r in fake.log.matching("POST", "/contacts/search")]
    assert any(q.get("operator") == "OR" and len(q["value"]) >= 2 for q in searches), searches
    assert any(len((r.json or {}).get("users", [])) == 2 for r in fake.log.matching("POST", "/tags"))
    for request in fake.requests:
        contract.check_request(request)


def test_the_bulk_calls_stay_within_the_documented_limits(contract: Contract) -> None:
    """15 filters per OR group (the search description) and tagging users by ``id``."""
    search = contract.operation("POST", "/contacts/search")
    assert f"max {SEARCH_EMAILS} filters for each AND or OR group" in search["description"]
    query = {"query": email_query([f"p{i}@example.com" for i in range(SEARCH_EMAILS)])}
    contract.validate(query, search["requestBody"]["content"]["application/json"]["schema"], "OR search")
    users = contract.resolve({"$ref": "#/components/schemas/tag_multiple_users_request"})
    assert set(users["required"]) == {"name", "users"} and "id" in users["properties"]["users"]["items"]["properties"]


def test_every_answer_of_the_fake_fits_the_description(contract: Contract, fake: FakeIntercom) -> None:
    contact = fake.seed_contact("here@example.com", external_id="u-9")
    headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14", "Accept": "application/json"}
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/me", None),
        ("POST", "/tags", {"name": "Enterprise"}),
        ("POST", "/tags", {"wrong": "field"}),
        ("POST", "/contacts/search", {"query": {"field": "email", "operator": "=", "value": "here@example.com"}}),
        ("POST", "/contacts/search", {"query": {"field": "email", "operator": "=", "value": "nobody@example.com"}}),
        ("POST", "/contacts", {"role": "user", "email": "new@example.com", "name": "N", "external_id": "u-1"}),
        ("POST", "/contacts", {"role": "user", "email": "here@example.com"}),
        ("POST", f"/contacts/{contact}/tags", {"id": fake.tag_id("Enterprise")}),
        ("POST", f"/contacts/{contact}/tags", {"id": "999999"}),
        ("POST", "/contacts/0000000000000000000000ff/tags", {"id": fake.tag_id("Enterprise")}),
        ("DELETE", f"/contacts/{contact}/tags/{fake.tag_id('Enterprise')}", None),
        ("DELETE", f"/contacts/{contact}/tags/{fake.tag_id('Enterprise')}", None),
    ]
    statuses = []
    with httpx.Client(base_url=str(fake.base_url), headers=headers) as client:
        for method, path, body in calls:
            response = client.request(method, path, json=body)
            statuses.append(response.status_code)
            contract.check_response(method, path, response)
        unauthorised = client.get("/me", headers={"Authorization": "Bearer nope-nope-nope"})
        contract.check_response("GET", "/me", unauthorised)
    assert statuses == [200, 200, 400, 200, 200, 200, 409, 200, 404, 404, 200, 404]
    assert unauthorised.status_code == 401
