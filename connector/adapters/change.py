"""What flows through an adapter: a :class:`Change` in, an :class:`Outcome` out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from connector.text import crm_text

__all__ = ["Action", "Change", "Outcome", "OutcomeKind"]

Action = Literal["add", "remove"]


@dataclass(frozen=True, slots=True)
class Change:
    """One membership change to apply at one target.

    ``options`` are the mapping's options for this target (``{"list": "123"}``,
    ``{"tag": "Enterprise"}``), already validated by :meth:`Adapter.validate_options`.
    ``key`` identifies the change within a batch; adapters just carry it around.
    Text fields arrive in the form CRMs accept (:func:`connector.text.crm_text`: lone
    surrogates replaced by U+FFFD, NUL removed), whatever the store holds.
    """

    key: str
    action: Action
    customer_id: str
    email: str | None
    group_id: str
    group_key: str | None
    event_id: str
    options: Mapping[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    full_name: str | None = None
    group_name: str | None = None
    event_time: str | None = None

    def __post_init__(self) -> None:
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, crm_text(value))  # frozen: set once, here


_TEXT_FIELDS = ("email", "external_id", "full_name", "group_key", "group_name")

OutcomeKind = Literal["done", "retry", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one change.

    - ``done``: the CRM confirmed it (or it was already so: adapters are idempotent).
    - ``retry``: transient; try again after ``retry_after`` seconds (``None``: runner's backoff).
    - ``failed``: permanent; goes to dead letters with ``reason`` for an operator.
    - ``skipped``: nothing to do in this CRM, e.g. the contact does not exist there and
      creation is off. Final, but reported in ``status`` with ``reason``.
    """

    kind: OutcomeKind
    reason: str | None = None
    retry_after: float | None = None

    @classmethod
    def done(cls) -> Outcome:
        return _DONE

    @classmethod
    def retry(cls, reason: str, after: float | None = None) -> Outcome:
        return cls("retry", reason, after)

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        return cls("failed", reason)

    @classmethod
    def skipped(cls, reason: str) -> Outcome:
        return cls("skipped", reason)


_DONE = Outcome("done")
