"""Store rules beyond one membership change: email changes, deletions, a group's old keys.

Part of the contract in :mod:`connector.store.core` (its rule 6), over the same
:class:`~connector.store.core.Tx` primitives; what the operator chose comes in a
:class:`~connector.store.base.Policy`. All of it follows event time like the rest: a
customer or group event only acts when it is newer than what its row holds.

- **Email change.** An event newer than the customer's row whose email is another contact
  than the stored one (trimmed, case-insensitive: every CRM we know matches emails so).
  At each of the customer's destination keys: with ``on_email_change: move`` the group is
  removed from the old email by a separate outbox row addressed to that email (queued
  where the key's applied state is "member", or while an add is in flight, which may land
  on the old contact); with ``keep`` the old contact is left alone. Either way the key's
  applied state becomes "assumed not member" (it now describes the new contact) and the
  key is reconciled, so the new contact is added where desired. A late, older update is
  stale and does nothing. A pending removal from the new email (an earlier change away
  from it) is dropped; if a runner holds it, its outcome re-opens the key (see
  :func:`finish_old_contact`).
- **Customer deleted.** Newer than the customer's row: the customer is marked deleted and,
  at targets with ``on_customer_deleted: remove``, every key is reconciled to "not
  member". A newer event for the same id clears the mark; an older membership event still
  moves desired state but cannot add at those targets.
- **Group deleted.** Final whatever its time (Plain never revives a group). At destinations
  whose mapping says ``on_group_deleted: remove`` every member is reconciled to "not
  member", and later (older) membership events cannot add there.
- **Old keys.** ``group_keys`` remembers which group had each key last, so a mapping by key
  keeps routing the group's changes after Plain re-keys it, until another group takes the
  key. A mapping by id never depends on this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connector.plain.changes import CustomerInfo, GroupInfo
from connector.store.base import Finished, Policy, Route, WorkItem
from connector.store.tx import Stamp, Tx, WorkKey, finish_step, reconcile


def same_contact(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


@dataclass(frozen=True, slots=True)
class Gone:
    """Whether the pair's customer or group is deleted, and what each route does about it."""

    customer: bool
    group: bool
    policy: Policy

    def here(self, route: Route) -> bool:
        """True where a deletion means the customer must not be in the group at ``route``."""
        if self.customer and self.policy.customer_deleted(route.target) == "remove":
            return True
        return self.group and route.on_group_deleted == "remove"


def update_customer(
    tx: Tx, customer: CustomerInfo, stamp: Stamp, deleted: bool, policy: Policy, now: float
) -> tuple[bool, int]:
    """Write what the event says of the customer; (deleted now, work created)."""
    before = tx.customer(customer.id)
    tx.upsert_customer(customer, stamp, deleted)
    if before is None:
        return deleted, 0
    if stamp <= before.stamp:
        return before.deleted, 0
    work = 0
    if deleted and not before.deleted:
        work += _remove_customer(tx, customer.id, policy, stamp[1], now)
    new, old = customer.email, before.value
    if not deleted and new and old and not same_contact(old, new):
        work += _change_email(tx, customer.id, old, new, policy, stamp[1], now)
    return deleted, work


def update_group(tx: Tx, group: GroupInfo, stamp: Stamp, deleted: bool, policy: Policy, now: float) -> tuple[bool, int]:
    """Write what the event says of the group; (deleted now, work created)."""
    before = tx.group(group.id)
    tx.upsert_group(group, stamp, deleted)
    was = before is not None and before.deleted
    if was or not deleted:
        return was, 0
    return True, _remove_group(tx, group.id, policy, stamp[1], now)


def routes_of_group(tx: Tx, group_id: str, policy: Policy) -> list[Route]:
    """Every route the live mappings give the group, by id or by a key it had last."""
    found: dict[tuple[str, str], Route] = {}
    for name in (group_id, *tx.keys_of_group(group_id)):
        for route in policy.routing.get(name, ()):
            found.setdefault((route.target, route.dest), route)
    return list(found.values())


