"""The adapter kit, and adapter discovery.

A plugin imports everything it needs from here::

    from connector.adapters import Change, CrmError, HttpAdapter, HttpTargetConfig, Outcome, RateLimit

Every target type is found through the entry point group; built-ins register the same way
as third-party plugins (see pyproject.toml), so the runner never names a CRM. How to write
one: docs/adapters.md.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from connector.adapters.base import Adapter, TargetConfig
from connector.adapters.change import Action, Change, Outcome, OutcomeKind
from connector.adapters.errors import CrmError, OptionsError, Throttled, UnknownTargetType
from connector.adapters.http import HttpAdapter, json_body, json_object, shorten
from connector.adapters.http_config import HttpTargetConfig, join_url, secret_check
from connector.adapters.ledger import NO_EMAIL, Ledger, has_email
from connector.adapters.lru import LruCache
from connector.adapters.options import tag_option
from connector.adapters.ratelimit import DAILY_LIMIT_DELAY, RateLimit, RateLimiter

ENTRY_POINT_GROUP = "plain_crm_sync.adapters"

__all__ = [
    "DAILY_LIMIT_DELAY",
    "ENTRY_POINT_GROUP",
    "NO_EMAIL",
    "Action",
    "Adapter",
    "Change",
    "CrmError",
    "HttpAdapter",
    "HttpTargetConfig",
    "Ledger",
    "LruCache",
    "OptionsError",
    "Outcome",
    "OutcomeKind",
    "RateLimit",
    "RateLimiter",
    "TargetConfig",
    "Throttled",
    "UnknownTargetType",
    "adapter_class",
    "available_types",
    "has_email",
    "join_url",
    "json_body",
    "json_object",
    "secret_check",
    "shorten",
    "tag_option",
]


@cache
def _registry() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_types() -> list[str]:
    return sorted(_registry())


def adapter_class(type_name: str) -> type[Adapter]:
    """The adapter class registered for ``type_name``; raise UnknownTargetType."""
    ep = _registry().get(type_name)
    if ep is None:
        known = ", ".join(available_types()) or "none (is the package installed?)"
        raise UnknownTargetType(f"unknown target type {type_name!r}; known: {known}")
    try:
        cls = ep.load()  # type: ignore[attr-defined]
    except (ImportError, AttributeError) as exc:
        raise UnknownTargetType(f"target type {type_name!r} is registered but cannot be loaded: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise UnknownTargetType(f"entry point {type_name!r} is not an Adapter subclass")
    return cls
