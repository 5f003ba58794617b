"""`reconciler emulator`: the admin API contract served by a real server on 127.0.0.1 (a subprocess)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import emulator_fixture
import httpx
import pytest
from emulator_fixture import PROJECT, Emulator

from reconciler.connectors.embedded import EmbeddedConnector, LiveStore, store_path
from reconciler.core.plan import fingerprint
from reconciler.errors import StoreError
from reconciler.repo import load_repository

start_emulator = emulator_fixture.start_emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One server for the tests of plain behaviour; each test works on its own environment (`env`)."""
    server = emulator_fixture.launch(tmp_path_factory.mktemp("shared-emulator"))
    yield server
    assert server.stop() == 0


@pytest.fixture
def env(request: pytest.FixtureRequest) -> str:
    """An environment name of this test's own."""
    return "t-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]

RECORD = {"revision": None, "plan_id": "plan-1", "at": "2026-11-25T12:00:00-06:00", "actor": "tester"}
NIGHTLY_ON = {"action": "change", "path": "schedule.nightly", "before": None, "after": True}
CANARY = "canary-7f3a9c1e-do-not-log-me"


def _client(server: Emulator, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or server.token}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=10.0)


def _write_headers(tag: str | None = "*", key: str | None = None) -> dict[str, str]:
    headers = {"Idempotency-Key": key or str(uuid.uuid4())}
    if tag is not None:
        headers["If-Match"] = tag
    return headers


def _apply(client: httpx.Client, env: str, changes: list[dict[str, Any]], tag: str = "*",
           key: str | None = None, **extra: Any) -> httpx.Response:
    body = {"changes": changes, "record": RECORD, **extra}
    return client.post(f"/environments/{env}/changes", json=body, headers=_write_headers(tag, key))


def _request(rid: str) -> dict[str, Any]:
    return {"id": rid, "site": "staging", "action": "db-refresh", "preferred": "2026-12-13T02:00"}


# --- the token ------------------------------------------------------------------------------


def test_401_before_routing(emulator: Emulator) -> None:
    for path in ("/api/v1/environments/staging", "/api/v1/no/such/path", "/api/elsewhere",
                 "/api/v1/environments/staging/changes"):
        for auth in (None, f"Bearer {emulator.token}x", "Bearer wrong-token", f"Basic {emulator.token}", "Bearer"):
            headers = {} if auth is None else {"Authorization": auth}
            response = httpx.post(f"{emulator.base}{path}", headers=headers, timeout=10) if path.endswith(
                "changes") else httpx.get(f"{emulator.base}{path}", headers=headers, timeout=10)
            assert response.status_code == 401, (path, auth)
            assert response.json() == {"error": "unauthorized"}
            assert response.headers["www-authenticate"] == "Bearer"


def test_healthz_needs_no_token_and_unknown_paths_are_json_404(emulator: Emulator) -> None:
    assert httpx.get(f"{emulator.base}/healthz", timeout=10).json() == {"ok": True}
    with _client(emulator) as client:
        missing = client.get("/no/such/path")
        bad_name = client.get("/environments/Not_A_Name")
        wrong_method = client.put("/environments/staging")
    assert missing.status_code == 404 and "error" in missing.json()
    assert bad_name.status_code == 404 and "error" in bad_name.json()
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


# --- reads and the ETag ---------------------------------------------------------------------


def test_unknown_environment_reads_empty_with_its_etag(emulator: Emulator, env: str) -> None:
    with _client(emulator) as client:
        response = client.get(f"/environments/{env}")
    assert response.status_code == 200
    assert response.json() == {}
    assert response.headers["etag"] == f'"{fingerprint({})}"'


def test_apply_then_read_etag_is_the_live_fingerprint(emulator: Emulator, env: str) -> None:
    with _client(emulator) as client:
        tag = client.get(f"/environments/{env}").headers["etag"]
        applied = _apply(client, env, [NIGHTLY_ON], tag=tag)
        read = client.get(f"/environments/{env}")
    assert applied.status_code == 200, applied.text
    live = read.json()
    assert live["schedule"] == {"nightly": True}
    assert live["applied"] == RECORD
    assert applied.json() == {"applied": 1, "etag": fingerprint(live)}
    assert read.headers["etag"] == f'"{fingerprint(live)}"' == applied.headers["etag"]


