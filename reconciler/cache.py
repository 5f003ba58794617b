"""EDGE: the warm cache of loaded documents, in the user's cache folder (never the work tree).

Entries are plain JSON keyed by a hash of the source bytes, the reconciler version and the
schemas' hash, so an entry can only ever describe exactly the bytes it was made from. A
corrupt entry, or a cache that cannot be opened, is ignored: the cache only saves time.

A document's mark tables (where each value stands: most of an entry's bytes) are kept as JSON
text in a column of their own, so a warm run decodes them only when a problem needs a position.
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
        self._pending: dict[str, tuple[str, str | None]] = {}

    def _open(self) -> sqlite3.Connection | None:
        if self._db is None and os.environ.get("RECONCILER_NO_CACHE") != "1":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=2)
            except (OSError, sqlite3.Error) as exc:
                log.debug("document cache disabled: %s", exc)
                return None
            try:
                db.execute("CREATE TABLE IF NOT EXISTS document (key TEXT PRIMARY KEY, value TEXT, marks TEXT)")
            except sqlite3.Error as exc:
                db.close()
                log.debug("document cache disabled: %s", exc)
                return None
            self._db = db
        return self._db

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        db = self._open()
        wanted = list(keys)
        if db is None or not wanted:
            return {}
        found: dict[str, tuple[str, str | None]] = {}
        try:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                places = ",".join("?" * len(chunk))
                query = f"SELECT key, value, marks FROM document WHERE key IN ({places})"
                for key, value, marks in db.execute(query, chunk):
                    found[key] = (value, marks)
        except sqlite3.Error as exc:
            log.debug("document cache unreadable: %s", exc)
            return {}
        return {key: entry for key, row in found.items() if (entry := _decode(*row)) is not None}

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        entry = dict(value)
        doc = entry.get("doc")
        marks = None
        if isinstance(doc, dict) and isinstance(doc.get("marks"), str) and isinstance(doc.get("keys"), str):
            doc = entry["doc"] = dict(doc)
            marks = doc.pop("marks") + "\n" + doc.pop("keys")
        self._pending[key] = (json.dumps(entry, separators=(",", ":")), marks)

    def flush(self) -> None:
        """Write what was put, and close the file (a later use opens it again)."""
        db = self._open()
        if db is not None and self._pending:
            try:
                with db:
                    rows = ((key, value, marks) for key, (value, marks) in self._pending.items())
                    db.executemany("INSERT OR REPLACE INTO document VALUES (?, ?, ?)", rows)
            except sqlite3.Error as exc:
                log.debug("document cache not written: %s", exc)
        self._pending.clear()
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _decode(value: str, marks: str | None) -> Any:
    try:
        entry = json.loads(value)
    except (TypeError, ValueError):
        return None
    if not isinstance(entry, dict):
        return None
    doc = entry.get("doc")
    if marks is not None:
        if not isinstance(doc, dict) or marks.count("\n") != 1:
            return None
        doc["marks"], doc["keys"] = marks.split("\n")
    return entry
