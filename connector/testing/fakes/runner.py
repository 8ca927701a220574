"""Run an ASGI app under uvicorn on loopback in a background thread, for tests.

The server has its own event loop in its own thread, so a test can drive the code under
test with ``asyncio.run`` (or plain sync httpx) while the fake answers.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

__all__ = ["serve_app"]


class _QuietDrops(logging.Filter):
    """Hide uvicorn's traceback for connections a fake drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, "fake_drop", False)


_filter = _QuietDrops()


@contextlib.contextmanager
def serve_app(app: Any, *, start_timeout: float = 10.0, port: int = 0) -> Iterator[str]:
    """Serve ``app`` on ``127.0.0.1`` at a free port (or ``port``); yield its base URL (no trailing /).

    A fixed ``port`` lets a test stop a fake CRM and bring it back at the same address.

    The socket is bound before the thread starts, so the port is known and there is no
    race with another test picking the same one. Stops the server and joins the thread
    on exit.
    """
    logging.getLogger("uvicorn.error").addFilter(_filter)  # a set: adding twice is a no-op
    # IPPROTO_TCP explicitly: asyncio only turns Nagle off (TCP_NODELAY) for sockets that
    # say so, and without it every answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        http="h11",
        loop="asyncio",
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=start_timeout)
        sock.close()
