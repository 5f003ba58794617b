"""EDGE: the embedded connector — a SQLite store at `<root>/.reconciler/live.sqlite`.

It stands in for a platform whose SIS has rolled every declared term, so `available_terms`
is every term code of the environment's Terms. One file holds every environment: a `live`
row per environment (a JSON document), a `lease` row per held lock, and the activity log.
An apply is one transaction: every change is made, or none (a failure raises PartialApplyError
with `applied` 0).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.connectors.base import LOCK_WAIT_S, PartialApplyError
from reconciler.core.plan import Change, apply_change
from reconciler.errors import ConnectorError, LockError, ReconcilerError, StoreError
from reconciler.model import EnvironmentSpec, Kind

SCHEMA_VERSION = 1
STORE = Path(".reconciler") / "live.sqlite"
READ_ONLY = ("available_terms", "activity")
"""Parts computed on read, never stored in the document."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS live (env TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lease (env TEXT PRIMARY KEY, holder TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS activity (
    id INTEGER PRIMARY KEY AUTOINCREMENT, env TEXT NOT NULL, at TEXT NOT NULL, entry TEXT NOT NULL
);
"""


_CREATING = threading.Lock()


def store_path(root: Path) -> Path:
    return root / STORE


def open_store(path: Path) -> sqlite3.Connection:
    """A connection to the store, created if missing; refuses a file that is not ours."""
    with _CREATING:
        return _open(path)


def _open(path: Path) -> sqlite3.Connection:
    fresh = not path.exists() or path.stat().st_size == 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=LOCK_WAIT_S, isolation_level=None)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"{path}: cannot open the store: {e}") from e
    try:
        if fresh:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as e:
        conn.close()
        raise StoreError(f"{path} is not a reconciler store ({e})") from e
    if row is None:
        conn.close()
        raise StoreError(f"{path} is not a reconciler store (no schema_version)")
    if str(row[0]) != str(SCHEMA_VERSION):
        conn.close()
        raise StoreError(f"{path}: store schema version {row[0]} is not supported (expected {SCHEMA_VERSION})")
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def declared_terms(spec: EnvironmentSpec) -> list[str]:
    terms = (spec.data(Kind.TERMS) or {}).get("terms") or []
    return sorted({str(t["code"]) for t in terms if isinstance(t, dict) and "code" in t})


class EmbeddedConnector:
    """The live side of one environment in the embedded store."""

    def __init__(self, spec: EnvironmentSpec, root: Path, *, clock: Any = time.time) -> None:
        self.spec = spec
        self.env = spec.name
        self.path = store_path(root)
        self.clock = clock

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        with closing(open_store(self.path)) as conn:
            yield conn

    # --- reading ---------------------------------------------------------------------------

    def _doc(self, conn: sqlite3.Connection) -> dict[str, Any]:
        row = conn.execute("SELECT doc FROM live WHERE env = ?", (self.env,)).fetchone()
        if row is None:
            return {}
        try:
            doc = json.loads(row[0])
        except ValueError as e:
            raise StoreError(f"{self.path}: the live document of {self.env} is not JSON") from e
        if not isinstance(doc, dict):
            raise StoreError(f"{self.path}: the live document of {self.env} is not an object")
        return doc

    def read(self) -> dict[str, Any]:
        try:
            with self._conn() as conn:
                doc = self._doc(conn)
                rows = conn.execute("SELECT entry FROM activity WHERE env = ? ORDER BY id", (self.env,)).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot read {self.env}: {e}") from e
        doc["available_terms"] = declared_terms(self.spec)
        if rows:
            doc["activity"] = [json.loads(r[0]) for r in rows]
        return doc

    # --- writing ---------------------------------------------------------------------------

    def apply_changes(self, changes: Sequence[Change], *, record: dict[str, Any]) -> None:
        if not changes:
            return
        with self._conn() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                doc = self._doc(conn)
                for part in READ_ONLY:
                    doc.pop(part, None)
                for change in changes:
                    try:
                        doc = apply_change(doc, change)
                    except ReconcilerError as e:  # one transaction: nothing of this apply is kept
                        raise PartialApplyError(0, change, e) from e
                    except Exception as e:  # a fault in the change itself: kept as is, with how far it got
                        e.applied, e.failed = 0, change  # type: ignore[attr-defined]
                        raise
                doc["applied"] = {k: v for k, v in record.items() if k != "live_fingerprint"}
                conn.execute(
                    "INSERT INTO live (env, doc) VALUES (?, ?) ON CONFLICT(env) DO UPDATE SET doc = excluded.doc",
                    (self.env, json.dumps(doc, sort_keys=True)),
                )
                entry = {**record, "kind": "apply", "outcome": "applied", "changes": len(changes)}
                self._insert_activity(conn, entry)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def execute_merge(
        self, term: str, types: Sequence[str], *, send_updates: bool, record: dict[str, Any]
    ) -> dict[str, Any]:
        """The embedded SIS has every declared term, so a merge of one of them completes at once."""
        if term not in declared_terms(self.spec):
            raise ConnectorError(f"{self.env}: term {term} is not rolled in the SIS")
        result = {"term": term, "types": list(types), "send_updates": send_updates, "status": "completed"}
        self.append_activity({**record, "kind": "merge", "outcome": "completed", **result})
        return result

    def append_activity(self, entry: dict[str, Any]) -> None:
        with self._conn() as conn:
            self._insert_activity(conn, entry)

    def _insert_activity(self, conn: sqlite3.Connection, entry: dict[str, Any]) -> None:
        at = str(entry.get("at") or datetime.now(UTC).isoformat())
        conn.execute(
            "INSERT INTO activity (env, at, entry) VALUES (?, ?, ?)",
            (self.env, at, json.dumps(entry, sort_keys=True, default=str)),
        )

    # --- the lease -------------------------------------------------------------------------

    @contextmanager
    def lock(self, holder: str, ttl_s: float, *, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
        deadline = time.monotonic() + max(0.0, min(wait_s, LOCK_WAIT_S))
        with self._conn() as conn:
            while True:
                current = self._try_take(conn, holder, ttl_s)
                if current is None:
                    break
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"{self.env}: the live side is locked by {current[0]} "
                        f"(lease expires in {max(0.0, current[1] - self.clock()):.0f}s)"
                    )
                time.sleep(0.1)
            try:
                yield
            finally:
                conn.execute("DELETE FROM lease WHERE env = ? AND holder = ?", (self.env, holder))

    def _try_take(self, conn: sqlite3.Connection, holder: str, ttl_s: float) -> tuple[str, float] | None:
        """Take the lease (free, expired or ours) and return None, or return (holder, expires)."""
        now = self.clock()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT holder, expires FROM lease WHERE env = ?", (self.env,)).fetchone()
            if row is not None and row[0] != holder and float(row[1]) > now:
                conn.execute("ROLLBACK")
                return str(row[0]), float(row[1])
            conn.execute(
                "INSERT INTO lease (env, holder, expires) VALUES (?, ?, ?) "
                "ON CONFLICT(env) DO UPDATE SET holder = excluded.holder, expires = excluded.expires",
                (self.env, holder, now + ttl_s),
            )
            conn.execute("COMMIT")
            return None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
