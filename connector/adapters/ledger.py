"""The outcomes of one ``apply`` call, filled in as the changes settle.

Every adapter answers a batch with one outcome per change, in order, while its calls
settle changes in any order (per list, per member, per failed call). A :class:`Ledger`
keeps that bookkeeping in one place: the first outcome given to a change is final, and a
change nobody settled comes back as a retry (an adapter bug must not lose a change).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from connector.adapters.change import Change, Outcome

__all__ = ["NO_EMAIL", "Ledger", "has_email"]

#: the reason for a change whose customer has no email (every email-keyed CRM skips it)
NO_EMAIL = "customer has no email"


def has_email(change: Change) -> bool:
    """Does the change carry an email a CRM can match on (not missing, not blank)?"""
    return bool(change.email and change.email.strip())


class Ledger:
    """One outcome slot per change of a batch; ``changes[i]`` gets ``result()[i]``."""

    def __init__(self, target: str, changes: Sequence[Change]) -> None:
        self.target = target
        self.changes = changes
        self._outcomes: list[Outcome | None] = [None] * len(changes)

    def settle(self, indices: Iterable[int], outcome: Outcome) -> None:
        """Give ``outcome`` to the changes at ``indices`` that have none yet."""
        for i in indices:
            if self._outcomes[i] is None:
                self._outcomes[i] = outcome

    def is_open(self, index: int) -> bool:
        return self._outcomes[index] is None

    def open(self) -> list[int]:
        """Indices of the changes without an outcome, in batch order."""
        return [i for i, o in enumerate(self._outcomes) if o is None]

    def outcome(self, index: int) -> Outcome | None:
        return self._outcomes[index]

    def skip_without_email(self, why: str = "") -> list[int]:
        """Skip every open change without an email (:func:`has_email`); return the rest.

        ``why`` is appended to :data:`NO_EMAIL` (``"HubSpot contacts are matched by email"``).
        """
        reason = Outcome.skipped(f"{NO_EMAIL}; {why}" if why else NO_EMAIL)
        self.settle([i for i in self.open() if not has_email(self.changes[i])], reason)
        return self.open()

    def result(self) -> list[Outcome]:
        """One outcome per change, in order; an unsettled change is retried."""
        missing = Outcome.retry(f"{self.target}: change was not processed (adapter bug)")
        return [o or missing for o in self._outcomes]
