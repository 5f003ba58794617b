"""`reconciler drift`, `status` and `import` after a console edit of the embedded live store."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import reconciler.engine as engine_clock
from reconciler.connectors.embedded import store_path

CHICAGO = ZoneInfo("America/Chicago")
AT = "2026-11-25T12:00"
LATER = datetime(2026, 11, 25, 12, 5, tzinfo=CHICAGO)
IN_WINDOW = "2026-11-29T05:00"


@pytest.fixture
def applied(cli, repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """The example repository, applied at a fixed time."""
    monkeypatch.setattr(engine_clock, "now", lambda: LATER)
    result = cli("--root", str(repo), "apply", "--yes")
    assert result.code == 0, result.err
    return repo


def console_edit(repo: Path, env: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """Change the live document of `env` behind reconciler's back, as the admin console would."""
    with closing(sqlite3.connect(store_path(repo))) as conn, conn:
        doc = json.loads(conn.execute("SELECT doc FROM live WHERE env = ?", (env,)).fetchone()[0])
        edit(doc)
        conn.execute("UPDATE live SET doc = ? WHERE env = ?", (json.dumps(doc, sort_keys=True), env))


def _staging_edit(doc: dict[str, Any]) -> None:
    doc["schedule"]["nightly"] = False
    doc["merges"]["sections"]["terms"] = sorted([*doc["merges"]["sections"]["terms"], "202730"])
    doc["schedule"]["weekly"] = True  # a field the model does not know


def _production_edit(doc: dict[str, Any]) -> None:
    doc["schedule"]["realtime"] = False
    doc["merges"]["courses"]["terms"] = sorted([*doc["merges"]["courses"]["terms"], "202730"])


def test_no_drift_right_after_apply(cli, applied: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(applied), "drift")
    assert result.code == 0, result.out + result.err
    assert "production: no drift since the apply of Wed 2026-11-25 12:05 -06:00" in result.lines


def test_never_applied_is_said_and_exits_0(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "drift", "staging")
    assert result.code == 0, result.err
    assert "never applied" in result.out


def test_drift_reports_console_edits(cli, applied: Path) -> None:  # type: ignore[no-untyped-def]
    console_edit(applied, "staging", _staging_edit)
    result = cli("--root", str(applied), "drift", "--format", "json")
    assert result.code == 2, result.err
    data = json.loads(result.out)
    assert data["format_version"] == 1
    by_name = {env["name"]: env["drift"] for env in data["environments"]}
    assert by_name["production"] == [] and by_name["sandbox"] == []
    drift = {d["path"]: (d["before"], d["after"]) for d in by_name["staging"]}
    assert drift == {
        "schedule.nightly": (True, False),
        "merges.sections.terms": (None, "202730"),
        "schedule.weekly": (None, True),
    }
    text = cli("--root", str(applied), "drift", "staging")
    assert text.code == 2
    assert "  ~ schedule.nightly: true → false" in text.out  # the plan's symbol and arrow
    # the apply's time in the one format (LATER, in the zone, no seconds); terms by name and code as plan shows them
    assert text.lines[0] == "staging: 3 changes outside git since the apply of Wed 2026-11-25 12:05 -06:00"
    assert "  + merges.sections.terms Summer 2027 (202730)" in text.lines


def test_status_shows_window_and_not_in_sync(cli, applied: Path) -> None:  # type: ignore[no-untyped-def]
    console_edit(applied, "production", _production_edit)
    result = cli("--root", str(applied), "status", "production", "--at", IN_WINDOW, "--format", "json")
    assert result.code == 0, result.err
    env = json.loads(result.out)["environments"][0]
    assert env["name"] == "production"
    assert env["in_sync"] is False
    assert env["drift"] == 2
    assert env["active_windows"] == ["weekly-hosted-updates"]
    assert env["phases"] == {"202720": "final-review"}
    assert env["next_transition"] == {"at": "2026-11-29T09:00:00-06:00", "event": "window-end",
                                      "id": "weekly-hosted-updates"}
    assert {r["id"] for r in env["open_update_requests"]} == {"refresh-staging-2026-12", "spring-release"}
    text = cli("--root", str(applied), "status", "production", "--at", IN_WINDOW)
    assert "not in sync" in text.out and "drift" in text.out
    assert "weekly-hosted-updates" in text.out


def test_status_in_sync_after_apply(cli, applied: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(applied), "status", "staging", "--at", AT, "--format", "json")
    env = json.loads(result.out)["environments"][0]
    assert env["in_sync"] is True and env["active_windows"] == [] and env["drift"] == 0


