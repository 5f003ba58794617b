"""The per-environment pipeline of DESIGN §3 Safety, as a user meets it: a console edit made while an
apply waits for the lease, one environment down among several, a malformed live document, a bug inside
a connector, a saved plan edited and resealed, a deleted store after an apply.

Real SQLite, real git, the CLI in-process."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import threading
from contextlib import closing
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import reconciler.engine as engine_clock
from reconciler.connectors import get_connector
from reconciler.connectors.base import lease_holder
from reconciler.connectors.embedded import EmbeddedConnector, LiveStore, store_path
from reconciler.core.apply import plan_id_of
from reconciler.core.plan import digest
from reconciler.repo import load_repository

CHICAGO = ZoneInfo("America/Chicago")
AT = "2026-11-25T12:05"
NOW = datetime(2026, 11, 25, 12, 5, tzinfo=CHICAGO)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_clock, "now", lambda: NOW)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def grepo(repo: Path) -> Path:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "example")
    return repo


def live_doc(root: Path, env: str) -> dict:  # type: ignore[type-arg]
    with closing(sqlite3.connect(store_path(root))) as conn, conn:
        row = conn.execute("SELECT doc FROM live WHERE env = ?", (env,)).fetchone()
    return {} if row is None else json.loads(row[0])


def console(root: Path, env: str, values: dict) -> None:  # type: ignore[type-arg]
    store = LiveStore(store_path(root), env)
    with store.transaction() as conn:
        store.console_set(conn, values)


def records(root: Path) -> list[tuple[str, str]]:
    """(environment, outcome) of each activity commit, oldest first."""
    out = git(root, "log", "--reverse", "--format=%(trailers:key=Environment,valueonly,separator=)|"
                                        "%(trailers:key=Outcome,valueonly,separator=)", "reconciler/activity")
    return [tuple(line.split("|")) for line in out.splitlines() if line.strip("|")]  # type: ignore[misc]


# --- the saved plan is checked under the lease -----------------------------------------------------


def test_a_console_edit_made_while_apply_waits_for_the_lease_is_not_overwritten(cli, repo: Path,  # type: ignore[no-untyped-def]
                                                                               tmp_path: Path) -> None:
    assert cli("--root", str(repo), "apply", "--yes").code == 0
    console(repo, "staging", {"schedule.nightly": False})
    saved = tmp_path / "plan.json"
    assert cli("--root", str(repo), "plan", "staging", "--out", str(saved), "--detailed-exitcode").code == 2
    taken, edited = threading.Event(), threading.Event()

    def another_run() -> None:  # holds the lease; a person edits the console while apply waits for it
        connector = get_connector(load_repository(repo).envs["staging"], repo)
        with connector.lock(lease_holder("another-run"), 60):
            taken.set()
            threading.Event().wait(1.5)  # apply has read live by now and waits for the lease
            console(repo, "staging", {"access.users.new-chair@example.edu": {"products": ["scheduling"]}})
            edited.set()

    thread = threading.Thread(target=another_run)
    thread.start()
    assert taken.wait(10)
    result = cli("--root", str(repo), "apply", "--plan", str(saved))
    thread.join(10)
    assert edited.is_set()
    assert result.code == 1
    assert "staging: the saved plan is stale: the live side changed since" in result.err
    live = live_doc(repo, "staging")
    assert live["schedule"]["nightly"] is False  # the saved plan's change was not made
    assert live["access"]["users"]["new-chair@example.edu"] == {"products": ["scheduling"]}


def test_a_saved_plan_edited_and_resealed_by_hand_is_refused(cli, repo: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    saved = tmp_path / "plan.json"
    assert cli("--root", str(repo), "plan", "production", "--out", str(saved)).code == 0
    data = json.loads(saved.read_text())
    env = data["environments"][0]
    env["changes"].append({"action": "add", "path": "access.users.intruder@example.edu",
                           "value": {"products": ["admin", "scheduling"]}})
    body = {k: v for k, v in data.items() if k not in ("plan_id", "checksum")}
    data["checksum"] = digest(body)
    data["plan_id"] = plan_id_of(data["checksum"])
    saved.write_text(json.dumps(data))
    result = cli("--root", str(repo), "apply", "--plan", str(saved))
    assert result.code == 1
    assert "production: the saved plan's changes are not the ones its revision's YAML gives" in result.err
    assert live_doc(repo, "production") == {}


# --- environments are independent ---------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sandbox_down(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """sandbox's platform refuses connections (nothing listens on its port)."""
    path = repo / "environments" / "sandbox" / "environment.yaml"
    text = path.read_text()
    start = text.index("live:")
    rest = text[start:].split("\n")
    end = next(i for i, line in enumerate(rest[1:], 1) if line and not line.startswith(" "))
    live = (f"live:\n  connector: http\n  url: http://127.0.0.1:{closed_port()}/api/v1\n"
            "  token_env: RECONCILER_TOKEN_SANDBOX\n")
    path.write_text(text[:start] + live + "\n".join(rest[end:]))
    monkeypatch.setenv("RECONCILER_TOKEN_SANDBOX", "sandbox-canary-token-0000")
    monkeypatch.setenv("RECONCILER_HTTP_ATTEMPTS", "1")
    monkeypatch.setenv("RECONCILER_HTTP_DEADLINE", "2")
    return repo