def test_stale_if_match_is_412_and_missing_is_428(emulator: Emulator, env: str) -> None:
    with _client(emulator) as client:
        first = client.get(f"/environments/{env}").headers["etag"]
        assert _apply(client, env, [NIGHTLY_ON], tag=first).status_code == 200
        stale = _apply(client, env, [{**NIGHTLY_ON, "after": False}], tag=first)
        missing = client.post(f"/environments/{env}/changes", json={"changes": [], "record": RECORD},
                              headers=_write_headers(tag=None))
        no_key = client.post(f"/environments/{env}/changes", json={"changes": [], "record": RECORD},
                             headers={"If-Match": "*"})
        live = client.get(f"/environments/{env}")
    assert stale.status_code == 412
    assert stale.json()["etag"] == fingerprint(live.json())
    assert missing.status_code == 428
    assert no_key.status_code == 400 and "Idempotency-Key" in no_key.json()["error"]
    assert live.json()["schedule"] == {"nightly": True}


def test_idempotent_replay_applies_once(emulator: Emulator, env: str) -> None:
    key = str(uuid.uuid4())
    with _client(emulator) as client:
        first = _apply(client, env, [{"action": "add", "path": "merges.courses.terms", "value": "202710"}],
                       key=key)
        again = _apply(client, env, [{"action": "add", "path": "merges.courses.terms", "value": "202710"}],
                       key=key, tag='"sha256:stale"')  # a replay answers before If-Match is checked
        other = _apply(client, env, [NIGHTLY_ON], key=key)
        entries = client.get(f"/environments/{env}/activity").json()["entries"]
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert again.headers["etag"] == first.headers["etag"]
    assert other.status_code == 422 and "different request" in other.json()["error"]
    assert [e["entry"]["kind"] for e in entries] == ["apply"]


def test_failing_change_is_422_with_its_index_and_keeps_nothing(emulator: Emulator, env: str) -> None:
    changes = [NIGHTLY_ON, {"action": "cancel", "path": "update_requests.missing", "value": "missing"}]
    invalid = [NIGHTLY_ON, {"action": "change", "path": "schedule.realtime", "before": None, "after": "yes"}]
    with _client(emulator) as client:
        missing = _apply(client, env, changes)
        not_valid = _apply(client, env, invalid)
        live = client.get(f"/environments/{env}").json()
    assert missing.status_code == 422
    assert missing.json()["applied"] == 0 and missing.json()["failed"] == 1
    assert not_valid.status_code == 422 and not_valid.json()["failed"] == 1
    assert "schedule.realtime" in not_valid.json()["error"]
    assert live == {}


def test_bad_bodies_are_400(emulator: Emulator, env: str) -> None:
    with _client(emulator) as client:
        not_json = client.post(f"/environments/{env}/changes", content=b"{nope", headers=_write_headers())
        wrong = client.post(f"/environments/{env}/changes", json={"changes": "x", "record": RECORD},
                            headers=_write_headers())
        lease = client.post(f"/environments/{env}/lease", json={"holder": "", "ttl_s": 5})
        since = client.get(f"/environments/{env}/activity", params={"since_id": "x"})
    assert [r.status_code for r in (not_json, wrong, lease, since)] == [400, 400, 400, 400]
    assert "changes" in wrong.json()["error"]


# --- the lease ------------------------------------------------------------------------------


