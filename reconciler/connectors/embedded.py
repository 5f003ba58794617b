"""EDGE: the SQLite live store, and the embedded connector that reads and writes it.

One file (`<root>/.reconciler/live.sqlite`) holds every environment: a `live` row per environment (a
JSON document), a `lease` row per held lock, the activity log, the SIS's rolled terms (`sis`) and the
responses of idempotent writes (`idempotency`). `LiveStore` is one environment's side of that file;
both the embedded connector and the emulator (reconciler/emulator) drive it, so the emulator serves
exactly what `embedded` wrote.

The embedded connector stands in for a platform whose SIS has rolled every declared term, so its
`available_terms` is every term code of the environment's Terms. An apply is one transaction: every
change is made, or none (a failure raises PartialApplyError with `applied` 0).
"""

from __future__ import annotations

import errno
import json
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.connectors.base import LOCK_WAIT_S, BaseConnector, LeaseAnswer, PartialApplyError
from reconciler.core.plan import Change, apply_change, fingerprint, split_path
from reconciler.errors import ConflictError, ConnectorError, ReconcilerError, StoreError
from reconciler.model import EnvironmentSpec, Kind

SCHEMA_VERSION = 2
STORE = Path(".reconciler") / "live.sqlite"
READ_ONLY = ("available_terms", "activity")
"""Parts computed on read, never stored in the document."""
APPLIED_KEYS = ("revision", "plan_id", "at", "actor")
"""What the `applied` record keeps (schemas/live-state.schema.json); the rest goes to the activity log."""
IDEMPOTENCY_TTL_S = 24 * 3600.0
"""How long the response of an idempotent write is kept for a retry."""

_V1 = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS live (env TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lease (env TEXT PRIMARY KEY, holder TEXT NOT NULL, expires REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS activity ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, env TEXT NOT NULL, at TEXT NOT NULL, entry TEXT NOT NULL)",
)
_V2 = (
    "CREATE TABLE IF NOT EXISTS idempotency (env TEXT NOT NULL, key TEXT NOT NULL, request TEXT NOT NULL,"
    " status INTEGER NOT NULL, headers TEXT NOT NULL, body TEXT NOT NULL, created REAL NOT NULL,"
    " PRIMARY KEY (env, key))",
    "CREATE TABLE IF NOT EXISTS sis (env TEXT PRIMARY KEY, available_terms TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS activity_env ON activity (env, id)",
)
MIGRATIONS: dict[int, tuple[str, ...]] = {1: _V2}
"""The statements that take a store from version N to N + 1, run in place on open."""

_CREATING = threading.Lock()


RECENT_ACTIVITY = 20
"""How many of the latest activity entries a read carries."""


def store_path(root: Path) -> Path:
    return root / STORE


def open_store(path: Path) -> sqlite3.Connection:
    """A connection to the store, created if missing and migrated if old; refuses a file that is not ours."""
    with _CREATING:
        return _open(path)


def _open(path: Path) -> sqlite3.Connection:
    fresh = not path.exists() or path.stat().st_size == 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # not bound to its thread: a connection kept per thread is closed by the store's finalizer
        conn = sqlite3.connect(path, timeout=LOCK_WAIT_S, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"{path}: cannot open the store: {e}") from e
    try:
        if fresh:
            conn.execute("PRAGMA journal_mode=WAL")
            _create(conn)
        version = _version(conn)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise StoreError(f"{path} is not a reconciler store ({e})") from e
    if version is None:
        conn.close()
        raise StoreError(f"{path} is not a reconciler store (no schema_version)")
    if version != SCHEMA_VERSION:
        _migrate(conn, path, version)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def _version(conn: sqlite3.Connection) -> int | None:
    """The store's schema version as a number (stored as text: '2' must equal 2, or every open migrates)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else _as_int(row[0])


def _create(conn: sqlite3.Connection) -> None:
    with _transaction(conn):
        for statement in (*_V1, *_V2):
            conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def _migrate(conn: sqlite3.Connection, path: Path, version: int) -> None:
    """Bring an older store to SCHEMA_VERSION in place, one step per version, in one transaction."""
    unsupported = f"{path}: store schema version {version} is not supported (expected {SCHEMA_VERSION})"
    try:
        with _transaction(conn):
            current = _version(conn)  # another process may have migrated it meanwhile
            if current is None or (current != SCHEMA_VERSION and current not in MIGRATIONS):
                raise StoreError(unsupported)
            while current in MIGRATIONS:
                for statement in MIGRATIONS[current]:
                    conn.execute(statement)
                current += 1
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(current),))
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as e:
        conn.close()
        raise StoreError(f"{path}: cannot migrate the store from version {version}: {e}") from e


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


@contextmanager
def _transaction(conn: sqlite3.Connection, *, write: bool = True) -> Iterator[sqlite3.Connection]:
    """BEGIN … COMMIT, or ROLLBACK on any exception. A write takes the write lock at once (IMMEDIATE: no
    deadlock upgrading a read lock); a read is a snapshot that blocks no one (WAL)."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
    try:
        yield conn
        conn.execute("COMMIT")  # inside the try: a failed COMMIT (disk full) must not leave a kept connection open
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):  # SQLite may have rolled it back itself already
                conn.execute("ROLLBACK")
        raise


