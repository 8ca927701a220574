"""Mapping options several adapters share: ``tag:`` (Mailchimp, Intercom, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.adapters.errors import OptionsError

__all__ = ["tag_option"]


def tag_option(type_name: str, options: Mapping[str, Any], *, trim: bool = True) -> str:
    """The tag name of options that must be exactly ``{tag: <tag name>}``; raise OptionsError.

    ``trim``: strip surrounding spaces (for CRMs that ignore them); else refuse them, for
    CRMs that would keep them as part of the name.
    """
    usage = f"{type_name} needs exactly one option: tag: <tag name>"
    if set(options) != {"tag"}:
        raise OptionsError(usage)
    tag = options["tag"]
    if not isinstance(tag, str) or not tag.strip():
        raise OptionsError(f"tag must be a tag name (quote names that look like numbers); {usage}")
    if tag != tag.strip() and not trim:
        raise OptionsError(f"tag {tag!r} has leading or trailing spaces")
    return tag.strip()