def test_lease_blocks_another_holder_until_released_or_expired(emulator: Emulator, env: str) -> None:
    with _client(emulator) as client:
        alice = client.post(f"/environments/{env}/lease", json={"holder": "alice", "ttl_s": 60})
        assert alice.status_code == 200 and alice.json()["holder"] == "alice"
        assert alice.json()["expires"] > time.time() + 50
        bob = client.post(f"/environments/{env}/lease", json={"holder": "bob", "ttl_s": 60})
        assert bob.status_code == 423
        assert bob.json()["holder"] == "alice" and bob.json()["expires"] == alice.json()["expires"]
        blocked = _apply(client, env, [NIGHTLY_ON], lease_holder="bob")
        assert blocked.status_code == 423 and blocked.json()["holder"] == "alice"
        assert _apply(client, env, [NIGHTLY_ON], lease_holder="alice").status_code == 200
        assert client.post(f"/environments/{env}-2/lease", json={"holder": "bob", "ttl_s": 60}).status_code == 200
        assert client.delete(f"/environments/{env}/lease", params={"holder": "bob"}).status_code == 204
        assert client.post(f"/environments/{env}/lease", json={"holder": "bob", "ttl_s": 1}).status_code == 423
        assert client.delete(f"/environments/{env}/lease", params={"holder": "alice"}).status_code == 204
        short = client.post(f"/environments/{env}/lease", json={"holder": "bob", "ttl_s": 0.3})
        assert short.status_code == 200
        time.sleep(0.4)  # bob's lease runs out
        taken = client.post(f"/environments/{env}/lease", json={"holder": "carol", "ttl_s": 60})
        assert taken.status_code == 200 and taken.json()["holder"] == "carol"


# --- activity -------------------------------------------------------------------------------


def test_activity_append_is_idempotent_and_lists_oldest_first(emulator: Emulator, env: str) -> None:
    key = str(uuid.uuid4())
    with _client(emulator) as client:
        first = client.post(f"/environments/{env}/activity", json={"message": "one", "actor": "a"},
                            headers={"Idempotency-Key": key})
        replay = client.post(f"/environments/{env}/activity", json={"message": "one", "actor": "a"},
                             headers={"Idempotency-Key": key})
        second = client.post(f"/environments/{env}/activity", json={"message": "two"},
                             headers={"Idempotency-Key": str(uuid.uuid4())})
        no_key = client.post(f"/environments/{env}/activity", json={"message": "three"})
        listed = client.get(f"/environments/{env}/activity").json()["entries"]
        after = client.get(f"/environments/{env}/activity", params={"since_id": first.json()["id"]}).json()
        limited = client.get(f"/environments/{env}/activity", params={"limit": 1}).json()
        other = client.get(f"/environments/{env}-2/activity").json()
    assert first.status_code == replay.status_code == second.status_code == 201
    assert replay.json() == first.json() and second.json()["id"] > first.json()["id"]
    assert no_key.status_code == 400
    assert [e["entry"]["message"] for e in listed] == ["one", "two"]
    assert [e["entry"]["message"] for e in after["entries"]] == ["two"]
    assert [e["id"] for e in limited["entries"]] == [first.json()["id"]]
    assert other == {"entries": []}


# --- update requests ------------------------------------------------------------------------


def test_update_request_lifecycle_and_cancel_409_when_in_progress(emulator: Emulator, env: str) -> None:
    with _client(emulator) as client:
        tag = client.get(f"/environments/{env}").headers["etag"]
        made = client.post(f"/environments/{env}/update-requests", json=_request("refresh-1"),
                           headers=_write_headers(tag))
        assert made.status_code == 201, made.text
        assert made.json()["status"] == "To Be Scheduled" and made.json()["id"] == "refresh-1"
        no_tag = client.post(f"/environments/{env}/update-requests", json=_request("refresh-2"),
                             headers=_write_headers(tag=None))
        assert no_tag.status_code == 428
        stale = client.post(f"/environments/{env}/update-requests", json=_request("refresh-2"),
                            headers=_write_headers(tag))
        assert stale.status_code == 412
        assert client.post(f"/environments/{env}/update-requests", json=_request("refresh-2"),
                           headers=_write_headers()).status_code == 201
        moved = client.put(f"/environments/{env}/update-requests/refresh-1/status",
                           json={"status": "In Progress"})
        assert moved.status_code == 200 and moved.json()["status"] == "In Progress"
        refused = client.delete(f"/environments/{env}/update-requests/refresh-1", headers=_write_headers())
        assert refused.status_code == 409 and "In Progress" in refused.json()["error"]
        cancelled = client.delete(f"/environments/{env}/update-requests/refresh-2", headers=_write_headers())
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "Cancelled"
        unknown = client.delete(f"/environments/{env}/update-requests/nope", headers=_write_headers())
        assert unknown.status_code == 404
        listed = client.get(f"/environments/{env}/update-requests").json()["requests"]
    assert {rid: r["status"] for rid, r in listed.items()} == {"refresh-1": "In Progress",
                                                                "refresh-2": "Cancelled"}
    assert listed["refresh-2"] == {**{k: v for k, v in _request("x").items() if k != "id"}, "status": "Cancelled"}


