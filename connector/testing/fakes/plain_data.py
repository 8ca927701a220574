"""The data behind the fake Plain API: groups, customers, memberships, webhook targets.

Root fields resolve through ``resolve_<field>`` methods; nested fields are dict keys (a
callable value is called by graphql-core's default resolver with ``(info, **arguments)``,
arguments under their GraphQL names), so the fake executes the real schema and never
answers a field it was not asked.

Pagination follows Relay and Plain's rules: ``first`` defaults to 25 and may not exceed
100; a cursor encodes the sort key of its node, so ``after`` means "sorts after this
key", not "after the n-th item". That is the property backfill has to live with: a
customer who joins a group while it is being read and sorts before the cursor is not
returned (the webhook for that join brings it instead).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError

__all__ = ["KNOWN_EVENT_TYPES", "MAX_TARGETS", "PlainData", "fake_error"]

DEFAULT_PAGE, MAX_PAGE = 25, 100
#: Plain allows at most 25 webhook targets a workspace (docs/architecture.md, "Facts we design for").
MAX_TARGETS = 25
#: event types a webhook target may subscribe to (a subset of Plain's; enough to tell a typo)
KNOWN_EVENT_TYPES = frozenset(
    {
        "customer.customer_created",
        "customer.customer_updated",
        "customer.customer_deleted",
        "customer.customer_group_changed",
        "customer.customer_group_memberships_changed",
        "thread.thread_created",
        "thread.thread_status_transitioned",
        "thread.email_received",
    }
)

Key = tuple[Any, ...]


def fake_error(message: str, code: str) -> GraphQLError:
    """A GraphQL error as Plain reports one: the machine-readable part is ``extensions.code``."""
    return GraphQLError(message, extensions={"code": code})


def _stamp(at: float) -> dict[str, str]:
    iso = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"iso8601": iso, "unixTimestamp": str(int(at * 1000))}


def _cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _uncursor(cursor: str) -> Key:
    try:
        return tuple(json.loads(base64.urlsafe_b64decode(cursor.encode())))
    except ValueError:
        raise fake_error(f"invalid cursor {cursor!r}", "BAD_USER_INPUT") from None


def connection(
    items: Iterable[Any],
    key: Callable[[Any], Key],
    node: Callable[[Any], dict[str, Any]],
    args: dict[str, Any],
    *,
    reverse: bool = False,
    default: int = DEFAULT_PAGE,
) -> dict[str, Any]:
    """One Relay page of ``items`` in ``key`` order; the cursor is the node's sort key."""
    if args.get("last") is not None or args.get("before") is not None:
        raise fake_error("the fake Plain API pages forwards only (first/after)", "FAKE_UNSUPPORTED")
    first = default if args.get("first") is None else args["first"]
    if not 0 <= first <= MAX_PAGE:
        raise fake_error(f"first must be between 0 and {MAX_PAGE}", "BAD_USER_INPUT")
    ordered = sorted(items, key=key, reverse=reverse)
    after = args.get("after")
    if after is not None:
        mark = _uncursor(after)
        ordered = [i for i in ordered if (key(i) < mark if reverse else key(i) > mark)]
    page = ordered[:first]
    edges = [{"cursor": _cursor(key(i)), "node": node(i)} for i in page]
    return {
        "edges": edges,
        "pageInfo": {
            "hasNextPage": len(ordered) > first,
            "hasPreviousPage": after is not None,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
        "totalCount": len(ordered),
    }


@dataclass
class Group:
    id: str
    key: str
    name: str
    external_id: str | None = None
    created: float = field(default_factory=time.time)


@dataclass
class Customer:
    id: str
    full_name: str
    email: str
    external_id: str | None = None
    created: float = field(default_factory=time.time)
    #: group id -> join order (memberships page in the order they were made)
    groups: dict[str, int] = field(default_factory=dict)


class PlainData:
    """In-memory workspace. Mutate it from tests (or from the fake's ``on_read`` hook)."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self.customers: dict[str, Customer] = {}
        self.targets: dict[str, dict[str, Any]] = {}
        self.versions: list[dict[str, Any]] = [
            {"version": "2024-09-18", "isDeprecated": False, "isLatest": False},
            {"version": "2025-08-06", "isDeprecated": False, "isLatest": False},
            {"version": "2026-02-27", "isDeprecated": False, "isLatest": False},
            {"version": "2026-04-21", "isDeprecated": False, "isLatest": True},
        ]
        #: reads of ``customers`` with no group filter: Plain answers those with everyone
        self.unfiltered_reads = 0
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_01FAKE{next(self._ids):020d}"

    # -- arranging a workspace -------------------------------------------------------

    def add_group(self, key: str, name: str | None = None, *, external_id: str | None = None) -> str:
        group = Group(self._new_id("cg"), key, name or key.title(), external_id)
        self.groups[group.id] = group
        return group.id

    def add_customer(
        self, full_name: str, email: str, *, groups: Iterable[str] = (), external_id: str | None = None
    ) -> str:
        customer = Customer(self._new_id("c"), full_name, email, external_id)
        self.customers[customer.id] = customer
        for group in groups:
            self.join(customer.id, group)
        return customer.id

    def group_id(self, key_or_id: str) -> str:
        if key_or_id in self.groups:
            return key_or_id
        return next(g.id for g in self.groups.values() if g.key == key_or_id)

    def join(self, customer_id: str, group: str) -> None:
        with self._lock:
            self.customers[customer_id].groups.setdefault(self.group_id(group), next(self._ids))

    def leave(self, customer_id: str, group: str) -> None:
        with self._lock:
            self.customers[customer_id].groups.pop(self.group_id(group), None)

    def members(self, group: str) -> set[str]:
        gid = self.group_id(group)
        with self._lock:
            return {c.id for c in self.customers.values() if gid in c.groups}

    # -- resolvers: Query ---------------------------------------------------------------

    def resolve_customerGroups(self, _info: Any, **args: Any) -> dict[str, Any]:
        wanted = set((args.get("filters") or {}).get("externalIds") or ())
        with self._lock:
            groups = [g for g in self.groups.values() if not wanted or g.external_id in wanted]
        return connection(groups, lambda g: (g.key, g.id), self._group_node, args)

    def resolve_customers(self, _info: Any, **args: Any) -> dict[str, Any]:
        filters = args.get("filters") or {}
        wanted = set(filters.get("customerGroupIds") or ())
        keys = set(filters.get("customerGroupKeys") or ())
        with self._lock:
            wanted |= {g.id for g in self.groups.values() if g.key in keys}
            if not filters.get("customerGroupIds") and not filters.get("customerGroupKeys"):
                self.unfiltered_reads += 1  # an empty list is no filter at all, as in Plain
                chosen = list(self.customers.values())
            else:
                chosen = [c for c in self.customers.values() if wanted & c.groups.keys()]
        sort = args.get("sortBy") or {"field": "FULL_NAME", "direction": "ASC"}
        return connection(
            chosen, lambda c: (c.full_name, c.id), self._customer_node, args, reverse=sort["direction"] == "DESC"
        )

    def resolve_customer(self, _info: Any, customerId: str) -> dict[str, Any] | None:
        found = self.customers.get(customerId)
        return self._customer_node(found) if found else None

    def resolve_webhookTargets(self, _info: Any, **args: Any) -> dict[str, Any]:
        with self._lock:
            targets = list(self.targets.values())
        return connection(targets, lambda t: (t["_seq"], t["id"]), dict, args)

    def resolve_webhookVersions(self, _info: Any, **args: Any) -> dict[str, Any]:
        return connection(self.versions, lambda v: (v["version"],), dict, args)

    # -- resolvers: Mutation ------------------------------------------------------------

    def resolve_createWebhookTarget(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        version = input.get("version") or next(v["version"] for v in self.versions if v["isLatest"])
        problem = self._target_problem(input["url"], input["eventSubscriptions"], version)
        if problem is None and len(self.targets) >= MAX_TARGETS:
            problem = _mutation_error(f"a workspace has at most {MAX_TARGETS} webhook targets", "limit_reached")
        if problem is not None:
            return {"webhookTarget": None, "error": problem}
        now = _stamp(time.time())
        target = {
            "id": self._new_id("whTarget"), "url": input["url"], "description": input["description"],
            "eventSubscriptions": [{"eventType": s["eventType"]} for s in input["eventSubscriptions"]],
            "version": version, "isEnabled": input["isEnabled"], "createdAt": now, "updatedAt": now,
            "_seq": next(self._ids),
        }  # fmt: skip
        with self._lock:
            self.targets[target["id"]] = target
        return {"webhookTarget": target, "error": None}

    def resolve_updateWebhookTarget(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        target = self.targets.get(input["webhookTargetId"])
        if target is None:
            return {"webhookTarget": None, "error": _mutation_error("webhook target not found", "not_found")}
        url = (input.get("url") or {}).get("value", target["url"])
        subs = input.get("eventSubscriptions")
        version = (input.get("version") or {}).get("value", target["version"])
        problem = self._target_problem(url, subs if subs is not None else target["eventSubscriptions"], version)
        if problem is not None:
            return {"webhookTarget": None, "error": problem}
        target.update(url=url, version=version, updatedAt=_stamp(time.time()))
        if subs is not None:
            target["eventSubscriptions"] = [{"eventType": s["eventType"]} for s in subs]
        for name in ("isEnabled", "description"):
            if input.get(name) is not None:
                target[name] = input[name]["value"]
        return {"webhookTarget": target, "error": None}

    def resolve_deleteWebhookTarget(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            gone = self.targets.pop(input["webhookTargetId"], None)
        return {"error": None if gone else _mutation_error("webhook target not found", "not_found")}

    # -- nodes ---------------------------------------------------------------------------

    def _target_problem(self, url: str, subs: list[dict[str, Any]], version: str) -> dict[str, Any] | None:
        if not url.startswith(("https://", "http://")):
            return _mutation_error("url must be an http(s) URL", "input_validation", "url")
        unknown = sorted({s["eventType"] for s in subs} - KNOWN_EVENT_TYPES)
        if unknown:
            return _mutation_error(
                f"unknown event types: {', '.join(unknown)}", "input_validation", "eventSubscriptions"
            )
        if version not in {v["version"] for v in self.versions}:
            return _mutation_error(f"unknown webhook version {version}", "input_validation", "version")
        return None

    def _group_node(self, group: Group) -> dict[str, Any]:
        stamp = _stamp(group.created)
        return {"id": group.id, "key": group.key, "name": group.name, "color": "#000000",
                "externalId": group.external_id, "createdAt": stamp, "updatedAt": stamp}  # fmt: skip

    def _customer_node(self, customer: Customer) -> dict[str, Any]:
        stamp = _stamp(customer.created)

        def memberships(_info: Any, **args: Any) -> dict[str, Any]:
            with self._lock:
                joined = [(order, gid) for gid, order in customer.groups.items() if gid in self.groups]
            return connection(joined, lambda m: m, lambda m: self._membership_node(customer, m[1]), args)

        return {
            "id": customer.id, "externalId": customer.external_id, "fullName": customer.full_name,
            "shortName": customer.full_name.split(" ")[0], "isAnonymous": False,
            "email": {"email": customer.email, "isVerified": True, "verifiedAt": stamp},
            "createdAt": stamp, "updatedAt": stamp, "customerGroupMemberships": memberships,
        }  # fmt: skip

    def _membership_node(self, customer: Customer, group_id: str) -> dict[str, Any]:
        stamp = _stamp(customer.created)
        return {"customerId": customer.id, "customerGroup": self._group_node(self.groups[group_id]),
                "createdAt": stamp, "updatedAt": stamp}  # fmt: skip


def _mutation_error(message: str, code: str, field_name: str | None = None) -> dict[str, Any]:
    fields = [{"field": field_name, "message": message, "type": "VALIDATION"}] if field_name else []
    return {"message": message, "type": "VALIDATION", "code": code, "fields": fields}
