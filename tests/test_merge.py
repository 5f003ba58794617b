"""`reconciler merge ENV --term T`: an execute merge in the SIS's order, refused during a window or out of scope."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler.connectors import get_connector
from reconciler.core.merge_order import merge_order
from reconciler.errors import UsageError
from reconciler.repo import load_repository

QUIET = "2026-12-02T10:00"          # a Wednesday, no window
IN_WINDOW = "2026-12-05T21:00"      # the Banner upgrade
ON_SUNDAY = "2026-12-13T05:00"      # the weekly hosted window


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30)
    return done.stdout


@pytest.fixture
def grepo(repo: Path) -> Path:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "example repository")
    return repo


def merges(root: Path, env: str) -> list[dict[str, Any]]:
    activity = get_connector(load_repository(root).envs[env], root).read().get("activity") or []
    return [entry for entry in activity if entry.get("kind") == "merge"]


@pytest.mark.parametrize(
    ("sis", "types", "expected"),
    [
        pytest.param("banner", ["relationships", "sections", "courses"], ["courses", "sections", "relationships"],
                     id="banner"),
        pytest.param("peoplesoft", ["courses", "sections", "relationships"], ["sections", "courses", "relationships"],
                     id="peoplesoft"),
        pytest.param("PeopleSoft", ["relationships", "courses"], ["courses", "relationships"], id="peoplesoft-two"),
        pytest.param("colleague", ["sections", "sections"], ["sections"], id="once-each"),
    ],
)
def test_merge_order(sis: str, types: list[str], expected: list[str]) -> None:
    assert merge_order(sis, types) == expected


def test_merge_order_refuses_an_unknown_type() -> None:
    with pytest.raises(UsageError, match="unknown merge type 'rooms'"):
        merge_order("banner", ["rooms"])


def test_merge_runs_in_banner_order_and_is_recorded_twice(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(grepo), "merge", "production", "--term", "202720", "--at", QUIET)
    assert result.code == 0, result.err
    assert result.out == "production: merge of term 202720 completed: courses, sections, relationships (pull only)\n"
    [entry] = merges(grepo, "production")
    assert entry["types"] == ["courses", "sections", "relationships"]
    assert entry["send_updates"] is False
    assert entry["term"] == "202720"
    record = git(grepo, "log", "-1", "reconciler/activity", "--format=%B")
    assert record.startswith("merge production: term 202720 (courses, sections, relationships)\n")
    assert "Environment: production" in record and "Outcome: completed" in record


def test_merge_runs_sections_first_for_peoplesoft(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    env = repo / "environments/sandbox/environment.yaml"
    env.write_text(env.read_text().replace("sis: banner ", "sis: peoplesoft"))
    result = cli("--root", str(repo), "merge", "sandbox", "--term", "202730",
                 "--types", "relationships,courses,sections", "--send-updates", "--at", QUIET)
    assert result.code == 0, result.err
    assert "no git record was written (not a git repository)" in result.err
    [entry] = merges(repo, "sandbox")
    assert entry["types"] == ["sections", "courses", "relationships"]
    assert entry["send_updates"] is True


@pytest.mark.parametrize(
    ("env", "term", "at", "message"),
    [
        pytest.param("production", "202720", IN_WINDOW, "maintenance window banner-upgrade-2026-12 (SUP-1234) is "
                     "active until 2026-12-06T03:30-06:00", id="one-off-window"),
        pytest.param("production", "202720", ON_SUNDAY, "weekly-hosted-updates", id="weekly-window"),
        pytest.param("production", "202730", QUIET, "term 202730 is not in the courses, sections, relationships "
                     "merge scope", id="out-of-scope"),
        pytest.param("staging", "202730", QUIET, "term 202730 is not in the sections, relationships merge scope",
                     id="partly-in-scope"),
        pytest.param("nowhere", "202720", QUIET, "no environment 'nowhere'", id="unknown-env"),
    ],
)
def test_merge_refusals(cli, grepo: Path, env: str, term: str, at: str, message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(grepo), "merge", env, "--term", term, "--at", at)
    assert result.code == 1
    assert message in result.err
    assert not (grepo / ".reconciler").exists() or merges(grepo, "production") == []
    assert "reconciler/activity" not in git(grepo, "branch", "--list", "reconciler/activity")


def test_merge_of_types_in_scope_is_allowed(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(grepo), "merge", "staging", "--term", "202730", "--types", "courses", "--at", QUIET)
    assert result.code == 0, result.err
    assert merges(grepo, "staging")[0]["types"] == ["courses"]


def test_merge_refused_during_a_pause(cli, grepo: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("--root", str(grepo), "pause", "production", "--reason", "Banner down", "--at", QUIET).code == 0
    result = cli("--root", str(grepo), "merge", "production", "--term", "202720", "--at", "2026-12-02T10:30")
    assert result.code == 1
    assert "maintenance window pause-20261202-1000" in result.err
    assert "is active until `reconciler resume`" in result.err
