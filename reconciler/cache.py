"""EDGE: the warm cache of loaded documents, in the user's cache folder (never the work tree).

Entries are plain JSON keyed by a hash of the source bytes, the reconciler version and the
schemas' hash, so an entry can only ever describe exactly the bytes it was made from. A
corrupt entry, or a cache that cannot be opened, is ignored: the cache only saves time.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    explicit = os.environ.get("RECONCILER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "reconciler"


class DocumentCache:
    """A key → JSON map in one SQLite file; every failure degrades to a miss."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "documents.sqlite"
        self._db: sqlite3.Connection | None = None
        self._pending: dict[str, str] = {}

    def _open(self) -> sqlite3.Connection | None:
        if self._db is None and os.environ.get("RECONCILER_NO_CACHE") != "1":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=2)
                db.execute("CREATE TABLE IF NOT EXISTS entry (key TEXT PRIMARY KEY, value TEXT)")
                self._db = db
            except (OSError, sqlite3.Error) as exc:
                log.debug("document cache disabled: %s", exc)
        return self._db

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        db = self._open()
        wanted = list(keys)
        if db is None or not wanted:
            return {}
        found: dict[str, Any] = {}
        try:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, value FROM entry WHERE key IN ({marks})"
                for key, value in db.execute(query, chunk):
                    found[key] = value
        except sqlite3.Error as exc:
            log.debug("document cache unreadable: %s", exc)
            return {}
        return {key: entry for key, value in found.items() if (entry := _decode(value)) is not None}

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        self._pending[key] = json.dumps(value, separators=(",", ":"))

    def flush(self) -> None:
        db = self._open()
        if db is None or not self._pending:
            return
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO entry VALUES (?, ?)", self._pending.items())
        except sqlite3.Error as exc:
            log.debug("document cache not written: %s", exc)
        self._pending.clear()


def _decode(value: str) -> Any:
    try:
        entry = json.loads(value)
    except (TypeError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None