def declared_terms(spec: EnvironmentSpec) -> list[str]:
    terms = (spec.data(Kind.TERMS) or {}).get("terms") or []
    return sorted({str(t["code"]) for t in terms if isinstance(t, dict) and "code" in t})


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _close_each(connections: list[sqlite3.Connection]) -> None:
    for conn in connections:
        with suppress(sqlite3.Error):
            conn.close()
    connections.clear()


class LiveStore:
    """One environment's live side in the store file. Methods taking `conn` run inside the caller's
    transaction (`with store.transaction() as conn:`), so a caller can combine them atomically."""

    def __init__(self, path: Path, env: str, *, clock: Callable[[], float] = time.time,
                 sync_each_commit: bool = True, keep_open: bool = False,
                 connections: threading.local | None = None) -> None:
        """`keep_open`: one connection per thread for this store's life; `connections`: one per thread
        shared by every store given the same object (a server keeps one per worker thread)."""
        self.path = path
        self.env = env
        self.clock = clock
        self.sync_each_commit = sync_each_commit
        self.keep_open = keep_open or connections is not None
        self._local = connections if connections is not None else threading.local()
        self._kept: list[sqlite3.Connection] | None = None
        if keep_open and connections is None:  # ours to close, once this store is gone
            self._kept = []
            weakref.finalize(self, _close_each, self._kept)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection to the store: a fresh one, or with `keep_open` one per thread for this store's life
        (closing the last connection checkpoints the WAL, which costs more than the transaction itself)."""
        if not self.keep_open:
            with closing(self._open()) as fresh:
                yield fresh
            return
        kept: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if kept is None:
            kept = self._local.conn = self._open()
            if self._kept is not None:
                self._kept.append(kept)  # list.append is atomic: no lock for the threads of one apply
        yield kept

    def _open(self) -> sqlite3.Connection:
        conn = open_store(self.path)
        if not self.sync_each_commit:
            # WAL with synchronous=NORMAL: a commit survives the process dying, not the machine losing
            # power (and never corrupts the file); it saves an fsync per write, tens of ms on some disks
            conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction on a fresh connection; `write=False` for a consistent read that blocks no writer."""
        with self.connect() as conn, _transaction(conn, write=write):
            yield conn

    # --- the document ----------------------------------------------------------------------

    def doc(self, conn: sqlite3.Connection) -> dict[str, Any]:
        """The stored document (settings and `applied`; never the read-only parts)."""
        row = conn.execute("SELECT doc FROM live WHERE env = ?", (self.env,)).fetchone()
        if row is None:
            return {}
        try:
            doc = json.loads(row[0])
        except ValueError as e:
            raise StoreError(f"{self.path}: the live document of {self.env} is not JSON") from e
        if not isinstance(doc, dict):
            raise StoreError(f"{self.path}: the live document of {self.env} is not an object")
        for part in READ_ONLY:
            doc.pop(part, None)
        return doc

    def write_doc(self, conn: sqlite3.Connection, doc: Mapping[str, Any]) -> None:
        stored = {k: v for k, v in doc.items() if k not in READ_ONLY}
        conn.execute(
            "INSERT INTO live (env, doc) VALUES (?, ?) ON CONFLICT(env) DO UPDATE SET doc = excluded.doc",
            (self.env, json.dumps(stored, sort_keys=True)),
        )

    def available_terms(self, conn: sqlite3.Connection) -> list[str] | None:
        """The terms the SIS has rolled, or None: every term (the default)."""
        row = conn.execute("SELECT available_terms FROM sis WHERE env = ?", (self.env,)).fetchone()
        return None if row is None else list(json.loads(row[0]))

    def set_available_terms(self, conn: sqlite3.Connection, terms: Sequence[str] | None) -> None:
        if terms is None:
            conn.execute("DELETE FROM sis WHERE env = ?", (self.env,))
            return
        conn.execute(
            "INSERT INTO sis (env, available_terms) VALUES (?, ?) "
            "ON CONFLICT(env) DO UPDATE SET available_terms = excluded.available_terms",
            (self.env, json.dumps(sorted(set(terms)))),
        )

    def live(self, conn: sqlite3.Connection) -> dict[str, Any]:
        """The live document as the API serves it: the stored one plus `available_terms` when the SIS set them."""
        doc = self.doc(conn)
        if isinstance(doc.get("applied"), dict):  # a store written before `applied` kept only its four keys
            doc["applied"] = {k: v for k, v in doc["applied"].items() if k in APPLIED_KEYS}
        terms = self.available_terms(conn)
        if terms is not None:
            doc["available_terms"] = terms
        return doc

    # --- writing ---------------------------------------------------------------------------

    def apply_changes(
        self, conn: sqlite3.Connection, changes: Sequence[Change], record: Mapping[str, Any],
        *, check: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Make every change, record the apply and log it; `check` may refuse the document after a change
        (by raising a ReconcilerError). Raises PartialApplyError(0, …): the caller rolls the transaction back."""
        doc = self.doc(conn)
        for change in changes:
            try:
                doc = apply_change(doc, change)
                if check is not None:
                    check(doc)
            except ReconcilerError as e:
                raise PartialApplyError(0, change, e) from e
            except Exception as e:  # a fault in the change itself: kept as is, with how far it got
                e.applied, e.failed = 0, change  # type: ignore[attr-defined]
                raise
        doc["applied"] = {k: record.get(k) for k in APPLIED_KEYS}
        self.write_doc(conn, doc)
        self.insert_activity(conn, {**record, "kind": "apply", "outcome": "applied", "changes": len(changes)})
        return doc

    def console_set(self, conn: sqlite3.Connection, values: Mapping[str, Any], *, actor: str = "console",
                    check: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """A person at the admin console: set each dotted path (None removes it); no `applied` record."""
        doc = self.doc(conn)
        for path, value in values.items():
            set_path(doc, path, value)
        if check is not None:
            check(doc)
        self.write_doc(conn, doc)
        self.insert_activity(conn, {"at": now_iso(), "actor": actor, "kind": "console", "set": dict(values)})
        return doc

    def insert_activity(self, conn: sqlite3.Connection, entry: Mapping[str, Any]) -> int:
        at = str(entry.get("at") or now_iso())
        cursor = conn.execute(
            "INSERT INTO activity (env, at, entry) VALUES (?, ?, ?)",
            (self.env, at, json.dumps(entry, sort_keys=True, default=str)),
        )
        return int(cursor.lastrowid or 0)

    def activity(self, conn: sqlite3.Connection, since_id: int = 0, limit: int | None = None
                 ) -> list[tuple[int, str, dict[str, Any]]]:
        """(id, at, entry) of the entries after `since_id`, oldest first."""
        rows = conn.execute(
            "SELECT id, at, entry FROM activity WHERE env = ? AND id > ? ORDER BY id LIMIT ?",
            (self.env, since_id, -1 if limit is None else limit),
        ).fetchall()
        return [(int(r[0]), str(r[1]), json.loads(r[2])) for r in rows]

    def recent_activity(self, conn: sqlite3.Connection, count: int) -> list[tuple[int, str, dict[str, Any]]]:
        """The last `count` entries, oldest first (a read stays cheap however long the log grows)."""
        rows = conn.execute(
            "SELECT id, at, entry FROM activity WHERE env = ? ORDER BY id DESC LIMIT ?", (self.env, count)
        ).fetchall()
        return [(int(r[0]), str(r[1]), json.loads(r[2])) for r in reversed(rows)]

    def merge(self, conn: sqlite3.Connection, term: str, types: Sequence[str], *, send_updates: bool,
              record: Mapping[str, Any]) -> dict[str, Any]:
        """Log a completed merge of `term` (the caller checked that the SIS has it)."""
        result = {"term": term, "types": list(types), "send_updates": send_updates, "status": "completed"}
        self.insert_activity(conn, {**record, "kind": "merge", "outcome": "completed", **result})
        return result

    # --- the lease -------------------------------------------------------------------------

    def lease(self, conn: sqlite3.Connection) -> tuple[str, float] | None:
        """(holder, expires) of an unexpired lease, or None."""
        row = conn.execute("SELECT holder, expires FROM lease WHERE env = ?", (self.env,)).fetchone()
        if row is None or float(row[1]) <= self.clock():
            return None
        return str(row[0]), float(row[1])

    def take_lease(self, conn: sqlite3.Connection, holder: str, ttl_s: float,
                   takeover: str | None = None) -> tuple[bool, str, float]:
        """Take the lease if it is free, expired, ours or held by exactly `takeover` (a holder the caller
        knows is dead): (True, holder, expires); else (False, theirs, expires)."""
        current = self.lease(conn)
        if current is not None and current[0] not in (holder, takeover):
            return False, current[0], current[1]
        expires = self.clock() + ttl_s
        conn.execute(
            "INSERT INTO lease (env, holder, expires) VALUES (?, ?, ?) "
            "ON CONFLICT(env) DO UPDATE SET holder = excluded.holder, expires = excluded.expires",
            (self.env, holder, expires),
        )
        return True, holder, expires

    def release_lease(self, conn: sqlite3.Connection, holder: str) -> None:
        conn.execute("DELETE FROM lease WHERE env = ? AND holder = ?", (self.env, holder))

    # --- idempotent writes -----------------------------------------------------------------

    def recall(self, conn: sqlite3.Connection, key: str) -> tuple[str, int, dict[str, str], Any] | None:
        """(request digest, status, headers, body) stored for `key`, or None."""
        row = conn.execute(
            "SELECT request, status, headers, body FROM idempotency WHERE env = ? AND key = ? AND created > ?",
            (self.env, key, self.clock() - IDEMPOTENCY_TTL_S),
        ).fetchone()
        if row is None:
            return None
        return str(row[0]), int(row[1]), json.loads(row[2]), json.loads(row[3])

    def remember(self, conn: sqlite3.Connection, key: str, request: str, status: int,
                 headers: Mapping[str, str], body: Any) -> None:
        now = self.clock()
        conn.execute("DELETE FROM idempotency WHERE created <= ?", (now - IDEMPOTENCY_TTL_S,))
        conn.execute(
            "INSERT OR REPLACE INTO idempotency (env, key, request, status, headers, body, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.env, key, request, status, json.dumps(dict(headers)), json.dumps(body), now),
        )


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` in `doc` to `value`, creating the mappings on the way; None removes the key."""
    keys = split_path(path)
    parent = doc
    for key in keys[:-1]:
        child = parent.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConnectorError(f"{path}: {key} is not a mapping")
        parent = child
    if value is None:
        parent.pop(keys[-1], None)
    else:
        parent[keys[-1]] = value


class EmbeddedConnector(BaseConnector):
    """The live side of one environment in the embedded store."""

    name = "embedded"
    capabilities = frozenset({"write", "lease", "activity", "batched_read", "merge"})

    def __init__(self, spec: EnvironmentSpec, root: Path, *, clock: Any = time.time) -> None:
        self.spec = spec
        self.env = spec.name
        self.path = store_path(root)
        self.clock = clock
        self.store = LiveStore(self.path, self.env, clock=clock, sync_each_commit=False, keep_open=True)

    # --- reading ---------------------------------------------------------------------------

    def read(self) -> dict[str, Any]:
        """The live document with the most recent activity entries (`activity()` has them all)."""
        try:
            with self.store.connect() as conn:
                return self._read(conn)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot read {self.env}: {e}") from e

    def _read(self, conn: sqlite3.Connection) -> dict[str, Any]:
        doc = self.store.doc(conn)
        entries = self.store.recent_activity(conn, RECENT_ACTIVITY)
        doc["available_terms"] = declared_terms(self.spec)
        if entries:
            doc["activity"] = [entry for _, _, entry in entries]
        return doc

    @staticmethod
    def read_many(connectors: Sequence[EmbeddedConnector]) -> dict[str, dict[str, Any]]:
        """`read()` of many environments of one store file over one connection (a fleet's plan)."""
        if not connectors:
            return {}
        first = connectors[0]
        try:
            with first.store.connect() as conn:
                return {c.env: c._read(conn) for c in connectors}
        except sqlite3.Error as e:
            raise StoreError(f"{first.path}: cannot read the live state: {e}") from e

    def activity(self, since_id: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """The whole live activity log (after `since_id`), oldest first: [{"id", "at", "entry"}]."""
        with self._faults("read the activity log of"), self.store.connect() as conn:
            rows = self.store.activity(conn, since_id, limit)
        return [{"id": id_, "at": at, "entry": entry} for id_, at, entry in rows]

    # --- writing ---------------------------------------------------------------------------

    def apply_changes(self, changes: Sequence[Change], *, record: dict[str, Any]) -> None:
        """One transaction, guarded by `record["live_fingerprint"]` (when given) compared inside it."""
        if not changes:
            return
        with self._faults("apply to", rolled_back=True), self.store.transaction() as conn:
            self._check_unchanged(conn, record.get("live_fingerprint"))
            self.store.apply_changes(conn, changes, record)

    def _check_unchanged(self, conn: sqlite3.Connection, expected: Any) -> None:
        """Refuse when live is no longer what the plan saw: the document `read()` would return now,
        under the write lock, so no console edit can slip in between the check and the write."""
        if expected and fingerprint(self._read(conn)) != expected:
            raise ConflictError(f"{self.env}: the live side changed since it was read; nothing was applied; "
                                "plan again")

    def execute_merge(
        self, term: str, types: Sequence[str], *, send_updates: bool, record: dict[str, Any]
    ) -> dict[str, Any]:
        """The embedded SIS has every declared term, so a merge of one of them completes at once."""
        if term not in declared_terms(self.spec):
            raise ConnectorError(f"{self.env}: term {term} is not rolled in the SIS")
        with self._faults("record the merge of", rolled_back=True), self.store.transaction() as conn:
            return self.store.merge(conn, term, types, send_updates=send_updates, record=record)

    def append_activity(self, entry: dict[str, Any]) -> None:
        with self._faults("log activity for", rolled_back=True), self.store.transaction() as conn:
            self.store.insert_activity(conn, entry)

    @contextmanager
    def _faults(self, doing: str, *, rolled_back: bool = False) -> Iterator[None]:
        """The store failing under us (disk full, read-only, locked too long) as one StoreError line."""
        try:
            yield
        except (sqlite3.Error, OSError) as e:
            after = "; nothing was applied (the transaction was rolled back)" if rolled_back else ""
            raise StoreError(f"{self.path}: cannot {doing} {self.env}: {_fault_reason(e)}{after}") from e

    # --- the lease primitives (BaseConnector holds the loop) --------------------------------

    def _try_lease(self, holder: str, ttl_s: float, takeover: str | None = None) -> LeaseAnswer:
        # the takeover is decided in the same transaction that writes it: a lease that moved on since the
        # caller saw its dead holder is left alone
        with self._faults("take the lease of"), self.store.transaction() as conn:
            return self.store.take_lease(conn, holder, ttl_s, takeover)

    def _release_lease(self, holder: str) -> None:
        with self._faults("release the lease of"), self.store.transaction() as conn:
            self.store.release_lease(conn, holder)

    def _lease_scope(self) -> Hashable:
        return "embedded", str(self.path.resolve()), self.env

    def _wait_bound(self) -> float:
        return LOCK_WAIT_S  # this module's: the store's busy timeout, read at call time

    def _now(self) -> float:
        return float(self.clock())


def _fault_reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    code = getattr(error, "errno", None)
    if code == errno.ENOSPC or "disk is full" in text:
        return f"the disk is full or the store reached its size limit ({text})"
    if code in (errno.EROFS, errno.EACCES) or "readonly" in text:
        return f"the store is read-only ({text})"
    return text