# --- merges and the SIS ---------------------------------------------------------------------


def test_merge_409_for_a_term_not_rolled_and_200_for_a_rolled_one(emulator: Emulator, env: str) -> None:
    body = {"term": "202730", "types": ["courses", "sections"], "send_updates": False,
            "record": {"actor": "tester", "at": "2026-11-25T12:00:00-06:00"}}
    with _client(emulator) as client:
        anything = client.post(f"/environments/{env}/merges", json=body, headers=_write_headers())
        assert anything.status_code == 200  # no available_terms set: every term is rolled
        rolled = client.put(f"/environments/{env}/available-terms", json={"terms": ["202710", "202720"]})
        assert rolled.status_code == 200 and rolled.json()["available_terms"] == ["202710", "202720"]
        assert rolled.headers["etag"] == f'"{fingerprint(rolled.json())}"'
        refused = client.post(f"/environments/{env}/merges", json=body, headers=_write_headers())
        done = client.post(f"/environments/{env}/merges", json={**body, "term": "202710"},
                           headers=_write_headers())
        unrolled_add = _apply(client, env, [{"action": "add", "path": "merges.courses.terms", "value": "202730"}])
        every = client.put(f"/environments/{env}/available-terms", json={"terms": None})
        entries = client.get(f"/environments/{env}/activity").json()["entries"]
    assert refused.status_code == 409 and "202730" in refused.json()["error"]
    assert done.status_code == 200
    assert done.json() == {"term": "202710", "types": ["courses", "sections"], "send_updates": False,
                           "status": "completed"}
    assert unrolled_add.status_code == 422
    assert "available_terms" not in every.json()
    assert [(e["entry"]["kind"], e["entry"]["term"]) for e in entries] == [("merge", "202730"), ("merge", "202710")]
    assert entries[-1]["entry"]["outcome"] == "completed" and entries[-1]["entry"]["actor"] == "tester"


# --- the console ----------------------------------------------------------------------------


def test_console_edit_changes_live_without_an_applied_record(emulator: Emulator, env: str) -> None:
    with _client(emulator) as client:
        assert _apply(client, env, [NIGHTLY_ON]).status_code == 200
        before = client.get(f"/environments/{env}")
        edited = client.patch(f"/environments/{env}/console", json={"set": {"schedule.realtime": False}})
        stale = client.patch(f"/environments/{env}/console", json={"set": {"schedule.realtime": True}},
                             headers={"If-Match": before.headers["etag"]})
        invalid = client.patch(f"/environments/{env}/console", json={"set": {"schedule.realtime": "no"}})
        read_only = client.patch(f"/environments/{env}/console", json={"set": {"applied": None}})
        entries = client.get(f"/environments/{env}/activity").json()["entries"]
    assert edited.status_code == 200
    assert edited.json()["schedule"] == {"nightly": True, "realtime": False}
    assert edited.json()["applied"] == before.json()["applied"] == RECORD
    assert edited.headers["etag"] != before.headers["etag"]
    assert stale.status_code == 412
    assert invalid.status_code == 422 and read_only.status_code == 422
    assert [e["entry"]["kind"] for e in entries] == ["apply", "console"]
    assert entries[-1]["entry"]["set"] == {"schedule.realtime": False}


# --- one store with the embedded connector --------------------------------------------------


def test_serves_what_the_embedded_connector_wrote(repo: Path, cli, start_emulator) -> None:  # type: ignore[no-untyped-def]
    assert cli("--root", str(repo), "apply", "staging").code == 0
    embedded = EmbeddedConnector(load_repository(repo).envs["staging"], repo).read()
    server = start_emulator(db=store_path(repo))
    with _client(server) as client:
        served = client.get("/environments/staging")
    settings = {k: v for k, v in embedded.items() if k not in ("activity", "available_terms")}
    assert served.json() == settings
    assert served.headers["etag"] == f'"{fingerprint(settings)}"'


