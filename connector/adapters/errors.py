"""Every exception the adapter kit raises, in one place.

::

    Exception
     ├── CrmError               a CRM call did not succeed; redacted, worded for an operator,
     │                          and .outcome is the Outcome for each change the call was about
     │                          (transient → Outcome.retry with the vendor's delay, else failed)
     ├── Throttled              the rate limiter would have to wait longer than the caller
     │                          allows (the CRM asked to pause); HttpAdapter turns it into a
     │                          transient CrmError, so adapters never see it
     ├── ValueError
     │    └── OptionsError      a mapping's options for a target are wrong (``check`` time)
     └── LookupError
          └── UnknownTargetType no adapter is registered (or loadable) for a ``type:``

A target's config block that does not validate raises pydantic's ``ValidationError``
(``HttpTargetConfig`` and the vendors' config models); the runner never sees any of these
except ``CrmError``'s outcome: an adapter returns outcomes rather than raising.
"""

from __future__ import annotations

from connector.adapters.change import Outcome

__all__ = ["CrmError", "OptionsError", "Throttled", "UnknownTargetType"]


class OptionsError(ValueError):
    """A mapping's options for a target are wrong; the message is for the operator."""


class UnknownTargetType(LookupError):
    """No adapter is registered for a target's ``type:``, or it cannot be loaded."""


class Throttled(Exception):
    """Admission would have to wait longer than the caller allows (the CRM asked to pause).

    ``retry_after`` is how long the pause still lasts, in seconds.
    """

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for another {retry_after:.1f}s")
        self.retry_after = retry_after


class CrmError(Exception):
    """A CRM call that did not succeed, already redacted and worded for an operator.

    ``transient`` errors (429, 5xx, network) are retried by the runner after
    ``retry_after`` seconds (``None``: the runner's own backoff); others are permanent.
    Build one with :meth:`HttpAdapter.crm_error <connector.adapters.http.HttpAdapter.crm_error>`,
    which redacts the message and the path.
    """

    def __init__(
        self,
        *,
        target: str,
        method: str,
        path: str,
        status: int | None,
        message: str,
        transient: bool,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        self.target, self.method, self.path = target, method, path
        self.status, self.message = status, message
        self.transient, self.retry_after, self.attempts = transient, retry_after, attempts
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        what = f"HTTP {self.status}: " if self.status is not None else ""
        tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        return f"{self.target}: {self.method} {self.path} -> {what}{self.message}{tries}"

    @property
    def outcome(self) -> Outcome:
        """The outcome for each change this call was about."""
        if self.transient:
            return Outcome.retry(self.reason, self.retry_after)
        return Outcome.failed(self.reason)