def test_import_keeps_comments_and_plan_is_empty(cli, applied: Path) -> None:  # type: ignore[no-untyped-def]
    console_edit(applied, "staging", _staging_edit)
    assert cli("--root", str(applied), "plan", "--at", AT, "--detailed-exitcode").code == 2
    result = cli("--root", str(applied), "import", "staging")
    assert result.code == 0, result.err
    text = (applied / "environments" / "staging" / "merge-settings.yaml").read_text()
    assert "# Only what differs from _base/merge-settings.yaml." in text
    assert "staging merges once a night, so testers see a stable copy during the day" in text
    assert "nightly: false" in text
    assert 'terms: ["202710", "202720", "202730"]' in text  # flow style kept
    assert "weekly" not in text  # unknown to the model: reported by drift, not written
    plan = cli("--root", str(applied), "plan", "--at", AT, "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err


def test_import_creates_file_with_only_differences(cli, applied: Path) -> None:  # type: ignore[no-untyped-def]
    console_edit(applied, "production", _production_edit)
    target = applied / "environments" / "production" / "merge-settings.yaml"
    assert not target.exists()
    assert cli("--root", str(applied), "import", "production").code == 0
    text = target.read_text()
    assert "kind: MergeSettings" in text
    assert "realtime: false" in text and "nightly" not in text
    assert 'terms: ["202710", "202720", "202730"]' in text
    assert "sections" not in text
    assert cli("--root", str(applied), "validate").code == 0
    assert cli("--root", str(applied), "plan", "--at", AT, "--detailed-exitcode").code == 0


def test_import_users_and_phases(cli, applied: Path) -> None:  # type: ignore[no-untyped-def]
    def edit(doc: dict[str, Any]) -> None:
        doc["access"]["users"]["new.scheduler@example.edu"] = {"products": ["scheduling"]}
        doc["access"]["users"]["m.okafor@example.edu"] = {"products": ["events", "scheduling"]}
        doc["phases"]["final-review"]["end"] = "2027-01-12"

    console_edit(applied, "production", edit)
    assert cli("--root", str(applied), "import", "production").code == 0
    access = (applied / "environments" / "production" / "access.yaml").read_text()
    assert "# Who may open which product in production." in access
    assert "{email: new.scheduler@example.edu, products: [scheduling]}" in access
    assert "m.okafor@example.edu" in access and "events" in access.split("m.okafor")[1].splitlines()[0]
    phases = (applied / "environments" / "production" / "phases.yaml").read_text()
    assert "end: 2027-01-12" in phases
    assert "# Departments build their spring schedule." in phases
    assert cli("--root", str(applied), "plan", "--at", AT, "--detailed-exitcode").code == 0


def test_import_refuses_invalid_yaml(cli, applied: Path) -> None:  # type: ignore[no-untyped-def]
    path = applied / "environments" / "staging" / "merge-settings.yaml"
    path.write_text(path.read_text().replace("realtime: false", "realtime: maybe"))
    before = path.read_text()
    result = cli("--root", str(applied), "import", "staging")
    assert result.code == 1
    assert "Traceback" not in result.err and "error" in result.err
    assert path.read_text() == before


def _git(repo: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_drift_compares_with_the_yaml_of_the_applied_revision(cli, repo: Path,  # type: ignore[no-untyped-def]
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A change merged but not yet applied is what `plan` shows, not drift; a console edit still is."""
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "example")
    monkeypatch.setattr(engine_clock, "now", lambda: LATER)
    assert cli("--root", str(repo), "apply", "--yes").code == 0
    settings = repo / "environments" / "staging" / "merge-settings.yaml"
    settings.write_text(settings.read_text().replace("realtime: false", "realtime: true"))
    _git(repo, "commit", "-qam", "staging: real-time merges on")
    assert cli("--root", str(repo), "drift", "staging").code == 0
    assert cli("--root", str(repo), "plan", "staging", "--detailed-exitcode").code == 2
    console_edit(repo, "staging", lambda doc: doc["schedule"].update(nightly=False))
    result = cli("--root", str(repo), "drift", "staging", "--format", "json")
    assert result.code == 2
    drift = json.loads(result.out)["environments"][0]["drift"]
    assert drift == [{"path": "schedule.nightly", "before": True, "after": False}]


def test_import_roles_and_the_hosted_version(cli, applied: Path) -> None:  # type: ignore[no-untyped-def]
    def edit(doc: dict[str, Any]) -> None:
        doc["access"]["roles"]["scheduler"]["approve_schedule"] = "allow"
        doc["access"]["roles"]["auditor"] = {"view_section_integration_status": "allow"}
        doc["version"] = "E.1506.0"

    console_edit(applied, "production", edit)
    assert cli("--root", str(applied), "drift", "production").code == 2
    result = cli("--root", str(applied), "import", "production")
    assert result.code == 0, result.err
    folder = applied / "environments" / "production"
    environment = (folder / "environment.yaml").read_text()
    assert "  version: E.1506.0\n" in environment and "# must match the folder name" in environment
    access = (folder / "access.yaml").read_text()
    assert "approve_schedule: allow" in access and "auditor:" in access
    base = (applied / "environments" / "_base" / "access.yaml").read_text()
    assert "auditor" not in base
    assert cli("--root", str(applied), "plan", "production", "--at", AT, "--detailed-exitcode").code == 0