def with_former_keys(tx: Tx, group_id: str, routes: Sequence[Route], policy: Policy) -> Sequence[Route]:
    """``routes`` plus those of mappings written by a key the group had before."""
    if not policy.routing:
        return routes
    seen = {(r.target, r.dest) for r in routes}
    extra = [r for r in routes_of_group(tx, group_id, policy) if (r.target, r.dest) not in seen]
    return [*routes, *extra] if extra else routes


def deleted_either(tx: Tx, key: WorkKey) -> bool:
    """Without the policy at hand (replay, a finished item): any deletion wants no add."""
    customer = tx.customer(key.customer_id)
    group = tx.group(key.group_id)
    return bool((customer and customer.deleted) or (group and group.deleted))


def _wanted(tx: Tx, key: WorkKey, policy: Policy) -> bool:
    state = tx.membership(key.customer_id, key.group_id)
    if state is None or not state.member:
        return False
    customer = tx.customer(key.customer_id)
    group = tx.group(key.group_id)
    routes = routes_of_group(tx, key.group_id, policy)
    route = next((r for r in routes if (r.target, r.dest) == (key.target, key.dest)), Route(key.target, key.dest))
    gone = Gone(bool(customer and customer.deleted), bool(group and group.deleted), policy)
    return not gone.here(route)


def _change_email(tx: Tx, customer_id: str, old: str, new: str, policy: Policy, event_id: str, now: float) -> int:
    work = 0
    for key in tx.customer_keys(customer_id):
        tx.lock_pair(key.customer_id, key.group_id)
        if policy.email_change(key.target) == "move" and (tx.applied(key) or tx.adding_now(key, now)):
            tx.put_old_contact(key, old, event_id, now)
            work += 1
        for contact in tx.old_contacts(key):
            if same_contact(contact, new):
                tx.drop_old_contact(key, contact, now)
        tx.set_assumed(key, False)
        work += reconcile(tx, key, _wanted(tx, key, policy), False, event_id, now)
    return work


def _remove_customer(tx: Tx, customer_id: str, policy: Policy, event_id: str, now: float) -> int:
    work = 0
    for key in tx.customer_keys(customer_id):
        if policy.customer_deleted(key.target) == "remove":
            tx.lock_pair(key.customer_id, key.group_id)
            work += reconcile(tx, key, False, False, event_id, now)
    return work


def _remove_group(tx: Tx, group_id: str, policy: Policy, event_id: str, now: float) -> int:
    work = 0
    routes = [r for r in routes_of_group(tx, group_id, policy) if r.on_group_deleted == "remove"]
    for customer_id, member in tx.group_members(group_id) if routes else ():
        tx.lock_pair(customer_id, group_id)
        for route in routes:
            work += reconcile(
                tx, WorkKey(route.target, route.dest, customer_id, group_id), False, member, event_id, now
            )
    return work


def email_moved(tx: Tx, item: WorkItem) -> bool:
    """Whether ``item`` was claimed with an email the customer has since left."""
    if item.email is None:
        return False
    current = tx.customer(item.customer_id)
    return current is not None and current.value is not None and not same_contact(current.value, item.email)


def finish_old_contact(tx: Tx, result: Finished, key: WorkKey, now: float) -> None:
    """Applied state is the current contact's: an old contact's outcome moves none of it,
    unless the email has since come back to that contact, whose group we just removed."""
    item = result.item
    if result.kind not in ("done", "skipped") or finish_step(result, tx.work_row(item.id)) == "lost_lease":
        return
    current = tx.customer(key.customer_id)
    if current is None or current.value is None or not same_contact(current.value, item.contact):
        return
    tx.record_applied(key, False, "confirmed", result.reason, now)
    state = tx.membership(key.customer_id, key.group_id)
    if state is not None:
        reconcile(tx, key, state.member and not deleted_either(tx, key), False, item.event_id, now)


def requeue_old_contact(tx: Tx, key: WorkKey, contact: str, now: float) -> int:
    """A dead removal from an old email is still wanted unless that email is current again."""
    current = tx.customer(key.customer_id)
    if current is not None and current.value is not None and same_contact(current.value, contact):
        return 0
    tx.put_old_contact(key, contact, "replay", now)
    return 1


__all__ = ["Gone", "routes_of_group", "same_contact", "update_customer", "update_group"]
