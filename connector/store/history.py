"""Read-only views for operators, over the :class:`~connector.store.core.Tx` primitives.

Part of the store contract like :mod:`connector.store.core`, but they decide nothing:
they gather a customer's desired, applied and pending state and the attempts kept, and
the newest events with where each stands per target.
"""

from __future__ import annotations

from connector.store.base import CustomerHistory, RecentEvent
from connector.store.core import Tx, WorkKey
from connector.store.history_records import PairHistory

#: attempts shown per customer at most (the retention window bounds them too)
MAX_ATTEMPTS = 500


def customer_history(tx: Tx, query: str, limit: int) -> list[CustomerHistory]:
    query = query.strip()
    if not query:
        return []
    return [_one_customer(tx, *row) for row in tx.find_customers(query, limit)]


def _one_customer(
    tx: Tx, customer_id: str, email: str | None, external_id: str | None, full_name: str | None
) -> CustomerHistory:
    desired = dict(tx.customer_memberships(customer_id))
    pairs: dict[WorkKey, PairHistory] = {}

    def pair(key: WorkKey) -> PairHistory:
        if key not in pairs:
            pairs[key] = PairHistory(key.target, key.dest, key.group_id, desired=desired.get(key.group_id))
        return pairs[key]

    for key, member, note, detail, applied_at in tx.customer_applied(customer_id):
        entry = pair(key)
        entry.applied, entry.applied_note, entry.applied_detail, entry.applied_at = member, note, detail, applied_at
    for key, attempts, error in tx.customer_work(customer_id):
        entry = pair(key)
        entry.pending, entry.pending_attempts, entry.pending_error = True, attempts, error
    for key in tx.customer_dead_letters(customer_id):
        pair(key).dead_letters += 1
    for key, attempt in tx.customer_attempts(customer_id, MAX_ATTEMPTS):
        pair(key).attempts.append(attempt)
    labels = tx.group_labels(sorted(desired.keys() | {k.group_id for k in pairs}))
    for entry in pairs.values():
        entry.group_key, entry.group_name = labels.get(entry.group_id, (None, None))
    routed = {k.group_id for k in pairs}
    unrouted = {g: m for g, m in desired.items() if g not in routed}
    ordered = sorted(pairs.values(), key=lambda p: (p.group_key or p.group_id, p.target, p.dest))
    return CustomerHistory(customer_id, email, external_id, full_name, unrouted, ordered)


def recent_events(tx: Tx, limit: int) -> list[RecentEvent]:
    rows = tx.recent_inbox(limit)
    ids = [r[0] for r in rows]
    outcomes: dict[str, dict[str, str]] = {i: {} for i in ids}
    if ids:
        for event_id, target, kind in tx.event_attempts(ids):
            outcomes[event_id][target] = kind  # oldest first: the newest attempt wins
        for event_id, target in tx.event_work(ids):
            outcomes[event_id][target] = "pending"
    return [RecentEvent(i, t, at, status, reason, outcomes[i]) for i, t, at, status, reason in rows]
