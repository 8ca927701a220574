"""Every request the adapter sends is one Mailchimp's OpenAPI spec describes.

The spec lives outside the repository (``../shared/specs/mailchimp``, see SOURCES.md
there); without it these tests skip, so a fresh clone still passes. The requests are the
ones FakeMailchimp recorded while the real adapter ran, so what is checked is what the
adapter actually put on the wire: method, path, query, auth scheme, content type, and
the JSON body against the operation's schema. Request bodies may not carry properties
the schema does not name (the spec itself allows extras; a typo would slip through).
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
from connector.adapters.mailchimp import MailchimpAdapter, MailchimpConfig
from connector.testing.fakes.log import RecordedRequest
from connector.testing.fakes.mailchimp import FakeMailchimp
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPECS = Path(__file__).resolve().parents[4] / "shared" / "specs" / "mailchimp"
KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0-us21"
AUD = "d4e5f6a7b8"
BASE = "urn:mailchimp-spec"
USED = {
    "getPing",
    "getListsId",
    "putListsIdMembersId",
    "postListMemberTags",
    "previewASegment",  # the spec's (odd) id for GET /lists/{list_id}/segments
    "postListsIdSegments",
    "postListsIdSegmentsId",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    files = sorted(SPECS.glob("*.yaml")) if SPECS.is_dir() else []
    if not files:
        pytest.skip(f"../shared/specs not present: no Mailchimp spec in {SPECS}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the file is 1.6 MB
    with files[0].open("rb") as stream:
        return yaml.load(stream, Loader=loader)


@pytest.fixture(scope="module")
def recorded() -> list[RecordedRequest]:
    """Requests of a realistic run: check, segment lookup and creation, tag and untag in
    bulk, a non-member skipped and one created."""
    fake = FakeMailchimp(KEY, audiences={AUD})
    fake.seed_member(AUD, "ann@example.com", tags={"Beta"})

    def change(email: str, tag: str, action: str = "add") -> Change:
        return Change(
            key=email + tag,
            action=action,
            customer_id="c",
            email=email,  # type: ignore[arg-type]
            group_id="cg",
            group_key="g",
            event_id="pEv",
            options={"tag": tag},
        )

    async def run(base_url: str, **extra: Any) -> None:
        config = MailchimpConfig.model_validate(
            {"type": "mailchimp", "api_key": KEY, "audience_id": AUD, "base_url": base_url, **extra}
        )
        adapter = MailchimpAdapter("mc", config)
        await adapter.start()
        try:
            assert await adapter.check_online([{"tag": "Enterprise"}]) == []
            outcomes = await adapter.apply(
                [
                    change("Ann@example.com", "Enterprise"),
                    change("ann@example.com", "Beta", "remove"),
                    change("new@example.com", "Enterprise"),
                ]
            )
            assert [o.kind for o in outcomes] == ["done", "done", "done" if extra else "skipped"]
        finally:
            await adapter.close()

    with fake.serve() as base_url:
        asyncio.run(run(base_url))
        asyncio.run(run(base_url, create_missing_contacts=True, status_if_new="transactional"))
    return fake.requests


def _operation(spec: dict[str, Any], method: str, path: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    prefix = httpx.URL(spec["servers"][0]["url"]).path.rstrip("/")  # "/3.0"
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
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in schema["properties"]:
                yield from _unknown_properties(spec, schema["properties"][key], item, f"{where}.{key}")
            elif not extra:
                yield f"{where}.{key}"
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _unknown_properties(spec, schema["items"], item, f"{where}[{index}]")


def _problems(spec: dict[str, Any], request: RecordedRequest) -> list[str]:
    found = _operation(spec, request.method, request.path)
    if found is None:
        return [f"{request.method} {request.path}: no such operation in the spec"]
    operation, path_params = found
    problems = []
    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    problems += [f"query parameter {name!r} not in the spec" for name in set(request.query) - declared]
    if "subscriber_hash" in path_params and not re.fullmatch(r"[0-9a-f]{32}", path_params["subscriber_hash"]):
        problems.append("subscriber_hash is not an MD5 hex digest")
    if not request.headers.get("authorization", "").startswith("Basic "):
        problems.append("not HTTP Basic auth, which the spec's securitySchemes name")
    body_spec = operation.get("requestBody")
    if body_spec is None:
        return problems + (["a body was sent to an operation that takes none"] if request.body else [])
    content_type = request.headers.get("content-type", "").split(";")[0]
    if content_type not in body_spec["content"]:
        return [*problems, f"content type {content_type!r} not accepted"]
    schema = body_spec["content"][content_type]["schema"]
    registry = Registry().with_resource(BASE, Resource.from_contents(spec, default_specification=DRAFT4))
    validator = Draft4Validator({"$ref": BASE + schema["$ref"]}, registry=registry)
    problems += [f"body: {error.message}" for error in validator.iter_errors(request.json)]
    problems += [
        f"body has {name}, which the schema does not name"
        for name in _unknown_properties(spec, schema, request.json, "body")
    ]
    return problems


def test_every_recorded_request_is_described_by_the_spec(spec: dict[str, Any], recorded: list[RecordedRequest]) -> None:
    problems = {f"{r.method} {r.path}": _problems(spec, r) for r in recorded}
    assert {call: found for call, found in problems.items() if found} == {}
    operations = [_operation(spec, r.method, r.path) for r in recorded]
    used = {found[0]["operationId"] for found in operations if found}
    assert used == USED, "the run should exercise every operation the adapter uses"


def test_the_checker_catches_what_the_spec_forbids(spec: dict[str, Any], recorded: list[RecordedRequest]) -> None:
    """The checks above can fail: a bad status, a misspelt key, a wrong path are found."""
    tags = next(r for r in recorded if r.path.endswith("/tags"))
    put = next(r for r in recorded if r.method == "PUT")
    bad = [
        RecordedRequest(**{**vars(tags), "json": {"tags": [{"name": "A", "status": "on"}]}}),
        RecordedRequest(**{**vars(put), "json": {"email_address": "a@b.c", "status_if_New": "pending"}}),
        RecordedRequest(**{**vars(tags), "path": tags.path.replace("/tags", "/tag")}),
        RecordedRequest(**{**vars(tags), "query": {"bogus": "1"}}),
    ]
    assert all(_problems(spec, r) for r in bad), [_problems(spec, r) for r in bad]


def test_the_fakes_errors_are_problem_detail_documents(spec: dict[str, Any]) -> None:
    schema = spec["components"]["schemas"]["Problem_Detail_Document"]
    fake = FakeMailchimp(KEY, audiences={AUD})
    with fake.serve() as base_url:
        answers = [
            httpx.get(f"{base_url}/3.0/ping"),
            httpx.get(f"{base_url}/3.0/lists/nope", auth=("x", KEY)),
            httpx.post(f"{base_url}/3.0/lists/{AUD}/members/{'0' * 32}/tags", auth=("x", KEY), json={"tags": []}),
        ]
    for answer in answers:
        assert answer.status_code in (401, 404)
        Draft4Validator(schema).validate(answer.json())


def _validate_answer(spec: dict[str, Any], schema_name: str, answer: Any) -> list[str]:
    registry = Registry().with_resource(BASE, Resource.from_contents(spec, default_specification=DRAFT4))
    validator = Draft4Validator({"$ref": f"{BASE}#/components/schemas/{schema_name}"}, registry=registry)
    return [error.message for error in validator.iter_errors(answer)]


def test_the_fakes_segment_answers_match_the_spec(spec: dict[str, Any]) -> None:
    """What the adapter reads (ids, names, total_items, errors) is where the spec says."""
    fake = FakeMailchimp(KEY, audiences={AUD})
    fake.seed_member(AUD, "ann@example.com", tags={"Old"})
    segment = fake.seed_segment(AUD, "Old")
    with fake.serve() as base_url, httpx.Client(base_url=f"{base_url}/3.0", auth=("x", KEY)) as api:
        listed = api.get(f"/lists/{AUD}/segments", params={"type": "static"}).json()
        created = api.post(f"/lists/{AUD}/segments", json={"name": "New", "static_segment": []}).json()
        batch = api.post(
            f"/lists/{AUD}/segments/{segment}",
            json={"members_to_add": ["nobody@example.com"], "members_to_remove": ["ann@example.com"]},
        ).json()
    assert _validate_answer(spec, "Collection_of_Segments", listed) == []
    assert _validate_answer(spec, "List_7", created) == []
    assert _validate_answer(spec, "Batch_add_remove_List_members_to_from_static_segment", batch) == []
    schemas = spec["components"]["schemas"]
    batch_fields = schemas["Batch_add_remove_List_members_to_from_static_segment"]["properties"]
    assert {"total_added", "total_removed", "errors", "members_added", "members_removed"} <= set(batch)
    assert set(batch) <= set(batch_fields)
    assert set(batch["errors"][0]) == set(_resolve(spec, batch_fields["errors"]["items"])["properties"])
    assert set(listed) <= set(schemas["Collection_of_Segments"]["properties"])
    assert set(listed["segments"][0]) <= set(schemas["List_7"]["properties"])
    limits = _resolve(spec, {"$ref": "#/components/schemas/Members_to_add_remove_to_from_a_static_segment"})
    assert "maximum of 500" in limits["properties"]["members_to_add"]["description"]
