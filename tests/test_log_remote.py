"""`log` and `drift` where CI runs them: a fresh clone (only `origin/reconciler/activity`), a shallow
clone (refused with the way out), and settings kept in a subfolder of the repository."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from test_activity_push import BRANCH, apply_staging, clone, git, seed_remote

import reconciler.engine as engine_clock
from reconciler.connectors.embedded import store_path

UNSHALLOW = "run `git fetch --unshallow` (GitHub Actions: actions/checkout with fetch-depth: 0)"


def copy_store(source: Path, dest: Path) -> None:
    """The live side carried over to another checkout, as a real platform is the same for every runner."""
    target = store_path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(store_path(source))) as src, closing(sqlite3.connect(target)) as dst, src, dst:
        src.backup(dst)
    src.close()
    dst.close()


def turn_realtime_on(settings: Path) -> None:
    path = settings / "environments" / "staging" / "merge-settings.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("realtime: false", "realtime: true"), encoding="utf-8")


def test_a_fresh_clone_shows_the_pushed_activity(cli, repo: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    remote = seed_remote(repo, tmp_path)
    apply_staging(cli, repo, "applied from the seed")
    git(repo, "push", "-q", str(remote), BRANCH)
    fresh = clone(remote, tmp_path / "fresh")
    assert git(fresh, "branch", "--list", BRANCH) == ""
    assert git(fresh, "rev-parse", f"origin/{BRANCH}") == git(repo, "rev-parse", BRANCH)

    result = cli("--root", str(fresh), "log", "staging", "--format", "json")

    assert result.code == 0, result.err
    records = [e for e in json.loads(result.out) if e["kind"] == "activity"]
    assert [e["sha"] for e in records] == [git(repo, "rev-parse", BRANCH)]
    assert "applied from the seed" in "\n".join(records[0]["details"]) + records[0]["message"]
    assert git(fresh, "branch", "--list", BRANCH) == ""  # reading wrote nothing


@pytest.fixture
def applied_then_changed(cli, repo: Path, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A remote whose `main` holds a change merged after the apply of staging (live is at the older revision)."""
    remote = seed_remote(repo, tmp_path)
    assert cli("--root", str(repo), "apply", "staging").code == 0
    turn_realtime_on(repo)
    git(repo, "commit", "-qam", "staging: real-time merges on")
    git(repo, "push", "-q", str(remote), "main")
    return remote


def test_log_in_a_shallow_clone_is_refused_with_the_way_out(cli, applied_then_changed: Path,  # type: ignore[no-untyped-def]
                                                            tmp_path: Path) -> None:
    shallow = clone(applied_then_changed, tmp_path / "shallow", "--depth", "1")
    assert git(shallow, "rev-parse", "--is-shallow-repository") == "true"

    result = cli("--root", str(shallow), "log")

    assert result.code == 1
    assert result.err.strip().splitlines() == [
        f"error: this clone's history is shallow, so log cannot tell what changed: {UNSHALLOW}"]
    git(shallow, "fetch", "-q", "--unshallow")
    assert cli("--root", str(shallow), "log").code == 0


def test_drift_in_a_shallow_clone_is_refused_when_it_needs_the_applied_revision(cli, repo: Path,  # type: ignore[no-untyped-def]
                                                                                applied_then_changed: Path,
                                                                                tmp_path: Path) -> None:
    shallow = clone(applied_then_changed, tmp_path / "shallow", "--depth", "1")
    copy_store(repo, shallow)

    result = cli("--root", str(shallow), "drift", "staging")

    assert result.code == 1
    assert result.err.strip().splitlines() == [
        f"error: this clone's history is shallow, so drift cannot read the YAML live was applied from: {UNSHALLOW}"]
    # with the whole history, the same live side has no drift: the merged change is for plan, not drift
    full = clone(applied_then_changed, tmp_path / "full")
    copy_store(repo, full)
    answer = cli("--root", str(full), "drift", "staging")
    assert answer.code == 0, answer.out + answer.err
    assert "no drift" in answer.out


def test_drift_in_a_shallow_clone_answers_when_live_is_at_head(cli, repo: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    remote = seed_remote(repo, tmp_path)
    assert cli("--root", str(repo), "apply", "staging").code == 0
    shallow = clone(remote, tmp_path / "shallow", "--depth", "1")
    copy_store(repo, shallow)

    result = cli("--root", str(shallow), "drift", "staging")
    assert result.code == 0, result.err
    assert "no drift" in result.out


def test_drift_with_the_settings_in_a_subfolder_reads_the_applied_revision(cli, repo: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from test_drift_status_import import LATER, console_edit

    top = tmp_path / "top"
    settings = top / "settings"
    settings.mkdir(parents=True)
    for name in ("environments", "schemas"):
        (repo / name).rename(settings / name)
    (top / ".gitignore").write_text(".reconciler/\n", encoding="utf-8")
    git(top, "init", "-q", "-b", "main")
    git(top, "add", "-A")
    git(top, "commit", "-qm", "settings live in settings/")
    monkeypatch.setattr(engine_clock, "now", lambda: LATER)
    assert cli("--root", str(settings), "apply", "staging").code == 0
    turn_realtime_on(settings)
    git(top, "commit", "-qam", "staging: real-time merges on")

    merged = cli("--root", str(settings), "drift", "staging", "--format", "json")
    assert merged.code == 0, merged.out  # the merged, not yet applied change is plan's, not drift
    assert json.loads(merged.out)["environments"][0]["drift"] == []
    console_edit(settings, "staging", lambda doc: doc["schedule"].update(nightly=False))
    edited = cli("--root", str(settings), "drift", "staging", "--format", "json")
    assert edited.code == 2
    assert json.loads(edited.out)["environments"][0]["drift"] == [
        {"path": "schedule.nightly", "before": True, "after": False}]

    history = json.loads(cli("--root", str(settings), "log", "staging", "--setting", "schedule.realtime",
                             "--format", "json").out)
    assert next(e["message"] for e in history if e["kind"] == "commit") == "staging: real-time merges on"
