"""Fake CRM servers for tests: real HTTP on loopback, scripted and random trouble.

- :class:`FakeServer` — the base: subclass it, return Starlette routes from
  ``routes()``, give the vendor's 429 and error shapes in ``throttle_response`` /
  ``error_response``. See :mod:`.server` for a worked outline.
- :func:`serve_app` — run any ASGI app under uvicorn on ``127.0.0.1:<free port>``.
- :class:`Faults`, :class:`WindowLimit` — random trouble and vendor-style limits.
- :class:`RequestLog` / :class:`RecordedRequest` — what the fake saw.
- :class:`VirtualTimeLoop` / :func:`run_virtual` — timing tests without waiting.
- :class:`FakeWebhookReceiver` (in :mod:`.webhook`) — for the ``webhook`` target.
"""

from connector.testing.fakes.clock import VirtualTimeLoop, run_virtual
from connector.testing.fakes.limits import ConcurrencyLimit, WindowLimit
from connector.testing.fakes.log import RecordedRequest, RequestLog
from connector.testing.fakes.runner import serve_app
from connector.testing.fakes.server import DROP, FakeServer, Faults

__all__ = [
    "DROP",
    "ConcurrencyLimit",
    "FakeServer",
    "Faults",
    "RecordedRequest",
    "RequestLog",
    "VirtualTimeLoop",
    "WindowLimit",
    "run_virtual",
    "serve_app",
]
