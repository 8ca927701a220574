"""``type: jsonl``: an append-only audit log, one JSON line per applied change.

The no-account target: it lets operators try the service end to end and keeps a local
record of exactly what was applied where.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from connector.adapters.base import Adapter, Change, OptionsError, Outcome, TargetConfig


class JsonlConfig(TargetConfig):
    path: str
    fsync: bool = True


class JsonlAdapter(Adapter):
    type_name = "jsonl"
    config_model = JsonlConfig
    max_batch = 500

    config: JsonlConfig

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Any scalar options are copied into each line (a label, a campaign name…)."""
        for key, value in options.items():
            if not isinstance(value, (str, int, float, bool)) or value is None:
                raise OptionsError(f"option {key!r} must be a plain value")
        return dict(options)

    async def start(self) -> None:
        Path(self.config.path).parent.mkdir(parents=True, exist_ok=True)

    async def check_online(self, destinations: Sequence[Mapping[str, Any]] = ()) -> list[str]:
        folder = Path(self.config.path).parent
        if folder.exists() and not os.access(folder, os.W_OK):
            return [f"{folder} is not writable"]
        return []

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        lines = b"".join(_line(self.name, change) for change in changes)
        try:
            await asyncio.to_thread(self._append, lines)
        except OSError as exc:
            return [Outcome.retry(f"cannot write {self.config.path}: {exc.strerror or exc}")] * len(changes)
        return [Outcome.done()] * len(changes)

    def _append(self, data: bytes) -> None:
        with open(self.config.path, "ab") as fh:
            fh.write(data)
            fh.flush()
            if self.config.fsync:
                os.fsync(fh.fileno())


def _line(target: str, change: Change) -> bytes:
    record: dict[str, Any] = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "target": target,
        "action": change.action,
        "customer_id": change.customer_id,
        "email": change.email,
        "group_id": change.group_id,
        "group_key": change.group_key,
        "event_id": change.event_id,
    }
    for key, value in change.options.items():
        record.setdefault(key, value)
    return orjson.dumps(record) + b"\n"
