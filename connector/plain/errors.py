"""Everything the Plain API client can raise, in one place.

::

    PlainApiError                the base: catch this to handle any failure of a Plain call
    ├── PlainAuthError           the key was refused (HTTP 401/403, UNAUTHENTICATED, FORBIDDEN);
    │                            never retried; the message never contains the key
    ├── PlainUnavailable         Plain could not be reached or kept failing (transport errors,
    │                            5xx, repeated 429) after the client's bounded retries
    ├── PlainGraphQLError        an answer with ``errors[]``: ``code`` is ``extensions.code``;
    │   │                        never retried (a bad query stays bad)
    │   └── PlainMutationError   a mutation answered with its ``error`` field (MutationError):
    │                            ``code``, ``type`` and the offending ``fields``
    ├── PlainProtocolError       an answer that is not the JSON shape GraphQL promises
    ├── NoCommonWebhookVersion   Plain offers no webhook version this service can parse
    └── PlainUsageError          a call the client refuses to send (also a ValueError), such as
                                 a customer read with an empty group filter, which Plain would
                                 answer with every customer of the workspace

Messages are safe for logs and terminals: they carry Plain's message and code, the HTTP
status and the operation name, never request headers or the API key.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "NoCommonWebhookVersion",
    "PlainApiError",
    "PlainAuthError",
    "PlainGraphQLError",
    "PlainMutationError",
    "PlainProtocolError",
    "PlainUnavailable",
    "PlainUsageError",
]


class PlainApiError(Exception):
    """A Plain API call failed; ``operation`` is the GraphQL operation name, if known."""

    def __init__(self, message: str, *, operation: str | None = None) -> None:
        super().__init__(f"{operation}: {message}" if operation else message)
        self.operation = operation


class PlainAuthError(PlainApiError):
    """The API key is missing, wrong, revoked, or lacks a permission the call needs."""


class PlainUnavailable(PlainApiError):
    """Plain did not answer usefully within the client's retry budget."""


class PlainGraphQLError(PlainApiError):
    """Plain answered with a GraphQL error; ``code`` is its ``extensions.code`` (or None)."""

    def __init__(self, message: str, code: str | None, *, operation: str | None = None) -> None:
        super().__init__(f"{message} [{code or 'no code'}]", operation=operation)
        self.code = code
        self.plain_message = message


class PlainMutationError(PlainGraphQLError):
    """A mutation's own ``error`` answer (validation, forbidden, limit reached …)."""

    def __init__(
        self, message: str, code: str, error_type: str, fields: Sequence[str], *, operation: str | None = None
    ) -> None:
        super().__init__(message + (f" (fields: {', '.join(fields)})" if fields else ""), code, operation=operation)
        self.error_type = error_type
        self.fields = list(fields)


class PlainProtocolError(PlainApiError):
    """The answer was not JSON, or lacked the ``data`` the query asked for."""


class NoCommonWebhookVersion(PlainApiError):
    """None of Plain's current webhook versions is one whose bodies this service parses."""


class PlainUsageError(PlainApiError, ValueError):
    """The client refused to send a request that would not mean what the caller wants."""
