"""The embedded connector: a real SQLite store in a temporary repository."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from reconciler.connectors import get_connector
from reconciler.connectors.base import Connector
from reconciler.connectors.embedded import EmbeddedConnector, LiveStore, store_path
from reconciler.core.plan import Action, Change, fingerprint
from reconciler.errors import ConflictError, ConnectorError, LockError, StoreError
from reconciler.model import EnvironmentSpec, Kind
from reconciler.repo import load_repository

RECORD = {"revision": None, "plan_id": "plan-test", "at": "2026-11-25T12:00:00-06:00", "actor": "tester"}


def _spec(repo: Path, name: str = "staging") -> EnvironmentSpec:
    return load_repository(repo).envs[name]


def test_fresh_store_reads_empty_with_every_declared_term(repo: Path) -> None:
    conn = get_connector(_spec(repo), repo)
    assert isinstance(conn, EmbeddedConnector)
    assert isinstance(conn, Connector)
    live = conn.read()
    assert live == {"available_terms": ["202710", "202720", "202730"]}
    path = store_path(repo)
    assert path.is_file()
    with closing(sqlite3.connect(path)) as db, db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_apply_writes_document_record_and_activity(repo: Path) -> None:
    conn = get_connector(_spec(repo), repo)
    changes = [
        Change(Action.ADD, "merges.courses.terms", value="202710"),
        Change(Action.CHANGE, "schedule.nightly", before=None, after=True),
    ]
    conn.apply_changes(changes, record=RECORD)
    live = conn.read()
    assert live["merges"] == {"courses": {"terms": ["202710"]}}
    assert live["schedule"] == {"nightly": True}
    assert live["applied"] == RECORD
    assert [a["outcome"] for a in live["activity"]] == ["applied"]
    assert live["activity"][0]["changes"] == 2
    # another environment in the same file is untouched
    assert get_connector(_spec(repo, "sandbox"), repo).read().get("merges") is None


def test_a_failing_change_rolls_back_the_whole_apply(repo: Path) -> None:
    conn = get_connector(_spec(repo), repo)
    changes = [
        Change(Action.ADD, "merges.courses.terms", value="202710"),
        Change(Action.CANCEL, "update_requests.missing", value="missing"),  # no such request: KeyError
    ]
    with pytest.raises(KeyError):
        conn.apply_changes(changes, record=RECORD)
    live = conn.read()
    assert "merges" not in live
    assert "applied" not in live
    assert "activity" not in live


def test_no_changes_makes_no_write(repo: Path) -> None:
    conn = get_connector(_spec(repo), repo)
    conn.read()
    conn.apply_changes([], record=RECORD)
    with closing(sqlite3.connect(store_path(repo))) as db, db:
        assert db.execute("SELECT COUNT(*) FROM live").fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM activity").fetchone() == (0,)


def test_garbage_file_is_not_a_store(repo: Path) -> None:
    path = store_path(repo)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not sqlite at all\n" * 200)
    with pytest.raises(StoreError, match="is not a reconciler store"):
        get_connector(_spec(repo), repo).read()


def test_foreign_sqlite_file_is_not_a_store(repo: Path) -> None:
    path = store_path(repo)
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE other (x INTEGER)")
    with pytest.raises(StoreError, match="is not a reconciler store"):
        get_connector(_spec(repo), repo).read()


def test_lock_held_by_another_holder_names_it(repo: Path) -> None:
    spec = _spec(repo)
    first, second = EmbeddedConnector(spec, repo), EmbeddedConnector(spec, repo)
    with (
        first.lock("alice@ci:1", 60),
        pytest.raises(LockError, match="alice@ci:1"),
        second.lock("bob@laptop:2", 60, wait_s=0.2),
    ):
        pass
    # released: bob gets it now
    with second.lock("bob@laptop:2", 60, wait_s=0.2), closing(sqlite3.connect(store_path(repo))) as db, db:
        assert db.execute("SELECT holder FROM lease WHERE env = 'staging'").fetchone() == ("bob@laptop:2",)


def test_expired_lease_is_taken_over(repo: Path) -> None:
    spec = _spec(repo)
    early = EmbeddedConnector(spec, repo, clock=lambda: 1000.0)
    late = EmbeddedConnector(spec, repo, clock=lambda: 2000.0)
    with early.lock("killed-run", 10), late.lock("new-run", 60, wait_s=0.2):
        with closing(sqlite3.connect(store_path(repo))) as db, db:
            row = db.execute("SELECT holder, expires FROM lease WHERE env = 'staging'").fetchone()
        assert row == ("new-run", 2060.0)


def test_lease_of_one_environment_does_not_block_another(repo: Path) -> None:
    staging = EmbeddedConnector(_spec(repo), repo)
    sandbox = EmbeddedConnector(_spec(repo, "sandbox"), repo)
    with staging.lock("alice", 60), sandbox.lock("bob", 60, wait_s=0.1):
        assert sandbox.read()["available_terms"]


def test_unknown_connector_is_one_line(repo: Path) -> None:
    spec = _spec(repo)
    env_doc = spec.docs[Kind.ENVIRONMENT]
    data = {**env_doc.data, "live": {"connector": "carrier-pigeon"}}
    odd = EnvironmentSpec(spec.name, {**spec.docs, Kind.ENVIRONMENT: type(env_doc)(
        env_doc.kind, env_doc.file, data, env_doc.marks, env_doc.key_marks)})
    with pytest.raises(ConnectorError, match="unknown connector 'carrier-pigeon'") as info:
        get_connector(odd, repo)
    assert "\n" not in str(info.value)


# --- the fingerprint guard, inside the write transaction -------------------------------------------


def test_a_console_edit_after_the_read_is_a_conflict_and_survives(repo: Path) -> None:
    conn = get_connector(_spec(repo), repo)
    seen = conn.read()
    with LiveStore(store_path(repo), "staging").transaction() as db:
        LiveStore(store_path(repo), "staging").console_set(db, {"schedule.nightly": False})
    stale = {**RECORD, "live_fingerprint": fingerprint(seen)}
    refused = r"^staging: the live side changed since it was read; nothing was applied; plan again$"
    with pytest.raises(ConflictError, match=refused):
        conn.apply_changes([Change(Action.CHANGE, "schedule.nightly", before=None, after=True)], record=stale)
    live = conn.read()
    assert live["schedule"] == {"nightly": False}
    assert "applied" not in live


def test_the_guard_compares_exactly_what_read_returns(repo: Path) -> None:
    """`available_terms` (added by read) and `activity`/`applied` (left out of the fingerprint) must not make
    an unchanged live side look changed: applying twice, each time with the fingerprint of a fresh read."""
    conn = get_connector(_spec(repo), repo)
    conn.append_activity({"at": RECORD["at"], "actor": "tester", "message": "a comment"})
    for change in (Change(Action.ADD, "merges.courses.terms", value="202710"),
                   Change(Action.CHANGE, "schedule.nightly", before=None, after=True)):
        conn.apply_changes([change], record={**RECORD, "live_fingerprint": fingerprint(conn.read())})
    live = conn.read()
    assert live["merges"] == {"courses": {"terms": ["202710"]}} and live["schedule"] == {"nightly": True}


# --- the store under load and faults ----------------------------------------------------------------


def test_a_read_does_not_wait_for_a_writer(repo: Path) -> None:
    """The schema version is compared as a number, so opening the store never migrates (and never takes
    the write lock) when it is current: plan reads while another process writes."""
    spec = _spec(repo)
    EmbeddedConnector(spec, repo).apply_changes([Change(Action.ADD, "merges.courses.terms", value="202710")],
                                                record=RECORD)
    writer = sqlite3.connect(store_path(repo), isolation_level=None, timeout=0.1)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE live SET doc = doc")
        fresh = EmbeddedConnector(spec, repo)  # a new connection, as a new `plan` opens
        assert fresh.read()["merges"] == {"courses": {"terms": ["202710"]}}
        assert EmbeddedConnector.read_many([fresh, EmbeddedConnector(_spec(repo, "sandbox"), repo)])
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def _fill_the_disk(db: sqlite3.Connection) -> None:
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def _make_read_only(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA query_only = ON")


@pytest.mark.parametrize(("fault", "reason"), [
    pytest.param(_fill_the_disk, "database or disk is full", id="disk-full"),
    pytest.param(_make_read_only, "readonly", id="read-only"),
])
def test_a_store_that_cannot_be_written_is_one_line_and_nothing_is_applied(
        repo: Path, fault: object, reason: str) -> None:
    conn = get_connector(_spec(repo), repo)
    assert isinstance(conn, EmbeddedConnector)
    conn.apply_changes([Change(Action.ADD, "merges.courses.terms", value="202710")], record=RECORD)
    before = conn.read()
    big = Change(Action.ADD, "access.users.big@example.edu", value={"products": ["scheduling"] * 5000})
    with conn.store.connect() as db:  # the connector's own connection: the fault is SQLite's, not a mock
        fault(db)  # type: ignore[operator]
    with pytest.raises(StoreError) as caught:
        conn.apply_changes([big], record={**RECORD, "live_fingerprint": fingerprint(before)})
    message = str(caught.value)
    assert message.startswith(f"{store_path(repo)}: cannot apply to staging: ")
    assert reason in message and message.endswith("nothing was applied (the transaction was rolled back)")
    assert "\n" not in message
    with conn.store.connect() as db:
        db.execute("PRAGMA max_page_count = 1073741823")
        db.execute("PRAGMA query_only = OFF")
    assert conn.read() == before  # rolled back, and the kept connection is usable again
    conn.apply_changes([big], record={**RECORD, "live_fingerprint": fingerprint(before)})
    assert "big@example.edu" in conn.read()["access"]["users"]


# --- the lease, decided inside the store transaction ---------------------------------------------------


def test_a_takeover_replaces_only_the_holder_it_names(repo: Path) -> None:
    store = LiveStore(store_path(repo), "staging")
    with store.transaction() as db:
        assert store.take_lease(db, "alive@elsewhere:1", 60)[:2] == (True, "alive@elsewhere:1")
    with store.transaction() as db:  # the dead holder seen earlier no longer holds it: left alone
        assert store.take_lease(db, "next@ci:2", 60, takeover="dead@here:3")[:2] == (False, "alive@elsewhere:1")
    with store.transaction() as db:
        assert store.take_lease(db, "next@ci:2", 60, takeover="alive@elsewhere:1")[:2] == (True, "next@ci:2")
