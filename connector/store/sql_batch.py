"""Accepting a whole group commit's events at once, under the same rules and primitives.

Per event, :func:`connector.store.core.accept_event` reads and writes about a dozen
rows with one small statement each, and on the receive path those statements were about
a quarter of the event loop (docs/performance.md). :class:`BatchTx` runs the very same
rules for every event of a group, in order, but:

- reads the rows the group's events can touch with a few ``IN (...)`` queries up front
  (:meth:`BatchTx.prefetch`) and answers the rules' reads from them;
- records each write (the SQL of :class:`~connector.store.sql.SqlTx`, so there is one
  copy of it), keeps what the write did to the row in that cache, and runs all of them at
  the end with ``executemany`` (:meth:`BatchTx.flush`).

The cache follows the writes exactly for the few primitives the common path uses (the
emulated ``ON CONFLICT`` updates below mirror their SQL in ``sql.py``). Any other
primitive (an email change, a deletion: the lifecycle rules) first flushes, then turns
the batch into a plain :class:`SqlTx` for the rest of the group, so it reads the tables.

Flushing may reorder writes only where that cannot matter: statements on different rows
commute (each writes exactly the row of its key and reads no other), so the writes go in
*waves*: a row's writes stay in order, a row moves to the next wave when its statement
changes, and one wave is one ``executemany`` per statement (which runs its rows in order,
so a row written twice by the same statement needs one wave, not two).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from connector.plain.changes import CustomerInfo, GroupInfo, ParsedEvent
from connector.store.base import Route
from connector.store.sql import SqlTx
from connector.store.sql_lifecycle import KEY, marks, wkey
from connector.store.tx import InboxStatus, Membership, Stamp, Stored, WorkKey

_Op = tuple[Hashable, str, Sequence[Any]]


class _Done:
    rowcount = 1


_DONE = _Done()


class _Recorder:
    """A connection that keeps the statements it is given, each under the row it writes."""

    __slots__ = ("ops", "row")

    def __init__(self) -> None:
        self.ops: list[_Op] = []
        self.row: Hashable = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Done:
        self.ops.append((self.row, sql, params))
        return _DONE


class BatchTx:
    """The :class:`~connector.store.tx.Tx` of a batch: cached reads, recorded writes."""

    def __init__(self, inner: SqlTx) -> None:
        self._inner = inner
        self._recorder = _Recorder()
        self._writes = type(inner)(self._recorder)
        self._live = True
        self._events: set[str] = set()  # ids already in the inbox or inserted by this batch
        self._event_ids: set[str] = set()  # ids the prefetch looked up
        self._customers: dict[str, Stored | None] = {}
        self._groups: dict[str, Stored | None] = {}
        self._group_ids: set[str] = set()  # groups whose keys are all in _keys
        self._keys: dict[str, tuple[str, Stamp] | None] = {}
        self._members: dict[tuple[str, str], Membership | None] = {}
        self._pairs: set[tuple[str, str]] = set()
        self._wanted: set[WorkKey] = set()  # applied keys the prefetch looked up
        self._applied: dict[WorkKey, tuple[bool, str] | None] = {}

    def __getattr__(self, name: str) -> Any:
        # A primitive the cache does not follow: write out what we hold and read the tables.
        self._detach()
        return getattr(self._inner, name)

    def _detach(self) -> None:
        if self._live:
            self.flush()
            self._live = False

    def _write(self, row: Hashable) -> SqlTx:
        self._recorder.row = row
        return self._writes

    # -- prefetch and flush -------------------------------------------------------------

    def prefetch(self, items: Iterable[tuple[ParsedEvent, Sequence[Sequence[Route]]]]) -> None:
        """Read every row the common path of these events' rules can touch (``routes[i]``
        serve ``event.changes[i]``, as in :func:`~connector.store.core.accept_event`)."""
        customers: set[str] = set()
        groups: set[str] = set()
        keys: set[str] = set()
        for event, routes in items:
            for change, change_routes in zip(event.changes, routes, strict=False):
                cid, gid = change.customer.id, change.group.id
                self._wanted.update(WorkKey(r.target, r.dest, cid, gid) for r in change_routes)
            self._event_ids.add(event.event_id)
            people = [event.customer] + [c.customer for c in event.changes]
            customers.update(c.id for c in people if c is not None)
            for group in [event.group] + [c.group for c in event.changes]:
                if group is not None:
                    groups.add(group.id)
                    if group.key is not None:
                        keys.add(group.key)
            self._pairs.update((c.customer.id, c.group.id) for c in event.changes)
        self._events.update(r[0] for r in self._select("event_id FROM inbox", ("event_id", self._event_ids)))
        self._load_customers(customers)
        self._load_groups(groups, keys)
        self._load_pairs(customers, groups)

    def _select(self, head: str, *where: tuple[str, Collection[str]], join: str = " AND ") -> list[Any]:
        """``SELECT head WHERE column IN (values) AND ...``, nothing if a list is empty.

        Each IN list is padded to a power of two (repeating a value changes nothing), so a
        few statement texts serve every group size: each new text is prepared anew.
        """
        clauses: list[str] = []
        params: list[str] = []
        for column, values in where:
            if not values:
                return []
            padded = list(values)
            size = 1 << (len(padded) - 1).bit_length()
            padded += [padded[0]] * (size - len(padded))
            clauses.append(f"{column} IN ({marks(size)})")
            params += padded
        return self._inner.run(f"SELECT {head} WHERE {join.join(clauses)}", params).fetchall()

    def _load_customers(self, ids: set[str]) -> None:
        self._customers.update(dict.fromkeys(ids))
        head = "customer_id, email, deleted, event_time, event_id FROM customers"
        for r in self._select(head, ("customer_id", ids)):
            self._customers[r[0]] = Stored(r[1], bool(r[2]), (r[3], r[4]))

    def _load_groups(self, ids: set[str], keys: set[str]) -> None:
        self._groups.update(dict.fromkeys(ids))
        for r in self._select("group_id, group_key, deleted, event_time, event_id FROM groups", ("group_id", ids)):
            self._groups[r[0]] = Stored(r[1], bool(r[2]), (r[3], r[4]))
        self._group_ids.update(ids)
        self._keys.update(dict.fromkeys(keys))
        where = [("group_id", ids), ("group_key", keys)] if keys else [("group_id", ids)]
        for r in self._select("group_key, group_id, event_time, event_id FROM group_keys", *where, join=" OR "):
            self._keys[r[0]] = (r[1], (r[2], r[3]))

    def _load_pairs(self, customers: set[str], groups: set[str]) -> None:
        if not self._pairs:
            return
        self._members.update(dict.fromkeys(self._pairs))
        head = "customer_id, group_id, member, event_time, event_id, first_time, first_id FROM memberships"
        for r in self._select(head, ("customer_id", customers), ("group_id", groups)):
            if (r[0], r[1]) in self._pairs:
                self._members[(r[0], r[1])] = Membership(bool(r[2]), (r[3], r[4]), (r[5], r[6]))
        if not self._wanted:
            return
        self._applied.update(dict.fromkeys(self._wanted))
        # every column of the primary key constrained, so SQLite looks rows up by it
        targets, dests = {k.target for k in self._wanted}, {k.dest for k in self._wanted}
        head = "target, dest, customer_id, group_id, member, note FROM applied"
        where = [("target", targets), ("dest", dests), ("customer_id", customers), ("group_id", groups)]
        for r in self._select(head, *where):
            key = WorkKey(r[0], r[1], r[2], r[3])
            if key in self._wanted:
                self._applied[key] = (bool(r[4]), r[5])

    def flush(self) -> None:
        """Run the recorded writes: wave by wave, one ``executemany`` per statement."""
        ops, self._recorder.ops = self._recorder.ops, []
        waves: list[dict[str, list[Sequence[Any]]]] = []
        last: dict[Hashable, tuple[int, str]] = {}
        for row, sql, params in ops:
            before = last.get(row)
            n = 0 if before is None else before[0] + (before[1] != sql)
            last[row] = (n, sql)
            if n == len(waves):
                waves.append({})
            waves[n].setdefault(sql, []).append(params)
        conn = self._inner.conn
        for wave in waves:
            for sql, rows in wave.items():
                conn.executemany(sql, rows)  # type: ignore[attr-defined]

    # -- the primitives of the common path ----------------------------------------------

    def insert_event(
        self, key: str, event_type: str | None, event_time: str | None, status: InboxStatus, now: float,
        reason: str | None = None, body: bytes | None = None,
    ) -> bool:  # fmt: skip
        if not self._live or key not in self._event_ids:
            self._detach()
            return self._inner.insert_event(key, event_type, event_time, status, now, reason, body)
        if key in self._events:
            return False
        self._events.add(key)
        self._write(("inbox", key)).insert_event(key, event_type, event_time, status, now, reason, body)
        return True

    def lock_pair(self, customer_id: str, group_id: str) -> None:
        self._inner.lock_pair(customer_id, group_id)

    def customer(self, customer_id: str) -> Stored | None:
        if not self._live:
            return self._inner.customer(customer_id)
        if customer_id not in self._customers:  # no write of this batch touched it
            self._customers[customer_id] = self._inner.customer(customer_id)
        return self._customers[customer_id]

    def upsert_customer(self, customer: CustomerInfo, stamp: Stamp, deleted: bool = False) -> None:
        if not self._live:
            return self._inner.upsert_customer(customer, stamp, deleted)
        # mirrors SqlTx.upsert_customer: newer stamps win, a missing email keeps the known one
        current = self.customer(customer.id)
        if current is None:
            self._customers[customer.id] = Stored(customer.email, deleted, stamp)
        elif stamp > current.stamp:
            email = customer.email if customer.email is not None else current.value
            self._customers[customer.id] = Stored(email, deleted, stamp)
        self._write(("customers", customer.id)).upsert_customer(customer, stamp, deleted)
        return None

    def group(self, group_id: str) -> Stored | None:
        if not self._live:
            return self._inner.group(group_id)
        if group_id not in self._groups:
            self._groups[group_id] = self._inner.group(group_id)
        return self._groups[group_id]

    def upsert_group(self, group: GroupInfo, stamp: Stamp, deleted: bool) -> None:
        if not self._live:
            return self._inner.upsert_group(group, stamp, deleted)
        if group.key is not None:
            self.bind_key(group.key, group.id, stamp)
        # mirrors SqlTx.put_group_row: newer stamps win, and a deletion is final whatever its stamp
        current = self.group(group.id)
        state = current
        if current is None:
            state = Stored(group.key, deleted, stamp)
        elif stamp > current.stamp:
            key = group.key if group.key is not None else current.value
            state = Stored(key, current.deleted or deleted, stamp)
        if deleted and state is not None:
            state = replace(state, deleted=True)
        self._groups[group.id] = state
        self._write(("groups", group.id)).put_group_row(group, stamp, deleted)
        return None

    def bind_key(self, key: str, group_id: str, stamp: Stamp) -> None:
        if not self._live:
            return self._inner.bind_key(key, group_id, stamp)
        if key not in self._keys:
            row = self._inner.run("SELECT group_id, event_time, event_id FROM group_keys WHERE group_key = ?", (key,))
            found = row.fetchone()
            self._keys[key] = None if found is None else (found[0], (found[1], found[2]))
        current = self._keys[key]
        if current is None or stamp > current[1]:
            self._keys[key] = (group_id, stamp)
        self._write(("group_keys", key)).bind_key(key, group_id, stamp)
        return None

    def keys_of_group(self, group_id: str) -> list[str]:
        if group_id not in self._group_ids:
            self._detach()
        if not self._live:
            return self._inner.keys_of_group(group_id)
        return [key for key, bound in self._keys.items() if bound is not None and bound[0] == group_id]

    def membership(self, customer_id: str, group_id: str) -> Membership | None:
        pair = (customer_id, group_id)
        if not self._live:
            return self._inner.membership(customer_id, group_id)
        if pair not in self._members:
            self._members[pair] = self._inner.membership(customer_id, group_id)
        return self._members[pair]

    def put_membership(self, customer_id: str, group_id: str, state: Membership) -> None:
        if not self._live:
            return self._inner.put_membership(customer_id, group_id, state)
        self._members[(customer_id, group_id)] = state
        self._write(("memberships", customer_id, group_id)).put_membership(customer_id, group_id, state)
        return None

    def _applied_row(self, key: WorkKey) -> tuple[bool, str] | None:
        if key not in self._applied:  # neither prefetched nor written by this batch
            row = self._inner.run(f"SELECT member, note FROM applied WHERE {KEY}", wkey(key)).fetchone()
            self._applied[key] = None if row is None else (bool(row[0]), row[1])
        return self._applied[key]

    def applied(self, key: WorkKey) -> bool | None:
        if not self._live:
            return self._inner.applied(key)
        row = self._applied_row(key)
        return None if row is None else row[0]

    def assume(self, key: WorkKey, member: bool) -> None:
        if not self._live:
            return self._inner.assume(key, member)
        self._applied[key] = (member, "assumed")
        self._write(("applied", key)).assume(key, member)
        return None

    def correct_assumed(self, key: WorkKey, member: bool) -> None:
        if not self._live:
            return self._inner.correct_assumed(key, member)
        row = self._applied_row(key)
        if row is not None and row[1] == "assumed":
            self._applied[key] = (member, "assumed")
        self._write(("applied", key)).correct_assumed(key, member)
        return None

    def put_work(self, key: WorkKey, desired: bool, event_id: str, now: float) -> None:
        if not self._live:
            return self._inner.put_work(key, desired, event_id, now)
        self._write(("outbox", key)).put_work(key, desired, event_id, now)
        return None

    def drop_work(self, key: WorkKey, desired: bool, event_id: str, now: float) -> None:
        if not self._live:
            return self._inner.drop_work(key, desired, event_id, now)
        self._write(("outbox", key)).drop_work(key, desired, event_id, now)
        return None
