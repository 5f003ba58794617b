"""`reconciler pause` / `resume` end to end: YAML edited with its comments, committed, applied to the store."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler.connectors import get_connector
from reconciler.model import Kind
from reconciler.repo import load_repository

MAINT = "environments/production/maintenance.yaml"
PAUSE_AT = "2026-12-01T10:00"
RESUME_AT = "2026-12-01T12:30"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30)
    return done.stdout


def make_git_repo(root: Path) -> Path:
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "example repository")
    return root


@pytest.fixture
def grepo(repo: Path) -> Path:
    return make_git_repo(repo)


def live(root: Path, env: str = "production") -> dict[str, Any]:
    return get_connector(load_repository(root).envs[env], root).read()


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def test_pause_then_resume_end_to_end(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    before = (grepo / MAINT).read_text()
    result = cli("--root", str(grepo), "pause", "production", "--reason", "Banner is down", "--ticket", "SUP-1300",
                 "--at", PAUSE_AT)
    assert result.code == 0, result.err
    assert "pausing nightly and realtime merges from 2026-12-01T10:00 until resumed" in result.out
    assert "committed " in result.out
    after = (grepo / MAINT).read_text()
    # every byte of the file is kept; the window is added at the end of `windows`
    assert after.startswith(before)
    assert after[len(before):] == (
        "  - id: pause-20261201-1000\n"
        "    reason: Banner is down\n"
        "    ticket: SUP-1300\n"
        "    start: 2026-12-01T10:00\n"
        "    end: 2099-12-31T23:59  # open: `reconciler resume` sets the end\n"
        "    pause: [nightly, realtime]\n"
    )
    message = git(grepo, "log", "-1", "--format=%B")
    assert message.startswith("pause production: Banner is down\n")
    assert "Ticket: SUP-1300" in message
    assert git(grepo, "show", "--name-only", "--format=", "HEAD").split() == [MAINT]
    assert git(grepo, "status", "--porcelain", "--", "environments").strip() == ""
    assert live(grepo)["schedule"] == {"nightly": False, "realtime": False}

    resumed = cli("--root", str(grepo), "resume", "production", "--at", RESUME_AT)
    assert resumed.code == 0, resumed.err
    assert "pause pause-20261201-1000 ends at 2026-12-01T12:30" in resumed.out
    final = (grepo / MAINT).read_text()
    assert final == after.replace("2099-12-31T23:59  # open: `reconciler resume` sets the end", "2026-12-01T12:30")
    assert git(grepo, "log", "-1", "--format=%s") == "resume production: Banner is down\n"
    assert "Ticket: SUP-1300" in git(grepo, "log", "-1", "--format=%B")
    assert live(grepo)["schedule"] == {"nightly": True, "realtime": True}
    assert cli("--root", str(grepo), "validate", "production").code == 0


def test_pause_and_resume_are_on_both_activity_logs(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("--root", str(grepo), "pause", "production", "--reason", "outage", "--ticket", "SUP-7",
               "--at", PAUSE_AT).code == 0
    assert cli("--root", str(grepo), "resume", "production", "--at", RESUME_AT).code == 0
    kinds = [entry.get("kind") for entry in live(grepo)["activity"]]
    assert kinds.count("pause") == 1 and kinds.count("resume") == 1
    branch = git(grepo, "log", "reconciler/activity", "--format=%B")
    assert "Outcome: paused" in branch and "Outcome: resumed" in branch
    assert "Ticket: SUP-7" in branch


def test_pause_until_then_the_schedules_come_back(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(grepo), "pause", "staging", "--reason", "SIS patch", "--until", "2026-12-01T11:00",
                 "--at", PAUSE_AT)
    assert result.code == 0, result.err
    text = (grepo / "environments/staging/maintenance.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/maintenance.schema.json\n"
                           "apiVersion: reconciler/v1\nkind: MaintenanceWindows\nwindows:\n")
    assert "end: 2026-12-01T11:00\n" in text
    assert git(grepo, "show", "--name-only", "--format=", "HEAD").split() == ["environments/staging/maintenance.yaml"]
    # staging's YAML keeps realtime off: the pause only turns nightly off
    assert live(grepo, "staging")["schedule"] == {"nightly": False, "realtime": False}
    assert cli("--root", str(grepo), "apply", "staging", "--yes").code == 0  # now (after the pause's end)
    assert live(grepo, "staging")["schedule"]["nightly"] is True


def test_dirty_work_tree_is_refused_with_nothing_written(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    access = grepo / "environments/production/access.yaml"
    access.write_text(access.read_text() + "# a note not yet committed\n")
    before, commit = (grepo / MAINT).read_bytes(), head(grepo)
    result = cli("--root", str(grepo), "pause", "production", "--reason", "x", "--at", PAUSE_AT)
    assert result.code == 1
    assert "uncommitted changes (environments/production/access.yaml)" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert (grepo / MAINT).read_bytes() == before
    assert head(grepo) == commit
    assert not (grepo / ".reconciler").exists()


def test_untracked_yaml_is_refused_but_other_untracked_files_are_not(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    (grepo / "notes.txt").write_text("scratch\n")
    stray = grepo / "environments/staging/terms.yaml"
    stray.write_text("apiVersion: reconciler/v1\nkind: Terms\nterms: []\n")
    refused = cli("--root", str(grepo), "pause", "production", "--reason", "x", "--at", PAUSE_AT)
    assert refused.code == 1 and "environments/staging/terms.yaml" in refused.err
    stray.unlink()
    assert cli("--root", str(grepo), "pause", "production", "--reason", "x", "--at", PAUSE_AT).code == 0


def test_merge_conflict_is_refused(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    access = grepo / "environments/production/access.yaml"
    git(grepo, "checkout", "-q", "-b", "other")
    access.write_text(access.read_text() + "# other\n")
    git(grepo, "commit", "-q", "-am", "other")
    git(grepo, "checkout", "-q", "main")
    access.write_text(access.read_text() + "# main\n")
    git(grepo, "commit", "-q", "-am", "main")
    subprocess.run(["git", "merge", "-q", "other"], cwd=grepo, capture_output=True, check=False, timeout=30)
    before = (grepo / MAINT).read_bytes()
    result = cli("--root", str(grepo), "pause", "production", "--reason", "x", "--at", PAUSE_AT)
    assert result.code == 1
    assert "merge" in result.err
    assert (grepo / MAINT).read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["pause", "nowhere", "--reason", "x"], "no environment 'nowhere'", id="unknown-env"),
        pytest.param(["resume", "production", "--at", PAUSE_AT], "no pause is open", id="nothing-to-resume"),
        pytest.param(["pause", "production", "--reason", "x", "--until", "2026-12-01T09:00", "--at", PAUSE_AT],
                     "is not after now", id="until-before-now"),
        pytest.param(["pause", "production", "--reason", "x", "--until", "soon", "--at", PAUSE_AT],
                     "--until soon", id="until-unreadable"),
        pytest.param(["pause", "production", "--reason", " ", "--at", PAUSE_AT], "--reason", id="empty-reason"),
    ],
)
def test_refusals_write_nothing(cli, grepo: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    before, commit = (grepo / MAINT).read_bytes(), head(grepo)
    result = cli("--root", str(grepo), *args)
    assert result.code == 1
    assert message in result.err
    assert (grepo / MAINT).read_bytes() == before
    assert head(grepo) == commit


def test_second_pause_is_refused_while_one_is_open(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("--root", str(grepo), "pause", "production", "--reason", "x", "--at", PAUSE_AT).code == 0
    before, commit = (grepo / MAINT).read_bytes(), head(grepo)
    again = cli("--root", str(grepo), "pause", "production", "--reason", "y", "--at", "2026-12-01T11:00")
    assert again.code == 1
    assert "pause pause-20261201-1000 is already open" in again.err
    assert (grepo / MAINT).read_bytes() == before and head(grepo) == commit


def test_resume_in_the_same_minute_keeps_the_window_valid(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("--root", str(grepo), "pause", "production", "--reason", "x", "--at", "2026-12-01T10:00:20").code == 0
    result = cli("--root", str(grepo), "resume", "production", "--at", "2026-12-01T10:00:40")
    assert result.code == 0, result.err
    assert "end: '2026-12-01T10:00:40'\n" in (grepo / MAINT).read_text()  # with seconds, YAML would read a date
    assert cli("--root", str(grepo), "validate", "production").code == 0
    assert live(grepo)["schedule"] == {"nightly": True, "realtime": True}


def test_outside_git_edits_and_applies_without_a_commit(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "pause", "production", "--reason", "x", "--at", PAUSE_AT)
    assert result.code == 0, result.err
    assert "no commit was written (not a git repository)" in result.out
    assert "pause-20261201-1000" in (repo / MAINT).read_text()
    assert live(repo)["schedule"]["nightly"] is False
    resumed = cli("--root", str(repo), "resume", "production", "--at", RESUME_AT)
    assert resumed.code == 0 and live(repo)["schedule"]["nightly"] is True


def test_pause_keeps_the_windows_base_gives_the_environment(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    (repo / "environments/_base/maintenance.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: MaintenanceWindows\nwindows:\n"
        "  - {id: sunday, reason: hosted, every: FREQ=WEEKLY;BYDAY=SU, start: \"04:00\", duration: 5h}\n")
    result = cli("--root", str(repo), "pause", "sandbox", "--reason", "x", "--at", PAUSE_AT)
    assert result.code == 0, result.err
    windows = load_repository(repo).envs["sandbox"].data(Kind.MAINTENANCE)["windows"]
    assert [w["id"] for w in windows] == ["sunday", "pause-20261201-1000"]
    assert cli("--root", str(repo), "validate", "sandbox").code == 0