def test_a_version_1_store_opens_and_migrates(tmp_path: Path, start_emulator) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "old.sqlite"
    with closing_db(db) as conn:
        conn.executescript(V1_DDL)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        old = {"schedule": {"nightly": False}, "applied": {**RECORD, "message": "kept by old versions"}}
        conn.execute("INSERT INTO live VALUES ('staging', ?)", (json.dumps(old),))
        conn.execute("INSERT INTO activity (env, at, entry) VALUES ('staging', '2026-01-01T00:00:00Z', '{\"m\": 1}')")
    server = start_emulator(db=db)
    with _client(server) as client:
        read = client.get("/environments/staging").json()
        entries = client.get("/environments/staging/activity").json()["entries"]
        written = client.post("/environments/staging/activity", json={"m": 2},
                              headers={"Idempotency-Key": "k-1"})
    assert read == {"schedule": {"nightly": False}, "applied": RECORD}  # served as the live-state schema says
    assert [e["entry"] for e in entries] == [{"m": 1}]
    assert written.status_code == 201
    with closing_db(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
        assert conn.execute("SELECT COUNT(*) FROM idempotency").fetchone() == (1,)


def test_a_store_of_a_newer_version_is_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "new.sqlite"
    with closing_db(db) as conn:
        conn.executescript(V1_DDL)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '9')")
    with pytest.raises(StoreError, match="version 9 is not supported") as info, LiveStore(db, "staging").connect():
        pass
    assert "\n" not in str(info.value)
    with closing_db(db) as conn:  # left as it was
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("9",)


def test_embedded_connector_reads_a_migrated_version_1_store(repo: Path) -> None:
    path = store_path(repo)
    path.parent.mkdir(parents=True)
    with closing_db(path) as conn:
        conn.executescript(V1_DDL)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("INSERT INTO live VALUES ('staging', ?)", (json.dumps({"schedule": {"realtime": True}}),))
    connector = EmbeddedConnector(load_repository(repo).envs["staging"], repo)
    assert connector.read()["schedule"] == {"realtime": True}
    with connector.lock("me", 5):
        connector.append_activity({"at": "2026-11-25T12:00:00-06:00", "actor": "me", "message": "hi"})
    assert [e["message"] for e in connector.read()["activity"]] == ["hi"]


