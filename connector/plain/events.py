"""Pydantic models of the Plain webhook bodies we act on.

Only the fields the connector relies on are modelled, and only those are required:
Plain adds fields between webhook versions, so everything else is ignored rather than
rejected. What we do rely on (ids, the membership sets) is strict: an id must be a
non-empty string without whitespace, never a number that happens to coerce.

Timestamps are kept as strings here; :mod:`connector.plain.changes` parses them itself
because pydantic's lax datetime parsing also accepts bare unix numbers, which Plain never
sends and which would silently reorder events.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StrictInt, StringConstraints, model_validator

# Plain's own ids are `prefix_ULID` (<= 50 chars). We only insist on a usable key:
# printable ASCII without spaces, bounded, so it is safe as a primary key and log field.
ID_PATTERN = r"^[!-~]{1,256}$"
Id = Annotated[str, StringConstraints(strict=True, pattern=ID_PATTERN)]
# Any string JSON allows, NUL included: odd text is the store's and the CRMs' problem to
# hold (connector.text), never a reason to drop a membership change.
Text = Annotated[str, StringConstraints(strict=True)]

MEMBERSHIPS_CHANGED = "customer.customer_group_memberships_changed"
# The 2023 documentation's name, typo included; the corrected spelling is accepted too in
# case Plain ever fixed it without changing the payload shape.
LEGACY_MEMBERSHIPS_CHANGED = "customer.customer_groups_memberships_canged"
LEGACY_MEMBERSHIPS_CHANGED_FIXED = "customer.customer_groups_memberships_changed"
CUSTOMER_CREATED = "customer.customer_created"
CUSTOMER_UPDATED = "customer.customer_updated"
CUSTOMER_CHANGED = "customer.customer_changed"
CUSTOMER_DELETED = "customer.customer_deleted"
GROUP_CHANGED = "customer.customer_group_changed"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class EmailAddress(_Model):
    email: Text | None = None


class CustomerGroup(_Model):
    id: Id
    key: Text | None = None
    name: Text | None = None


class GroupMembership(_Model):
    customerGroupId: Id
    # Required by every schema, but only key/name come from it: a membership without it
    # is still a usable (customer, group id) pair.
    customerGroup: CustomerGroup | None = None


class Customer(_Model):
    id: Id
    email: EmailAddress | None = None
    externalId: Text | None = None
    fullName: Text | None = None


class CustomerWithMemberships(Customer):
    customerGroupMemberships: list[GroupMembership]


class MembershipsChangedPayload(_Model):
    """Versioned (2024-09-18+) shape: two full snapshots, after and before."""

    changeType: Text | None = None  # informative only; the diff is the truth
    customer: CustomerWithMemberships
    previousCustomer: CustomerWithMemberships

    @model_validator(mode="after")
    def _same_customer(self) -> MembershipsChangedPayload:
        # Diffing two different customers' sets would invent changes.
        if self.customer.id != self.previousCustomer.id:
            raise ValueError("customer.id and previousCustomer.id differ")
        return self


class LegacyMembershipsChangedPayload(_Model):
    """2023 shape: the sets are top-level and `customer` carries no memberships."""

    changeType: Text | None = None
    customer: Customer
    customerGroupMemberships: list[GroupMembership]
    previousCustomerGroupMemberships: list[GroupMembership]


class CustomerSnapshotPayload(_Model):
    """customer_created / customer_updated / customer_changed: the after-snapshot."""

    customer: Customer


class CustomerDeletedPayload(_Model):
    """customer_deleted only has the customer as it was before deletion."""

    previousCustomer: Customer


class GroupChangedPayload(_Model):
    """customer_group_changed: ADDED/UPDATED carry `customerGroup`, REMOVED only the previous."""

    changeType: Literal["ADDED", "UPDATED", "REMOVED"] | None = None
    customerGroup: CustomerGroup | None = None
    previousCustomerGroup: CustomerGroup | None = None

    @model_validator(mode="after")
    def _has_group(self) -> GroupChangedPayload:
        if self.changeType == "REMOVED":
            if self.previousCustomerGroup is None:
                raise ValueError("REMOVED without previousCustomerGroup")
        elif self.customerGroup is None and (self.changeType is not None or self.previousCustomerGroup is None):
            raise ValueError("customerGroup missing")
        return self

    @property
    def deleted(self) -> bool:
        # Without changeType, only a lone previousCustomerGroup can mean deletion.
        return self.changeType == "REMOVED" or (self.changeType is None and self.customerGroup is None)


class WebhookMetadata(_Model):
    # Only the attempt timestamp is used (replay window); the rest is typed for callers
    # that want it but never required.
    webhookTargetId: Text | None = None
    webhookTargetVersion: Text | None = None
    webhookDeliveryAttemptId: Text | None = None
    webhookDeliveryAttemptNumber: StrictInt | None = None
    webhookDeliveryAttemptTimestamp: Text | None = None


class Envelope(_Model):
    """The part of every event we need, whatever its type: the id and the event time."""

    id: Id
    type: Id | None = None
    timestamp: Text
    workspaceId: Text | None = None
    webhookMetadata: WebhookMetadata | None = None


class MembershipsChangedEvent(Envelope):
    payload: MembershipsChangedPayload


class LegacyMembershipsChangedEvent(Envelope):
    payload: LegacyMembershipsChangedPayload


class CustomerSnapshotEvent(Envelope):
    payload: CustomerSnapshotPayload


class CustomerDeletedEvent(Envelope):
    payload: CustomerDeletedPayload


class GroupChangedEvent(Envelope):
    payload: GroupChangedPayload


# Event type -> envelope model; a type not listed is acknowledged and ignored.
EVENT_MODELS: dict[str, type[Envelope]] = {
    MEMBERSHIPS_CHANGED: MembershipsChangedEvent,
    LEGACY_MEMBERSHIPS_CHANGED: LegacyMembershipsChangedEvent,
    LEGACY_MEMBERSHIPS_CHANGED_FIXED: LegacyMembershipsChangedEvent,
    CUSTOMER_CREATED: CustomerSnapshotEvent,
    CUSTOMER_UPDATED: CustomerSnapshotEvent,
    CUSTOMER_CHANGED: CustomerSnapshotEvent,
    CUSTOMER_DELETED: CustomerDeletedEvent,
    GROUP_CHANGED: GroupChangedEvent,
}

MEMBERSHIP_TYPES = frozenset({MEMBERSHIPS_CHANGED, LEGACY_MEMBERSHIPS_CHANGED, LEGACY_MEMBERSHIPS_CHANGED_FIXED})


def model_for(event_type: str | None, payload: Any) -> type[Envelope]:
    """Pick the envelope model for a type, by payload shape for membership events.

    The two membership generations are told apart by their shape, not by the name, so a
    legacy-shaped body under the new name (or the reverse) is still read correctly.
    """
    if event_type in MEMBERSHIP_TYPES and isinstance(payload, dict):
        if "previousCustomerGroupMemberships" in payload:
            return LegacyMembershipsChangedEvent
        if "previousCustomer" in payload:
            return MembershipsChangedEvent
    return EVENT_MODELS.get(event_type, Envelope) if event_type else Envelope
