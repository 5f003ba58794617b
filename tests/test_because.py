"""Every change says why (DESIGN §3; issue 14, item 1): the window whose boundary this run crossed since the
last apply; else the commits since the applied revision that changed the setting; else a change made outside
git. On a real git repository, the embedded store and the test's clock."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import reconciler.engine as engine_clock
from reconciler.connectors.embedded import store_path

CHICAGO = ZoneInfo("America/Chicago")
MONDAY = datetime(2026, 12, 14, 10, 0, tzinfo=CHICAGO)  # the weekly window ended Sunday 09:00
TUESDAY = datetime(2026, 12, 15, 10, 0, tzinfo=CHICAGO)
SUNDAY_IN = datetime(2026, 12, 20, 5, 0, tzinfo=CHICAGO)  # inside weekly-hosted-updates (04:00-09:00)
SUNDAY_AFTER = datetime(2026, 12, 20, 9, 30, tzinfo=CHICAGO)
WEEKLY_ENDED = "maintenance window weekly-hosted-updates (hosting provider weekly update) ended"
REALTIME = "environments/production/merge-settings.yaml"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, timeout=30).stdout


class Clock:
    def __init__(self) -> None:
        self.at = MONDAY

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moment = Clock()
    monkeypatch.setattr(engine_clock, "now", moment)
    return moment


@pytest.fixture
def tracked(repo: Path) -> Path:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "example")
    return repo


def commit_realtime(root: Path, on: bool, subject: str) -> str:
    (root / REALTIME).write_text("apiVersion: reconciler/v1\nkind: MergeSettings\n"
                                 f"schedule: {{realtime: {'true' if on else 'false'}}}\n", encoding="utf-8")
    git(root, "add", REALTIME)
    git(root, "commit", "-qm", subject)
    return git(root, "rev-parse", "--short=7", "HEAD").strip()


def becauses(cli: Any, root: Path, *args: str) -> dict[str, Any]:
    result = cli("--root", str(root), "plan", "production", "--format", "json", *args)
    assert result.code == 0, result.err
    return {c["path"]: c.get("because") for c in json.loads(result.out)["environments"][0]["changes"]}


def test_a_commit_turning_realtime_back_on_on_a_weekday_names_the_commit(cli, tracked: Path,  # type: ignore[no-untyped-def]
                                                                          clock: Clock) -> None:
    """The false credit: the weekly window ended on Sunday, before the last apply; the commit is the cause."""
    commit_realtime(tracked, False, "Hold realtime merges for the audit")
    assert cli("--root", str(tracked), "apply", "production", "--yes").code == 0
    clock.at = TUESDAY
    sha = commit_realtime(tracked, True, "Turn realtime back on")
    found = becauses(cli, tracked)
    assert found == {"schedule.realtime": f'commit {sha} "Turn realtime back on" by Test Registrar'}
    assert WEEKLY_ENDED not in json.dumps(found)


def test_the_commit_is_recorded_on_the_activity_branch_and_the_live_log(cli, tracked: Path,  # type: ignore[no-untyped-def]
                                                                         clock: Clock) -> None:
    commit_realtime(tracked, False, "Hold realtime merges for the audit")
    assert cli("--root", str(tracked), "apply", "production", "--yes").code == 0
    clock.at = TUESDAY
    sha = commit_realtime(tracked, True, "Turn realtime back on")
    assert cli("--root", str(tracked), "apply", "production", "--yes").code == 0
    body = git(tracked, "log", "-1", "--format=%B", "reconciler/activity")
    assert f'commit {sha} "Turn realtime back on" by Test Registrar' in body
    assert "Ticket:" not in body


def test_a_window_crossed_since_the_last_apply_is_the_cause_and_its_ticket_a_trailer(  # type: ignore[no-untyped-def]
    cli, tracked: Path, clock: Clock
) -> None:
    clock.at = datetime(2026, 12, 5, 20, 30, tzinfo=CHICAGO)  # inside banner-upgrade-2026-12 (SUP-1234)
    assert cli("--root", str(tracked), "apply", "production", "--yes").code == 0
    clock.at = datetime(2026, 12, 6, 3, 45, tzinfo=CHICAGO)
    ended = "maintenance window banner-upgrade-2026-12 (SUP-1234) ended"
    assert becauses(cli, tracked) == {"schedule.nightly": ended, "schedule.realtime": ended}
    assert cli("--root", str(tracked), "apply", "production", "--yes").code == 0
    message = git(tracked, "log", "-1", "--format=%B", "reconciler/activity")
    assert ended in message
    assert "Ticket: SUP-1234" in message.splitlines()


def test_a_recurring_window_crossed_since_the_last_apply_is_still_credited(cli, tracked: Path,  # type: ignore[no-untyped-def]
                                                                            clock: Clock) -> None:
    clock.at = SUNDAY_IN
    assert cli("--root", str(tracked), "apply", "production", "--yes").code == 0
    clock.at = SUNDAY_AFTER
    assert becauses(cli, tracked) == {"schedule.nightly": WEEKLY_ENDED, "schedule.realtime": WEEKLY_ENDED}


def test_a_console_edit_is_reverted_as_a_change_made_outside_git(cli, tracked: Path,  # type: ignore[no-untyped-def]
                                                                  clock: Clock) -> None:
    assert cli("--root", str(tracked), "apply", "production", "--yes").code == 0
    with closing(sqlite3.connect(store_path(tracked))) as conn, conn:
        doc = json.loads(conn.execute("SELECT doc FROM live WHERE env = 'production'").fetchone()[0])
        doc["schedule"]["realtime"] = False
        conn.execute("UPDATE live SET doc = ? WHERE env = 'production'", (json.dumps(doc),))
    clock.at = TUESDAY
    assert becauses(cli, tracked) == {"schedule.realtime": "reverting a change made outside git"}


def test_a_term_removed_by_a_commit_names_that_commit_only(cli, tracked: Path, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    assert cli("--root", str(tracked), "apply", "production", "--yes").code == 0
    commit_realtime(tracked, True, "Say realtime here too")  # touches another setting: not a cause
    path = tracked / REALTIME
    path.write_text(path.read_text(encoding="utf-8") + "merges:\n  sections: {terms: ['202710']}\n",
                    encoding="utf-8")
    git(tracked, "commit", "-qam", "Stop merging 202720 sections")
    sha = git(tracked, "rev-parse", "--short=7", "HEAD").strip()
    clock.at = TUESDAY
    found = becauses(cli, tracked)
    assert found == {"merges.sections.terms": f'commit {sha} "Stop merging 202720 sections" by Test Registrar'}


def test_a_saved_plan_with_commit_causes_applies(cli, tracked: Path, clock: Clock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    commit_realtime(tracked, False, "Hold realtime merges for the audit")
    assert cli("--root", str(tracked), "apply", "production", "--yes").code == 0
    clock.at = TUESDAY
    commit_realtime(tracked, True, "Turn realtime back on")
    out = tmp_path / "plan.json"
    made = cli("--root", str(tracked), "plan", "production", "--out", str(out))
    assert made.code in (0, 2), made.err
    assert "Turn realtime back on" in out.read_text(encoding="utf-8")
    result = cli("--root", str(tracked), "apply", "--plan", str(out))
    assert result.code == 0, result.err
    assert "Turn realtime back on" in git(tracked, "log", "-1", "--format=%B", "reconciler/activity")
