"""Operator queries for PostgreSQL: status, dead letters and their replay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connector.store.base import DeadLetter, Route, StatusReport
from connector.store.postgres.accept import NOW, Cursor, lock_entities, notify, pair_key, reconcile


def _empty_target() -> dict[str, Any]:
    return {
        "backlog": 0, "due": 0, "in_flight": 0, "retrying": 0, "oldest_due_seconds": 0.0, "dead_letters": 0,
        "not_in_crm": 0, "applied": 0, "last_applied_at": None, "last_error": None,
    }  # fmt: skip


async def read_status(cur: Cursor) -> StatusReport:
    report = StatusReport()
    await cur.execute("SELECT status, count(*) FROM inbox GROUP BY status")
    report.inbox = {str(s): int(n) for s, n in await cur.fetchall()}
    targets: dict[str, dict[str, Any]] = {}

    def entry(name: Any) -> dict[str, Any]:
        return targets.setdefault(str(name), _empty_target())

    await cur.execute(
        f"WITH now AS (SELECT {NOW} AS t) SELECT target, count(*),"
        " count(*) FILTER (WHERE due_at <= now.t AND (lease_until IS NULL OR lease_until < now.t)),"
        " count(*) FILTER (WHERE lease_until >= now.t), count(*) FILTER (WHERE attempts > 0),"
        " greatest(0, now.t - min(due_at)),"
        " (array_agg(last_error ORDER BY due_at DESC) FILTER (WHERE last_error IS NOT NULL))[1]"
        " FROM outbox, now GROUP BY target, now.t"
    )
    for target, backlog, due, in_flight, retrying, oldest, error in await cur.fetchall():
        entry(target).update(
            backlog=backlog, due=due, in_flight=in_flight, retrying=retrying,
            oldest_due_seconds=round(float(oldest), 1), last_error=error,
        )  # fmt: skip
    await cur.execute("SELECT target, count(*) FROM dead_letters GROUP BY target")
    for target, count in await cur.fetchall():
        entry(target)["dead_letters"] = count
    await cur.execute(
        "SELECT target, note, count(*), max(applied_at) FROM applied WHERE note <> 'assumed' GROUP BY target, note"
    )
    for target, note, count, last in await cur.fetchall():
        e = entry(target)
        e["not_in_crm" if note == "not_in_crm" else "applied"] = count
        if last is not None and (e["last_applied_at"] is None or last > e["last_applied_at"]):
            e["last_applied_at"] = last
    report.targets = targets
    await cur.execute(
        "SELECT event_id, event_type, received_at, reason FROM inbox WHERE status = 'unprocessable'"
        " ORDER BY received_at DESC LIMIT 20"
    )
    report.unprocessable = [
        {"event_id": r[0], "event_type": r[1], "received_at": r[2], "reason": r[3]} for r in await cur.fetchall()
    ]
    return report


async def read_dead_letters(cur: Cursor, target: str | None, limit: int) -> list[DeadLetter]:
    await cur.execute(
        "SELECT d.id, d.target, d.dest, d.customer_id, d.group_id, g.group_key, c.email, d.desired, d.event_id,"
        " d.attempts, d.reason, d.failed_at FROM dead_letters d"
        " LEFT JOIN groups g ON g.group_id = d.group_id LEFT JOIN customers c ON c.customer_id = d.customer_id"
        " WHERE %(target)s::text IS NULL OR d.target = %(target)s ORDER BY d.id LIMIT %(limit)s",
        {"target": target, "limit": limit},
    )
    return [_dead_letter(r) for r in await cur.fetchall()]


def _dead_letter(r: tuple[Any, ...]) -> DeadLetter:
    return DeadLetter(
        id=r[0], target=r[1], dest=r[2], customer_id=r[3], group_id=r[4], group_key=r[5], email=r[6],
        action="add" if r[7] else "remove", event_id=r[8], attempts=r[9], reason=r[10], failed_at=r[11],
    )  # fmt: skip


async def replay_dead_letters(cur: Cursor, ids: Sequence[int] | None, target: str | None, channel: str) -> int:
    """Turn dead letters back into work against the desired state as it is now."""
    if ids is not None and not ids:
        return 0
    await cur.execute(
        "DELETE FROM dead_letters WHERE (%(target)s::text IS NULL OR target = %(target)s)"
        " AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s)) RETURNING target, dest, customer_id, group_id",
        {"target": target, "ids": list(ids) if ids is not None else None},
    )
    letters = [tuple(map(str, r)) for r in await cur.fetchall()]
    await lock_entities(cur, (pair_key(r[2], r[3]) for r in letters))
    woken = []
    for tgt, dest, customer_id, group_id in letters:
        await cur.execute(
            "SELECT member, event_id FROM memberships WHERE customer_id = %s AND group_id = %s",
            (customer_id, group_id),
        )
        state = await cur.fetchone()
        if state is None:
            continue
        desired, event_id = bool(state[0]), str(state[1])
        if await reconcile(cur, Route(tgt, dest), customer_id, group_id, desired, not desired, event_id):
            woken.append(tgt)
    await notify(cur, channel, woken)
    return len(woken)
