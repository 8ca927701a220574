"""The adapter contract: what every CRM target implements, and nothing more.

The delivery runner hands an adapter a batch of membership changes for one target and
gets back one outcome per change. The runner owns retries, leases, dead letters and
state; an adapter only talks to its CRM. It never needs to know about Plain, the store
or other targets, so a new CRM is one module that subclasses :class:`Adapter` and
registers under the ``plain_crm_sync.adapters`` entry point group.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from connector.adapters.change import Action, Change, Outcome, OutcomeKind
from connector.adapters.errors import OptionsError

__all__ = ["Action", "Adapter", "Change", "OptionsError", "Outcome", "OutcomeKind", "TargetConfig"]


class TargetConfig(BaseModel):
    """Base for an adapter's target config (the ``targets.<name>`` block).

    Subclasses add their fields; unknown keys are refused so a typo in the config is an
    error at ``check`` time, not a silent default.
    """

    model_config = ConfigDict(extra="forbid")
    type: str
    #: when the target's budget holds delivery back, how long the runner may wait for a
    #: batch to fill before sending it (0: never wait)
    linger_seconds: float = Field(2.0, ge=0, le=60)
    #: a customer's email changed in Plain: ``move`` takes the synced groups off the contact
    #: with the old email and onto the new one; ``keep`` leaves the old contact as it is
    on_email_change: Literal["move", "keep"] = "move"
    #: a customer was deleted in Plain: ``remove`` takes them out of every synced group here
    on_customer_deleted: Literal["keep", "remove"] = "keep"


class Adapter(abc.ABC):
    """Base class for a CRM target.

    Lifecycle: constructed once per configured target with its validated config,
    :meth:`start` before the first batch, :meth:`close` at shutdown. :meth:`apply` may be
    called concurrently for different batches only if ``max_concurrency`` > 1.
    """

    #: the ``type:`` name operators write in ``targets:``
    type_name: ClassVar[str]
    #: the pydantic model of this target's config block
    config_model: ClassVar[type[TargetConfig]] = TargetConfig
    #: the largest batch the runner hands to :meth:`apply`
    max_batch: ClassVar[int] = 100
    #: how many batches the runner may have in flight at once for one target
    max_concurrency: ClassVar[int] = 1

    def __init__(self, name: str, config: TargetConfig) -> None:
        self.name = name
        self.config = config

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Check a mapping's options for this target; raise :class:`OptionsError`.

        Returns the normalised options. The default accepts none, so that a mapping
        naming an option this adapter does not know is an error, not ignored.
        """
        if options:
            raise OptionsError(f"unknown option(s) {', '.join(sorted(options))}")
        return {}

    async def start(self) -> None:
        """Open connections, caches. Called once before the first :meth:`apply`."""

    async def close(self) -> None:
        """Release what :meth:`start` opened."""

    async def check_online(self, destinations: Sequence[Mapping[str, Any]] = ()) -> list[str]:
        """Problems an operator should fix before the first event (bad token, missing list).

        ``destinations`` are the validated options of every mapping that names this target,
        so an adapter can check each list or tag exists. Returns human-readable problems;
        empty means fine. Should only read from the CRM.
        """
        return []

    def budget_bound(self, changes_per_second: float) -> bool:
        """Is this target's rate or connection limit what holds delivery back, with
        changes arriving at ``changes_per_second``? Then the runner lets a batch fill
        (up to ``linger_seconds``) rather than spend a call on a few changes. The default,
        for targets without a limit: never."""
        return False

    @abc.abstractmethod
    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        """Apply a batch; return one :class:`Outcome` per change, in the same order.

        Must be idempotent: the runner re-sends whatever it did not see confirmed.
        Should not raise for CRM errors (return outcomes instead); an exception is
        treated as a transient failure of the whole batch.
        """

    async def members(self, options: Mapping[str, Any]) -> AsyncIterator[str]:
        """Optional hook for ``resync --verify``: every email the CRM holds at one destination now.

        ``options`` are a mapping's validated options (a list, a tag). Yield each member's
        email (any case; compared lower-cased), reading the CRM only. Raise
        :class:`~connector.adapters.errors.CrmError` if it cannot be read. An adapter that
        does not override this is skipped by ``--verify`` with a note (see
        :func:`lists_members`).
        """
        raise NotImplementedError(f"{self.type_name} cannot list a destination's members")
        yield ""  # pragma: no cover  (makes this an async generator, as overrides are)


def lists_members(adapter: Adapter) -> bool:
    """Whether ``adapter`` implements the :meth:`Adapter.members` hook."""
    return type(adapter).members is not Adapter.members
