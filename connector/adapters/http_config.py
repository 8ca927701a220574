"""Config every HTTP target shares: ``base_url``, ``rate_limit``, ``timeout_seconds``.

Also the one check for secrets in config (tokens, API keys): see :func:`secret_check`.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr, field_validator

from connector.adapters.base import TargetConfig
from connector.adapters.ratelimit import RateLimit

__all__ = ["HttpTargetConfig", "join_url", "secret_check"]


class HttpTargetConfig(TargetConfig):
    """Fields every HTTP target accepts on top of its own (README: targets)."""

    base_url: str | None = None
    rate_limit: RateLimit | None = None
    timeout_seconds: float = 30.0

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("base_url must be an http(s) URL, e.g. https://api.eu.intercom.io")
        if url.query or url.fragment or url.userinfo:
            raise ValueError("base_url takes no query, fragment or credentials")
        return value.rstrip("/")

    @field_validator("timeout_seconds")
    @classmethod
    def _check_timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("timeout_seconds must be positive")
        return value


def secret_check(field: str, message: str, *, min_length: int = 1) -> Any:
    """A pydantic validator refusing an empty (or shorter than ``min_length``) secret.

    An unset ``${VAR}`` in the config expands to ``""``: refusing it at ``check`` time
    says so, where a 401 later would not. ``message`` must not quote the value (config
    errors are printed). Use it in the config model's body::

        _token_is_set = secret_check("token", "token is empty (is ${TOYCRM_TOKEN} set?)")
    """

    def check(cls: type, value: SecretStr | str) -> SecretStr | str:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if len(text.strip()) < min_length:
            raise ValueError(message)
        return value

    return field_validator(field)(classmethod(check))


def join_url(base_url: str, path: str) -> str:
    """``base_url`` (scheme, host, optional path prefix) + the API's own ``path``.

    ``join_url("http://127.0.0.1:9100/mailchimp", "/3.0/lists/x")`` is
    ``http://127.0.0.1:9100/mailchimp/3.0/lists/x``. An absolute ``path`` (a pagination
    link the CRM handed back) is used as it is.
    """
    if path.startswith(("http://", "https://")):
        return path
    return base_url.rstrip("/") + "/" + path.lstrip("/")
