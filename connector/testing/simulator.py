"""A Plain simulator: realistic signed webhook streams and the state they must produce.

It behaves the way Plain's delivery does (docs/architecture.md, "Facts we design for"): at-least-once, so some events are
delivered again with the same id and a higher attempt number; no ordering guarantee, so
deliveries are shuffled within a window; and people who join and leave a group within a
second. ``expected()`` is the membership every (customer, group) must end with, computed
from event times alone, which is what a correct service converges to whatever the order.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from connector.testing.plain import Generation, Group, membership_event, signed_request


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery attempt, ready to POST."""

    event_id: str
    attempt: int
    body: bytes
    headers: dict[str, str]


@dataclass
class _Planned:
    event_id: str
    customer_id: str
    before: list[Group]
    after: list[Group]
    time: datetime
    generation: Generation
    attempts: int = 1


@dataclass
class PlainSimulator:
    """Plans a stream of membership events; signs each delivery when it is taken.

    Signing at the moment of delivery keeps the attempt timestamp inside the receiver's
    replay window however long a test runs.
    """

    secret: str
    customers: int = 20
    groups: list[Group] = field(
        default_factory=lambda: [
            ("cg_ent", "enterprise", "Enterprise"),
            ("cg_beta", "beta", "Beta"),
            ("cg_vip", "vip", "VIP"),
        ]
    )
    seed: int = 0
    legacy_share: float = 0.3
    redelivery_share: float = 0.1
    burst_share: float = 0.1
    reorder_window: int = 8
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._members: dict[str, set[str]] = {self.customer_id(i): set() for i in range(self.customers)}
        self._planned: list[_Planned] = []
        self._clock = self.start
        self._counter = 0

    @staticmethod
    def customer_id(i: int) -> str:
        return f"c_sim{i:05d}"

    @staticmethod
    def email(customer_id: str) -> str:
        return f"{customer_id.removeprefix('c_')}@example.com"

    def _group(self, group_id: str) -> Group:
        return next(g for g in self.groups if g[0] == group_id)

    def _plan_one(self, customer_id: str, group_id: str) -> None:
        current = self._members[customer_id]
        before = [self._group(g) for g in sorted(current)]
        current ^= {group_id}
        after = [self._group(g) for g in sorted(current)]
        self._counter += 1
        self._clock += timedelta(milliseconds=self._rng.randint(1, 400))
        generation: Generation = "legacy" if self._rng.random() < self.legacy_share else "versioned"
        self._planned.append(
            _Planned(f"pEv_sim{self.seed:03d}{self._counter:07d}", customer_id, before, after, self._clock, generation)
        )

    def plan(self, changes: int) -> PlainSimulator:
        """Add ``changes`` membership toggles; some come as join-then-leave bursts."""
        made = 0
        while made < changes:
            customer_id = self.customer_id(self._rng.randrange(self.customers))
            group_id = self._rng.choice(self.groups)[0]
            self._plan_one(customer_id, group_id)
            made += 1
            if made < changes and self._rng.random() < self.burst_share:
                self._plan_one(customer_id, group_id)  # and straight back
                made += 1
        return self

    def expected(self) -> dict[tuple[str, str], bool]:
        """Final membership of every (customer, group) that any planned event touched."""
        final: dict[tuple[str, str], bool] = {}
        for planned in sorted(self._planned, key=lambda p: (p.time, p.event_id)):
            before = {g[0] for g in planned.before}
            after = {g[0] for g in planned.after}
            for group_id in before ^ after:
                final[(planned.customer_id, group_id)] = group_id in after
        return final

    def expected_members(self) -> set[tuple[str, str]]:
        return {pair for pair, member in self.expected().items() if member}

    def _order(self) -> list[tuple[_Planned, int]]:
        """Delivery order: every event once, some again later, shuffled within a window."""
        order: list[tuple[_Planned, int]] = []
        for planned in self._planned:
            order.append((planned, 1))
            if self._rng.random() < self.redelivery_share:
                order.append((planned, 2))
        for lo in range(0, len(order), self.reorder_window):
            window = order[lo : lo + self.reorder_window]
            self._rng.shuffle(window)
            order[lo : lo + self.reorder_window] = window
        # A redelivery may now precede its first attempt: Plain numbers attempts as sent.
        seen: dict[str, int] = {}
        renumbered = []
        for planned, _ in order:
            seen[planned.event_id] = seen.get(planned.event_id, 0) + 1
            renumbered.append((planned, seen[planned.event_id]))
        return renumbered

    def deliveries(self) -> Iterator[Delivery]:
        """Every delivery attempt in sending order, signed as it is taken."""
        for planned, attempt in self._order():
            event = membership_event(
                event_id=planned.event_id,
                customer_id=planned.customer_id,
                email=self.email(planned.customer_id),
                groups_before=planned.before,
                groups_after=planned.after,
                timestamp=planned.time,
                generation=planned.generation,
                attempt=attempt,
            )
            body, headers = signed_request(event, self.secret)
            yield Delivery(planned.event_id, attempt, body, headers)
