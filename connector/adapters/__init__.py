"""Adapter discovery: every target type is found through the entry point group.

Built-ins register the same way as third-party plugins (see pyproject.toml), so the
runner never names a CRM.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from connector.adapters.base import Adapter, Change, OptionsError, Outcome, TargetConfig

ENTRY_POINT_GROUP = "plain_crm_sync.adapters"

__all__ = [
    "Adapter",
    "Change",
    "OptionsError",
    "Outcome",
    "TargetConfig",
    "adapter_class",
    "available_types",
]


class UnknownTargetType(LookupError):
    pass


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
