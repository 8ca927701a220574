"""Logging setup: text or JSON lines, with secrets scrubbed and emails masked in every record."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from connector.redact import redact

#: what the current task is working on (event id, target): copied onto every log line
_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context", default={})  # noqa: B039 -- never mutated, only replaced


class log_context:
    """Tag every log line written inside (this task and tasks it starts) with ``fields``."""

    __slots__ = ("_fields", "_token")

    def __init__(self, **fields: str | None) -> None:
        self._fields = fields

    def __enter__(self) -> None:
        merged = {**_context.get(), **{k: v for k, v in self._fields.items() if v}}
        self._token = _context.set(merged)

    def __exit__(self, *exc: object) -> None:
        _context.reset(self._token)


def current_context() -> dict[str, str]:
    return dict(_context.get())


class _RedactingFilter(logging.Filter):
    """Formats the message once, scrubbed, so no handler can leak the raw arguments."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        record.context = {k: redact(v, self.secrets) for k, v in _context.get().items()}
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, self.secrets)
            record.exc_info = None
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "context", {}),
        }
        if record.exc_text:
            entry["exc"] = record.exc_text
        return orjson.dumps(entry).decode()


def setup_logging(json_format: bool = False, level: str = "INFO", secrets: Sequence[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RedactingFilter(secrets))
    if json_format:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("uvicorn.error", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
