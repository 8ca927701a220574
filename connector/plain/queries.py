"""What the connector asks Plain's GraphQL API, and the records it reads from the answers.

Every operation the client sends is a constant here and listed in :data:`ALL`, so one test
can validate them all against Plain's schema. Field names follow the schema exactly
(``email`` is an object: ``email { email }``; memberships are a nested connection).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALL",
    "PlainCustomer",
    "PlainGroup",
    "WebhookTarget",
    "WebhookVersion",
    "read_customer",
    "read_group",
    "read_target",
    "read_version",
]

_PAGE_INFO = "pageInfo { hasNextPage endCursor }"
_MEMBERSHIPS = "edges { node { customerGroup { id key name externalId } } } " + _PAGE_INFO
_TARGET = "id url description version isEnabled eventSubscriptions { eventType }"

CUSTOMER_GROUPS = f"""query CustomerGroups($first: Int!, $after: String) {{
  customerGroups(first: $first, after: $after) {{
    edges {{ node {{ id key name externalId }} }}
    {_PAGE_INFO}
  }}
}}"""

# Sorted explicitly: cursors follow the sort order, and the order must not depend on
# whatever Plain's default is this year.
CUSTOMERS_IN_GROUPS = f"""query CustomersInGroups(
  $groupIds: [ID!]!, $first: Int!, $after: String, $withMemberships: Boolean!, $membershipsFirst: Int!
) {{
  customers(
    filters: {{customerGroupIds: $groupIds}}
    sortBy: {{field: FULL_NAME, direction: ASC}}
    first: $first
    after: $after
  ) {{
    edges {{
      node {{
        id externalId fullName email {{ email }}
        customerGroupMemberships(first: $membershipsFirst) @include(if: $withMemberships) {{ {_MEMBERSHIPS} }}
      }}
    }}
    {_PAGE_INFO}
  }}
}}"""

CUSTOMER_MEMBERSHIPS = f"""query CustomerMemberships($customerId: ID!, $first: Int!, $after: String) {{
  customer(customerId: $customerId) {{
    customerGroupMemberships(first: $first, after: $after) {{ {_MEMBERSHIPS} }}
  }}
}}"""

WEBHOOK_VERSIONS = f"""query WebhookVersions($first: Int!, $after: String) {{
  webhookVersions(first: $first, after: $after) {{
    edges {{ node {{ version isLatest isDeprecated }} }}
    {_PAGE_INFO}
  }}
}}"""

WEBHOOK_TARGETS = f"""query WebhookTargets($first: Int!, $after: String) {{
  webhookTargets(first: $first, after: $after) {{
    edges {{ node {{ {_TARGET} }} }}
    {_PAGE_INFO}
  }}
}}"""

_ERROR = "error { message type code fields { field message type } }"

CREATE_WEBHOOK_TARGET = f"""mutation CreateWebhookTarget($input: CreateWebhookTargetInput!) {{
  createWebhookTarget(input: $input) {{ webhookTarget {{ {_TARGET} }} {_ERROR} }}
}}"""

UPDATE_WEBHOOK_TARGET = f"""mutation UpdateWebhookTarget($input: UpdateWebhookTargetInput!) {{
  updateWebhookTarget(input: $input) {{ webhookTarget {{ {_TARGET} }} {_ERROR} }}
}}"""

DELETE_WEBHOOK_TARGET = f"""mutation DeleteWebhookTarget($input: DeleteWebhookTargetInput!) {{
  deleteWebhookTarget(input: $input) {{ {_ERROR} }}
}}"""

#: every operation the client can send (the schema test walks this)
ALL = (
    CUSTOMER_GROUPS,
    CUSTOMERS_IN_GROUPS,
    CUSTOMER_MEMBERSHIPS,
    WEBHOOK_VERSIONS,
    WEBHOOK_TARGETS,
    CREATE_WEBHOOK_TARGET,
    UPDATE_WEBHOOK_TARGET,
    DELETE_WEBHOOK_TARGET,
)


@dataclass(frozen=True)
class PlainGroup:
    id: str
    key: str
    name: str
    external_id: str | None = None


@dataclass(frozen=True)
class PlainCustomer:
    """A customer as read from the API; ``groups`` is None when memberships were not asked for."""

    id: str
    email: str | None
    external_id: str | None
    full_name: str
    groups: tuple[PlainGroup, ...] | None = None


@dataclass(frozen=True)
class WebhookVersion:
    version: str
    is_latest: bool
    is_deprecated: bool


@dataclass(frozen=True)
class WebhookTarget:
    id: str
    url: str
    version: str
    event_types: tuple[str, ...]
    is_enabled: bool
    description: str


def read_group(node: dict[str, Any]) -> PlainGroup:
    return PlainGroup(node["id"], node["key"], node["name"], node.get("externalId"))


def read_customer(node: dict[str, Any], groups: tuple[PlainGroup, ...] | None = None) -> PlainCustomer:
    email = node.get("email") or {}
    return PlainCustomer(node["id"], email.get("email"), node.get("externalId"), node["fullName"], groups)


def read_version(node: dict[str, Any]) -> WebhookVersion:
    return WebhookVersion(node["version"], bool(node["isLatest"]), bool(node["isDeprecated"]))


def read_target(node: dict[str, Any]) -> WebhookTarget:
    return WebhookTarget(
        id=node["id"],
        url=node["url"],
        version=node["version"],
        event_types=tuple(s["eventType"] for s in node["eventSubscriptions"]),
        is_enabled=bool(node["isEnabled"]),
        description=node["description"],
    )