def test_one_platform_down_does_not_stop_the_others(cli, sandbox_down: Path) -> None:  # type: ignore[no-untyped-def]
    root = str(sandbox_down)
    plan = cli("--root", root, "plan")
    assert plan.code == 1
    assert "production" in plan.out and "staging" in plan.out
    assert "error: sandbox:" in plan.err and "not planned (sandbox)" in plan.err

    applied = cli("--root", root, "apply", "--yes")
    assert applied.code == 1
    assert any(line.startswith("production: applied ") for line in applied.lines)
    assert any(line.startswith("staging: applied ") for line in applied.lines)
    assert "error: sandbox:" in applied.err and "apply failed for sandbox (1 of 3" in applied.err
    assert live_doc(sandbox_down, "production")["schedule"] and live_doc(sandbox_down, "staging")["schedule"]

    status = cli("--root", root, "status")
    assert status.code == 1
    assert "production:" in status.out and "  error:        sandbox:" in status.out
    assert "sandbox-canary-token" not in plan.err + applied.err + status.err + status.out


def test_a_malformed_live_document_is_a_one_line_fault_of_that_environment(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("--root", str(repo), "apply", "--yes").code == 0
    with closing(sqlite3.connect(store_path(repo))) as conn, conn:
        conn.execute("UPDATE live SET doc = ? WHERE env = 'staging'",
                     (json.dumps({"schedule": {"nightly": "yes", "realtime": True}}),))
    console(repo, "production", {"schedule.realtime": False})
    result = cli("--root", str(repo), "apply", "--yes")
    assert result.code == 1
    assert "staging: the live state is malformed: schedule.nightly must be boolean" in result.err
    assert "unexpected" not in result.err and "Traceback" not in result.err
    assert any(line.startswith("production: applied 1 change") for line in result.lines)


def test_a_bug_inside_a_connector_reaches_the_one_handler(cli, repo: Path,  # type: ignore[no-untyped-def]
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self, changes, *, record):  # type: ignore[no-untyped-def]
        raise KeyError("a bug")

    monkeypatch.setattr(EmbeddedConnector, "apply_changes", broken)
    result = cli("--root", str(repo), "apply", "staging", "--yes")
    assert result.code == 1
    assert "unexpected error: KeyError" in result.err and "--debug" in result.err
    with pytest.raises(KeyError, match="a bug"):
        cli("--debug", "--root", str(repo), "apply", "staging", "--yes")


# --- the empty-live guard knows the activity branch --------------------------------------------------


def test_a_deleted_store_after_an_apply_is_a_fault_not_a_desire(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("--root", str(grepo), "apply", "--yes").code == 0
    store_path(grepo).unlink()
    for extra in store_path(grepo).parent.glob("live.sqlite-*"):
        extra.unlink()
    result = cli("--root", str(grepo), "apply", "staging", "--yes")
    assert result.code == 1
    assert "reads as empty" in result.err and "--force" in result.err
    assert live_doc(grepo, "staging") == {}
    assert cli("--root", str(grepo), "apply", "staging", "--yes", "--force").code == 0
    assert live_doc(grepo, "staging")["schedule"]


# --- records ----------------------------------------------------------------------------------------


def test_each_environment_is_recorded_before_the_apply_ends(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("--root", str(grepo), "apply", "--yes", "--parallel", "1").code == 0
    assert records(grepo) == [("production", "applied"), ("sandbox", "applied"), ("staging", "applied")]
    assert not list((grepo / ".reconciler" / "pending").glob("*.json"))


def test_a_record_git_could_not_take_is_written_by_the_next_command(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    git(grepo, "checkout", "-q", "-b", "reconciler/activity")  # the branch checked out: it cannot be written
    result = cli("--root", str(grepo), "apply", "staging", "--yes")
    assert result.code == 0
    assert "kept in .reconciler/pending/" in result.err
    git(grepo, "checkout", "-q", "main")
    console(grepo, "staging", {"schedule.nightly": False})
    assert cli("--root", str(grepo), "apply", "staging", "--yes").code == 0
    assert records(grepo) == [("staging", "applied"), ("staging", "applied")]



# --- import keeps the YAML valid ----------------------------------------------------------------------


def test_an_import_that_would_leave_the_yaml_invalid_writes_nothing(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("--root", str(grepo), "apply", "--yes").code == 0
    phase = {"term": "209990", "start": "2026-12-01", "end": "2026-12-20", "editable": ["*"], "editors": ["registrar"]}
    console(grepo, "staging", {"phases.console-phase": phase})  # a term the YAML does not know
    before = git(grepo, "status", "--porcelain")
    result = cli("--root", str(grepo), "import", "staging")
    assert result.code == 1
    assert "would leave the YAML invalid (environments/staging/phases.yaml:" in result.err
    assert "nothing written" in result.err
    assert git(grepo, "status", "--porcelain") == before


def test_an_import_records_who_and_at_which_revision(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("--root", str(grepo), "apply", "--yes").code == 0
    console(grepo, "staging", {"schedule.nightly": False})
    assert cli("--root", str(grepo), "import", "staging").code == 0
    with closing(sqlite3.connect(store_path(grepo))) as conn, conn:
        entries = [json.loads(row[0]) for row in conn.execute("SELECT entry FROM activity WHERE env = 'staging'")]
    imported = [e for e in entries if e.get("kind") == "import"]
    assert imported and imported[-1]["actor"] == "Test Registrar <registrar@example.edu>"
    assert imported[-1]["revision"] == git(grepo, "rev-parse", "HEAD").strip()


def test_a_record_written_by_a_run_killed_before_forgetting_it_is_not_written_twice(grepo: Path) -> None:
    from reconciler.activity import Entry
    from reconciler.engine.records import Recorder

    entry = Entry("staging", None, "applied", "ci", None, "apply staging: applied 1 change", "")
    with Recorder(grepo, lambda _: None) as recorder:
        kept = recorder.done(None, entry, write=False)
        copy = kept.read_bytes()
        recorder.write([kept])
    kept.write_bytes(copy)  # killed after the branch took it, before the file was removed
    with Recorder(grepo, lambda _: None) as recorder:
        recorder.flush()
    assert records(grepo) == [("staging", "applied")]
    assert not kept.exists()



def test_a_missing_token_is_that_environment_s_fault_only(cli, sandbox_down: Path,  # type: ignore[no-untyped-def]
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_TOKEN_SANDBOX")
    result = cli("--root", str(sandbox_down), "apply", "--yes")
    assert result.code == 1
    assert any(line.startswith("staging: applied ") for line in result.lines)
    assert "error: sandbox:" in result.err and "RECONCILER_TOKEN_SANDBOX" in result.err
    assert "unexpected" not in result.err


@pytest.mark.parametrize(("option", "args"), [
    pytest.param("--reason", ("pause", "staging", "--reason", "Banner down\nActor: someone-else"), id="pause-reason"),
    pytest.param("--ticket", ("pause", "staging", "--reason", "Banner down", "--ticket", "SUP-1\rOutcome: applied"),
                 id="pause-ticket"),
    pytest.param("--message", ("apply", "staging", "--yes", "--message", "first\n\nRevision: forged"),
                 id="apply-message"),
    pytest.param("--ticket", ("apply", "staging", "--yes", "--ticket", "SUP-1\x00"), id="apply-ticket"),
])
def test_a_trailer_value_with_a_control_character_is_refused(cli, grepo: Path, option: str,  # type: ignore[no-untyped-def]
                                                              args: tuple[str, ...]) -> None:
    result = cli("--root", str(grepo), *args)
    assert result.code == 1
    assert f"'{option}'" in result.err and "one line of text" in result.err, result.err
    assert git(grepo, "status", "--porcelain") == "" and not store_path(grepo).exists()


def test_an_apply_from_uncommitted_yaml_warns_and_records_a_dirty_revision(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    path = grepo / "environments" / "staging" / "merge-settings.yaml"
    path.write_text(path.read_text().replace("realtime: false", "realtime: true"))
    result = cli("--root", str(grepo), "apply", "staging", "--yes")
    assert result.code == 0
    head = git(grepo, "rev-parse", "HEAD").strip()
    assert f"uncommitted changes; the apply is recorded as revision {head[:12]}-dirty" in result.err
    assert live_doc(grepo, "staging")["applied"]["revision"] == f"{head}-dirty"
    trailers = git(grepo, "log", "-1", "--format=%(trailers:key=Revision,valueonly)", "reconciler/activity")
    assert trailers.strip() == f"{head}-dirty"