V1_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE live (env TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE lease (env TEXT PRIMARY KEY, holder TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE activity (
    id INTEGER PRIMARY KEY AUTOINCREMENT, env TEXT NOT NULL, at TEXT NOT NULL, entry TEXT NOT NULL
);
"""


class closing_db:
    """A SQLite connection closed at the end of a with block (sqlite3's own only commits)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


# --- faults ---------------------------------------------------------------------------------


def test_dropped_write_is_applied_and_its_retry_is_not_applied_again(start_emulator) -> None:  # type: ignore[no-untyped-def]
    server = start_emulator(drop_rate=1.0, seed=1)
    key = str(uuid.uuid4())
    with _client(server) as client:
        for _ in range(2):  # the first attempt and its retry: both lose their answer
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                _apply(client, "staging", [NIGHTLY_ON], key=key)
        live = client.get("/environments/staging").json()
        entries = client.get("/environments/staging/activity").json()["entries"]
    assert live["schedule"] == {"nightly": True}
    assert len(entries) == 1
    assert server.proc.poll() is None


def test_injected_errors_do_nothing(start_emulator) -> None:  # type: ignore[no-untyped-def]
    server = start_emulator(error_rate=1.0, seed=3)
    with _client(server) as client:
        statuses = {_apply(client, "staging", [NIGHTLY_ON]).status_code for _ in range(8)}
    assert statuses <= {500, 503} and statuses
    with closing_db(server.db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM live").fetchone() == (0,)
    assert httpx.get(f"{server.base}/healthz", timeout=10).status_code == 200  # faults are for /api only


def test_overload_is_429_with_retry_after(start_emulator) -> None:  # type: ignore[no-untyped-def]
    server = start_emulator(latency_ms=400, extra_args=["--max-in-flight", "1"])
    with _client(server) as client, concurrent.futures.ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(lambda _: client.get("/environments/staging"), range(3)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and 429 in statuses
    busy = next(r for r in responses if r.status_code == 429)
    assert busy.headers["retry-after"].isdigit() and "error" in busy.json()


def test_latency_is_added_before_answering(start_emulator) -> None:  # type: ignore[no-untyped-def]
    server = start_emulator(latency_ms=250)
    with _client(server) as client:
        started = time.monotonic()
        assert client.get("/environments/staging").status_code == 200
        assert time.monotonic() - started >= 0.25


# --- the process ----------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_with_exit_0(start_emulator, sig: int) -> None:  # type: ignore[no-untyped-def]
    server = start_emulator()
    with _client(server) as client:
        assert client.get("/environments/staging").status_code == 200
    started = time.monotonic()
    assert server.stop(sig, timeout=10) == 0, server.output()
    assert time.monotonic() - started < 8
    assert "Traceback" not in server.output()


def test_the_token_never_appears_in_the_logs(start_emulator) -> None:  # type: ignore[no-untyped-def]
    server = start_emulator(token=CANARY, drop_rate=0.5, seed=7)
    with _client(server) as client:
        client.get("/environments/staging", params={"x": "1"})
        for _ in range(4):
            with contextlib.suppress(httpx.TransportError):
                _apply(client, "staging", [NIGHTLY_ON])
        client.get("/no/such/path")
    httpx.get(f"{server.url}/environments/staging", headers={"Authorization": f"Bearer {CANARY}x"}, timeout=10)
    assert server.stop() == 0
    output = server.output()
    assert "GET /api/v1/environments/staging 200" in output  # the log is there, with paths only
    assert CANARY not in output
    assert "x=1" not in output


def test_non_loopback_host_needs_allow_remote(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RECONCILER_TOKEN", CANARY)
    result = cli("emulator", "--host", "0.0.0.0", "--db", str(tmp_path / "s.sqlite"))
    assert result.code == 1
    assert "--allow-remote" in result.err and result.err.strip().count("\n") == 0
    assert not (tmp_path / "s.sqlite").exists()


def test_unset_token_variable_is_refused(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("MY_EMULATOR_TOKEN", raising=False)
    result = cli("emulator", "--token-env", "MY_EMULATOR_TOKEN", "--db", str(tmp_path / "s.sqlite"))
    assert result.code == 1
    assert "MY_EMULATOR_TOKEN" in result.err and "not set" in result.err
    assert result.err.strip().count("\n") == 0


def test_a_busy_port_is_one_line(cli, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RECONCILER_TOKEN", CANARY)
    result = cli("emulator", "--port", str(emulator.port), "--db", str(tmp_path / "s.sqlite"))
    assert result.code == 1
    assert "cannot listen" in result.err and result.err.strip().count("\n") == 0


def test_the_command_module_does_not_import_the_server_libraries() -> None:
    code = ("import sys, reconciler.cli.emulator; "
            "print(sorted(m for m in ('starlette', 'uvicorn', 'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=PROJECT, check=True).stdout
    assert out.strip() == "[]"


def test_allow_remote_warns_and_serves(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import reconciler.emulator.server as server

    served: list[str] = []
    monkeypatch.setenv("RECONCILER_TOKEN", CANARY)
    monkeypatch.setattr(server, "listen", lambda host, port: served.append(f"{host}:{port}") or _FakeSocket())
    monkeypatch.setattr(server, "serve", lambda app, sock: served.append("served"))
    monkeypatch.setattr(server, "configure_logging", lambda: None)  # keep this process's logging as it is
    result = cli("emulator", "--host", "0.0.0.0", "--port", "8123", "--allow-remote", "--db", str(tmp_path / "s.db"))
    assert result.code == 0, result.err
    assert served == ["0.0.0.0:8123", "served"]  # never bound for real: tests listen on 127.0.0.1 only
    assert result.err.startswith("warning: serving on 0.0.0.0")
    assert CANARY not in result.err


class _FakeSocket:
    def getsockname(self) -> tuple[str, int]:
        return ("0.0.0.0", 8123)


def test_default_store_is_the_repositorys_or_a_local_file(repo: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.cli.emulator import FALLBACK_DB, _default_db

    assert _default_db(None, str(repo)) == store_path(repo)
    monkeypatch.chdir(repo / "environments")
    assert _default_db(None, None) == store_path(repo)
    monkeypatch.chdir(tmp_path)
    assert _default_db(None, None) == Path(FALLBACK_DB)
    assert _default_db("x.sqlite", None) == Path("x.sqlite")
