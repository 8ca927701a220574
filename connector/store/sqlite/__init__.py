"""The embedded default store: one SQLite file in WAL mode, written by one thread."""

from __future__ import annotations

from connector.store.sqlite.store import SQLiteStore, connect

__all__ = ["SQLiteStore", "connect"]
