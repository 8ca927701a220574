"""The conformance suite every adapter passes: real HTTP against the adapter's fake CRM.

An adapter's test module subclasses :class:`AdapterConformance` and fills in the hooks::

    class TestMyCrmConformance(AdapterConformance):
        adapter_class = MyCrmAdapter
        supports_creation = True

        def make_fake(self):
            return FakeMyCrm(lists={"L1"})
        def target_config(self, base_url, *, create_missing=False):
            return {"type": "mycrm", "token": "tok-conformance-1", "base_url": base_url,
                    "create_missing_contacts": create_missing}
        def mapping_options(self):
            return {"list": "L1"}
        def seed_contact(self, fake, email):
            fake.contacts[email] = f"id-{len(fake.contacts)}"
        def is_member(self, fake, email):
            return email in fake.members["L1"]

Plain ``pytest`` runs it: each test starts the fake on loopback, runs the adapter in
``asyncio.run``, and checks outcomes and the fake's state. Trouble is arranged through
the fake's scripted knobs (:meth:`FakeServer.throttle_next` and friends); override the
``arrange_*`` hooks if only some calls of your adapter should fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, ClassVar, TypeVar

import pytest

from connector.adapters.base import Action, Adapter, Change, Outcome
from connector.redact import mask_email
from connector.testing.fakes.server import FakeServer

__all__ = ["AdapterConformance"]

T = TypeVar("T")

#: how early a retry may arrive relative to the delay the fake asked for (clock skew)
_EARLY_TOLERANCE = 0.05


class AdapterConformance:
    """Base class of an adapter's conformance tests. Not collected on its own."""

    adapter_class: ClassVar[type[Adapter]]
    #: False for targets with no notion of "contact not found" (webhook): the missing-
    #: contact tests are skipped and batches use existing contacts only.
    contacts_can_be_missing: ClassVar[bool] = True
    #: True if the adapter honours ``create_missing_contacts``.
    supports_creation: ClassVar[bool] = False
    group_id: ClassVar[str] = "cg_conformance"
    group_key: ClassVar[str] = "conformance"
    group_name: ClassVar[str] = "Conformance"

    # -- hooks: the adapter's test module fills these in -------------------------------

    def make_fake(self) -> FakeServer:
        """A fresh, not yet running, fake of this CRM, ready for :meth:`mapping_options`."""
        raise NotImplementedError

    def target_config(self, base_url: str, *, create_missing: bool = False) -> dict[str, Any]:
        """The ``targets.<name>`` block pointing at ``base_url``."""
        raise NotImplementedError

    def mapping_options(self) -> dict[str, Any]:
        """The mapping's options for this target (``{"list": "123"}``)."""
        return {}

    def seed_contact(self, fake: FakeServer, email: str) -> None:
        """Make a contact with ``email`` exist in the fake CRM (not in any group)."""
        if self.contacts_can_be_missing:
            raise NotImplementedError

    def is_member(self, fake: FakeServer, email: str) -> bool:
        """Is the contact in the group the mapping options name?"""
        raise NotImplementedError

    def member_count(self, fake: FakeServer, email: str) -> int:
        """How many times the contact is in the group (override if the fake can duplicate)."""
        return int(self.is_member(fake, email))

    def arrange_throttle(self, fake: FakeServer, retry_after: float) -> None:
        fake.throttle_next(retry_after)

    def arrange_server_error(self, fake: FakeServer, times: int = 1) -> None:
        fake.fail_next(503, times=times)

    def arrange_permanent_error(self, fake: FakeServer, message: str) -> None:
        fake.fail_next(400, message)

    def arrange_rejection(self, fake: FakeServer, email: str) -> bool:
        """Make the CRM refuse every change for ``email`` permanently, if the fake can.

        Return True if arranged: the batch test then expects "failed" for that change.
        """
        return False

    def secrets(self, adapter: Adapter) -> list[str]:
        """Values that must never show in a reason; HTTP adapters know theirs."""
        found = getattr(adapter, "secrets", None)
        return list(found()) if callable(found) else []

    # -- fixtures and helpers ----------------------------------------------------------

    @pytest.fixture
    def fake(self) -> Iterator[FakeServer]:
        server = self.make_fake()
        with server.serve():
            yield server

    @contextlib.asynccontextmanager
    async def started(self, fake: FakeServer, *, create_missing: bool = False) -> AsyncIterator[Adapter]:
        """The adapter under test, configured against ``fake``, started and closed."""
        assert fake.base_url, "the fake is not running"
        raw = self.target_config(fake.base_url, create_missing=create_missing)
        config = self.adapter_class.config_model.model_validate(raw)
        adapter = self.adapter_class("conformance", config)
        await adapter.start()
        try:
            yield adapter
        finally:
            await adapter.close()

    def contact(self, fake: FakeServer, *, exists: bool = True) -> str:
        """A fresh email; seeded in the fake when ``exists``."""
        email = f"conf-{uuid.uuid4().hex[:12]}@example.com"
        if exists:
            self.seed_contact(fake, email)
        return email

    def change(self, email: str, action: Action = "add", key: str = "k") -> Change:
        options = self.adapter_class.validate_options(self.mapping_options())
        return Change(
            key=key,
            action=action,
            customer_id=f"c_{email.split('@')[0]}",
            email=email,
            group_id=self.group_id,
            group_key=self.group_key,
            group_name=self.group_name,
            event_id=f"pEv_{uuid.uuid4().hex[:12]}",
            event_time="2026-01-01T00:00:00.000Z",
            full_name="Conformance Person",
            options=options,
        )

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(main)

    async def apply_one(self, adapter: Adapter, change: Change) -> Outcome:
        outcomes = await adapter.apply([change])
        assert len(outcomes) == 1, f"one change, {len(outcomes)} outcomes"
        return outcomes[0]

    # -- the suite ---------------------------------------------------------------------

    def test_add_twice_is_done_and_member_once(self, fake: FakeServer) -> None:
        email = self.contact(fake)

        async def scenario() -> list[Outcome]:
            async with self.started(fake) as adapter:
                return [await self.apply_one(adapter, self.change(email)) for _ in range(2)]

        assert [o.kind for o in self.run(scenario())] == ["done", "done"]
        assert self.member_count(fake, email) == 1

    def test_remove_twice_is_done_and_not_member(self, fake: FakeServer) -> None:
        email = self.contact(fake)

        async def scenario() -> list[Outcome]:
            async with self.started(fake) as adapter:
                assert (await self.apply_one(adapter, self.change(email))).kind == "done"
                assert self.is_member(fake, email)
                return [await self.apply_one(adapter, self.change(email, "remove")) for _ in range(2)]

        assert [o.kind for o in self.run(scenario())] == ["done", "done"]
        assert not self.is_member(fake, email)

    def test_remove_of_non_member_is_done(self, fake: FakeServer) -> None:
        email = self.contact(fake)

        async def scenario() -> Outcome:
            async with self.started(fake) as adapter:
                return await self.apply_one(adapter, self.change(email, "remove"))

        assert self.run(scenario()).kind == "done"
        assert not self.is_member(fake, email)

    def test_missing_contact_is_skipped_with_reason(self, fake: FakeServer) -> None:
        if not self.contacts_can_be_missing:
            pytest.skip("contacts cannot be missing in this target")
        email = self.contact(fake, exists=False)

        async def scenario() -> Outcome:
            async with self.started(fake) as adapter:
                return await self.apply_one(adapter, self.change(email))

        outcome = self.run(scenario())
        assert outcome.kind == "skipped", outcome
        assert outcome.reason and email not in outcome.reason
        assert not self.is_member(fake, email)

    def test_missing_contact_is_created_when_enabled(self, fake: FakeServer) -> None:
        if not (self.contacts_can_be_missing and self.supports_creation):
            pytest.skip("this target does not create contacts")
        email = self.contact(fake, exists=False)

        async def scenario() -> Outcome:
            async with self.started(fake, create_missing=True) as adapter:
                return await self.apply_one(adapter, self.change(email))

        assert self.run(scenario()).kind == "done"
        assert self.member_count(fake, email) == 1

    def test_short_throttle_is_honoured(self, fake: FakeServer) -> None:
        """A 429 asking for 1 s: done after waiting at least that long, or retry(≥ 1 s)."""
        email = self.contact(fake)
        self.arrange_throttle(fake, 1.0)

        async def scenario() -> Outcome:
            async with self.started(fake) as adapter:
                return await self.apply_one(adapter, self.change(email))

        outcome = self.run(scenario())
        throttled = [r for r in fake.requests if r.status == 429]
        assert throttled, "the arranged 429 was never sent"
        if outcome.kind == "retry":
            assert outcome.retry_after is not None and outcome.retry_after >= 0.75, outcome
            return
        assert outcome.kind == "done", outcome
        after = [r for r in fake.requests if r.at > throttled[0].at]
        assert after and after[0].at >= fake.retry_not_before - _EARLY_TOLERANCE, (
            f"retried {fake.retry_not_before - after[0].at:.2f}s before the vendor's delay"
        )
        assert self.is_member(fake, email)

    def test_long_throttle_becomes_retry_with_vendor_delay(self, fake: FakeServer) -> None:
        """A 429 asking for an hour is the runner's to wait, not the adapter's."""
        emails = [self.contact(fake) for _ in range(2)]
        self.arrange_throttle(fake, 3600)

        async def scenario() -> list[Outcome]:
            async with self.started(fake) as adapter:
                first = await self.apply_one(adapter, self.change(emails[0]))
                second = await self.apply_one(adapter, self.change(emails[1]))
                return [first, second]

        started = time.monotonic()
        first, second = self.run(scenario())
        assert time.monotonic() - started < 30, "the adapter sat on a long vendor delay"
        assert first.kind == "retry" and first.retry_after is not None, first
        assert 3500 <= first.retry_after <= 3700, first
        # The second change must not be sent into the same limit, nor wait it out.
        assert second.kind in ("retry", "done"), second

    def test_server_error_is_retried_then_done(self, fake: FakeServer) -> None:
        email = self.contact(fake)
        self.arrange_server_error(fake, times=1)

        async def scenario() -> Outcome:
            async with self.started(fake) as adapter:
                return await self.apply_one(adapter, self.change(email))

        assert self.run(scenario()).kind == "done"
        assert fake.log.counters["fault"] == 1
        assert self.is_member(fake, email)

    def test_dropped_connection_is_retried_then_done(self, fake: FakeServer) -> None:
        email = self.contact(fake)
        fake.drop_next()

        async def scenario() -> Outcome:
            async with self.started(fake) as adapter:
                return await self.apply_one(adapter, self.change(email))

        assert self.run(scenario()).kind == "done"
        assert fake.log.counters["dropped"] == 1
        assert self.is_member(fake, email)

    def test_permanent_error_fails_with_readable_redacted_reason(self, fake: FakeServer) -> None:
        email = self.contact(fake)

        async def scenario() -> tuple[Outcome, list[str]]:
            async with self.started(fake) as adapter:
                secrets = self.secrets(adapter)
                echo = " ".join(secrets)
                self.arrange_permanent_error(fake, f"Contact {email} is not allowed {echo}".strip())
                return await self.apply_one(adapter, self.change(email)), secrets

        outcome, secrets = self.run(scenario())
        assert outcome.kind == "failed", outcome
        reason = outcome.reason or ""
        assert "conformance" in reason and "400" in reason and "not allowed" in reason, reason
        assert email not in reason and mask_email(email) in reason, reason
        for secret in secrets:
            assert secret not in reason, "a secret leaked into the reason"
        assert fake.log.counters["fault"] == 1, "a permanent error must not be retried"

    def test_batch_outcomes_follow_their_changes(self, fake: FakeServer) -> None:
        """Mixed batch: each outcome at its change's index, state matches each change."""
        plan: list[tuple[Action, str]] = [
            ("add", "exists"),
            ("add", "missing"),
            ("remove", "exists"),
            ("add", "rejected"),
            ("add", "missing"),
            ("add", "exists"),
            ("add", "rejected"),
        ]
        emails, expected = [], []
        for _action, kind in plan:
            email = self.contact(fake, exists=kind != "missing" or not self.contacts_can_be_missing)
            if kind == "missing" and self.contacts_can_be_missing:
                expected.append("skipped")
            elif kind == "rejected" and self.arrange_rejection(fake, email):
                expected.append("failed")
            else:
                expected.append("done")
            emails.append(email)

        async def scenario() -> list[Outcome]:
            async with self.started(fake) as adapter:
                assert (await self.apply_one(adapter, self.change(emails[2]))).kind == "done"
                batch = [
                    self.change(e, action, key=str(i))
                    for i, (e, (action, _)) in enumerate(zip(emails, plan, strict=False))
                ]
                return await adapter.apply(batch)

        outcomes = self.run(scenario())
        assert [o.kind for o in outcomes] == expected
        for email, (action, _), kind in zip(emails, plan, expected, strict=False):
            assert self.is_member(fake, email) == (action == "add" and kind == "done"), email

    def test_check_online_is_clean_against_a_healthy_fake(self, fake: FakeServer) -> None:
        async def scenario() -> list[str]:
            async with self.started(fake) as adapter:
                return await adapter.check_online()

        assert self.run(scenario()) == []
