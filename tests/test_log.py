"""`reconciler log`: the history of environments/ as setting changes, with the activity branch interleaved."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from reconciler.core.history import SettingChange, known_setting_paths, names_setting, setting_changes, touches
from reconciler.git import record as write_record


def git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30,
                          env={**os.environ, **(env or {})})
    return done.stdout.strip()


def commit(root: Path, message: str, at: str, author: str = "Test Registrar") -> str:
    email = author.lower().replace(" ", ".") + "@example.edu"
    who = {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": at, "GIT_COMMITTER_DATE": at}
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message, env=who)
    return git(root, "rev-parse", "HEAD")


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / "environments" / rel
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def history(repo: Path) -> dict[str, str]:
    """The example repository with a short history: realtime off in staging, a broken commit, a term dropped."""
    git(repo, "init", "-q", "-b", "main")
    shas = {"initial": commit(repo, "initial settings", "2026-10-01T09:00:00+00:00")}
    edit(repo, "staging/merge-settings.yaml", "realtime: false ", "realtime: true ")
    shas["on"] = commit(repo, "staging: real-time merges on for the rehearsal", "2026-10-05T09:00:00+00:00", "Ana Ruiz")
    edit(repo, "staging/merge-settings.yaml", "realtime: true ", "realtime: false ")
    shas["off"] = commit(repo, "staging: real-time off, SIS overloaded (INC-77)", "2026-10-10T15:30:00+00:00",
                         "Bo Chen")
    (repo / "environments" / "sandbox" / "phases.yaml").write_text("apiVersion: reconciler/v1\nkind: [\n",
                                                                   encoding="utf-8")
    shas["broken"] = commit(repo, "wip phases", "2026-10-12T09:00:00+00:00")
    git(repo, "checkout", "-q", shas["off"], "--", "environments/sandbox/phases.yaml")
    edit(repo, "sandbox/merge-settings.yaml", 'courses:\n    terms: ["202710", "202720", "202730"]',
         'courses:\n    terms: ["202720", "202730"]')
    shas["fixed"] = commit(repo, "sandbox: fall courses no longer merged", "2026-10-20T09:00:00+00:00")
    return shas


def test_log_shows_a_setting_change_with_author_and_message(repo: Path, history: dict[str, str], cli) -> None:
    result = cli("--root", str(repo), "log", "staging")

    assert result.code == 0, result.err
    text = result.out
    assert "~ schedule.realtime: true → false" in text
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if history["off"][:12] in line)
    assert lines[head].startswith("Sat 2026-10-10 10:30 -05:00  commit ")  # staging is in Chicago
    assert lines[head].endswith("staging  by Bo Chen <bo.chen@example.edu>")
    assert lines[head + 1:head + 3] == ["    staging: real-time off, SIS overloaded (INC-77)",
                                        "    ~ schedule.realtime: true → false"]
    # newest first, like git log
    assert text.index(history["off"][:12]) < text.index(history["on"][:12]) < text.index(history["initial"][:12])
    assert "sandbox" not in text.split("\n")[0]


def test_setting_follows_one_setting(repo: Path, history: dict[str, str], cli) -> None:
    result = cli("--root", str(repo), "log", "--setting", "schedule.realtime", "--format", "json")

    assert result.code == 0, result.err
    entries = json.loads(result.out)
    assert [(e["environment"], e["sha"]) for e in entries][:2] == [("staging", history["off"]),
                                                                  ("staging", history["on"])]
    assert all(c["path"] == "schedule.realtime" for e in entries if e["environment"] == "staging"
               for c in e["changes"])
    # production's maintenance windows pause real-time merges: they belong to that setting's story
    assert {c["path"] for e in entries if e["environment"] == "production" for c in e["changes"]} == {
        "schedule.realtime", "maintenance.windows.banner-upgrade-2026-12", "maintenance.windows.weekly-hosted-updates"}
    assert entries[0]["changes"] == [{"path": "schedule.realtime", "before": True, "after": False}]
    assert entries[0]["author"] == "Bo Chen <bo.chen@example.edu>"
    assert {e["environment"] for e in entries} == {"staging", "production", "sandbox"}  # declared at first


def test_since_filters(repo: Path, history: dict[str, str], cli) -> None:
    result = cli("--root", str(repo), "log", "--since", "2026-10-08", "--format", "json")

    assert result.code == 0, result.err
    shas = [e["sha"] for e in json.loads(result.out)]
    assert history["off"] in shas and history["fixed"] in shas
    assert history["on"] not in shas and history["initial"] not in shas


def test_broken_yaml_is_shown_as_unreadable_and_the_next_commit_diffs_against_the_last_good(
        repo: Path, history: dict[str, str], cli) -> None:
    result = cli("--root", str(repo), "log", "sandbox", "--format", "json")

    assert result.code == 0, result.err
    entries = {e["sha"]: e for e in json.loads(result.out)}
    broken = entries[history["broken"]]
    assert broken["unreadable"].startswith(f"unreadable at {history['broken'][:12]}: environments/sandbox/phases.yaml")
    assert "\n" not in broken["unreadable"]
    fixed = entries[history["fixed"]]
    # phases are back as they were: only the course scope changed
    assert fixed["changes"] == [{"path": "merges.courses.terms", "before": ["202710", "202720", "202730"],
                                 "after": ["202720", "202730"], "added": [], "removed": ["202710"]}]
    text = cli("--root", str(repo), "log", "sandbox").out
    assert f"unreadable at {history['broken'][:12]}: " in text
    assert "~ merges.courses.terms: -Fall 2026 (202710)" in text  # the term by its name, from Terms


def test_unknown_setting_is_one_line_exit_1(repo: Path, history: dict[str, str], cli) -> None:
    result = cli("--root", str(repo), "log", "--setting", "schedule.hourly")

    assert result.code == 1
    assert result.out == ""
    assert len(result.err.strip().splitlines()) == 1
    assert "--setting schedule.hourly" in result.err


def test_a_setting_with_no_change_since_prints_no_entries(repo: Path, history: dict[str, str], cli) -> None:
    result = cli("--root", str(repo), "log", "--setting", "version", "--since", "2026-10-02T00:00:00Z")
    assert result.code == 0, result.err
    assert result.out.strip() == "no entries"


def test_names_setting_knows_the_live_vocabulary() -> None:
    assert names_setting("merges.sections.on_delete", set())
    assert names_setting("phases.p1", known_setting_paths({"Phases": {"phases": [{"name": "p1"}]}}))
    assert not names_setting("phases.p2", known_setting_paths({"Phases": {"phases": [{"name": "p1"}]}}))


def test_activity_records_interleave_by_time(repo: Path, history: dict[str, str], cli,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-10-10T16:00:00+00:00")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-10-10T16:00:00+00:00")
    head = git(repo, "rev-parse", "HEAD")
    status = git(repo, "status", "--porcelain")
    sha = write_record(repo, environment="staging", revision=history["off"], outcome="applied",
                       actor="ci-bot", ticket="INC-77", subject="apply staging: applied 1 change",
                       body="SIS overloaded\n\n~ schedule.realtime: true → false\n+ merges.courses.terms 202730")
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == status

    result = cli("--root", str(repo), "log", "staging", "--format", "json")

    entries = json.loads(result.out)
    kinds = [(e["kind"], e["sha"]) for e in entries]
    assert kinds.index(("activity", sha)) == kinds.index(("commit", history["off"])) - 1
    record = entries[kinds.index(("activity", sha))]
    assert (record["actor"], record["outcome"], record["ticket"]) == ("ci-bot", "applied", "INC-77")
    assert record["message"] == "apply staging: applied 1 change"
    followed = json.loads(cli("--root", str(repo), "log", "--setting", "schedule.realtime", "--format", "json").out)
    [mine] = [e for e in followed if e["sha"] == sha]
    assert mine["details"] == ["SIS overloaded", "~ schedule.realtime: true → false"]  # the why, and the one setting
    text = cli("--root", str(repo), "log", "staging").out
    assert f"activity {sha[:12]}  staging  by ci-bot  [applied, INC-77]" in text


def test_a_pause_window_shows_when_following_a_schedule(repo: Path, history: dict[str, str], cli) -> None:
    path = repo / "environments" / "staging" / "maintenance.yaml"
    path.write_text("apiVersion: reconciler/v1\nkind: MaintenanceWindows\nwindows:\n  - id: sis-outage\n"
                    "    reason: SIS down\n    ticket: INC-80\n    start: 2026-10-21T08:00\n"
                    "    end: 2026-10-21T12:00\n    pause: [realtime]\n", encoding="utf-8")
    sha = commit(repo, "pause staging: SIS down (INC-80)", "2026-10-21T08:00:00+00:00")

    entries = json.loads(cli("--root", str(repo), "log", "staging", "--setting", "schedule.realtime",
                             "--format", "json").out)
    assert entries[0]["sha"] == sha
    assert entries[0]["changes"][0]["path"] == "maintenance.windows.sis-outage"
    nightly = json.loads(cli("--root", str(repo), "log", "staging", "--setting", "schedule.nightly",
                             "--format", "json").out)
    assert sha not in [e["sha"] for e in nightly]


def test_log_outside_git_is_a_clear_error(repo: Path, cli) -> None:
    result = cli("--root", str(repo), "log")
    assert result.code == 1
    assert "not in a git repository" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_unknown_environment_is_an_error(repo: Path, history: dict[str, str], cli) -> None:
    result = cli("--root", str(repo), "log", "qa")
    assert result.code == 1 and "no environment 'qa'" in result.err


def test_root_in_a_subfolder_of_the_repository(tmp_path: Path, repo: Path, cli) -> None:
    outer = repo.parent
    git(outer, "init", "-q")
    commit(outer, "settings live in repo/", "2026-10-01T09:00:00+00:00")
    edit(repo, "production/merge-settings.yaml" if (repo / "environments/production/merge-settings.yaml").exists()
         else "_base/merge-settings.yaml", "nightly: true ", "nightly: false ")
    sha = commit(outer, "nightly off everywhere", "2026-10-02T09:00:00+00:00")

    entries = json.loads(cli("--root", str(repo), "log", "--setting", "schedule.nightly", "--format", "json").out)
    assert {e["environment"] for e in entries if e["sha"] == sha} == {"production", "sandbox", "staging"}


# --- core.history --------------------------------------------------------------------------------


def test_setting_changes_treat_term_scopes_as_sets() -> None:
    before = {"MergeSettings": {"merges": {"sections": {"terms": ["202710", "202720"]}}}}
    after = {"MergeSettings": {"merges": {"sections": {"terms": ["202730", "202720"]}}}}
    [change] = setting_changes("production", before, after)
    assert (change.path, change.added, change.removed) == ("merges.sections.terms", ["202730"], ["202710"])
    reordered = {"MergeSettings": {"merges": {"sections": {"terms": ["202720", "202710"]}}}}
    assert setting_changes("production", before, reordered) == []


@pytest.mark.parametrize(
    ("kind", "data", "path", "value"),
    [
        pytest.param("MergeSettings", {"schedule": {"realtime": False}}, "schedule.realtime", False, id="schedule"),
        pytest.param("Phases", {"phases": [{"name": "p1", "term": "1", "editors": ["b", "a"]}]}, "phases.p1",
                     {"term": "1", "editors": ["a", "b"]}, id="phase"),
        pytest.param("Access", {"users": [{"email": "a@b.edu", "products": ["x"]}]}, "access.users.a@b.edu",
                     {"products": ["x"]}, id="user"),
        pytest.param("Access", {"roles": {"r": {"p": "allow"}}}, "access.roles.r.p", "allow", id="role"),
        pytest.param("MaintenanceWindows", {"windows": [{"id": "w", "reason": "r"}]}, "maintenance.windows.w",
                     {"reason": "r"}, id="window"),
        pytest.param("Terms", {"terms": [{"code": "202710", "name": "Fall"}]}, "terms.202710", {"name": "Fall"},
                     id="term"),
        pytest.param("Environment", {"hosting": {"version": "E.1"}}, "version", "E.1", id="version"),
        pytest.param("MergeSettings", {"merges": "not a mapping"}, "merges", "not a mapping", id="odd-shape"),
    ],
)
def test_flattened_paths(kind: str, data: dict[str, object], path: str, value: object) -> None:
    [change] = setting_changes("e", None, {kind: data})
    assert (change.path, change.before, change.after) == (path, None, value)
    assert path in known_setting_paths({kind: data})


def test_touches() -> None:
    change = SettingChange("e", "phases.open", None, {})
    assert touches(change, "phases") and touches(change, "phases.open") and not touches(change, "phases.other")
    window = SettingChange("e", "maintenance.windows.w", None, {"reason": "x"})  # pause defaults to both
    assert touches(window, "schedule.nightly") and touches(window, "schedule.realtime")


def test_bad_since_is_one_line_exit_1(repo: Path, history: dict[str, str], cli) -> None:
    result = cli("--root", str(repo), "log", "--since", "last tuesday")
    assert result.code == 1
    assert len(result.err.strip().splitlines()) == 1 and "not an ISO 8601 time" in result.err


def test_a_merged_branch_shows_its_changes_at_the_merge(repo: Path, history: dict[str, str], cli) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    edit(repo, "staging/merge-settings.yaml", "realtime: false ", "realtime: true ")
    commit(repo, "staging: real-time back on", "2026-10-25T09:00:00+00:00", "Ana Ruiz")
    git(repo, "checkout", "-q", "main")
    at = "2026-10-26T09:00:00+00:00"
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge pull request #7: real-time back on", "feature",
        env={"GIT_AUTHOR_DATE": at, "GIT_COMMITTER_DATE": at})

    entries = json.loads(cli("--root", str(repo), "log", "staging", "--setting", "schedule.realtime",
                             "--format", "json").out)
    assert entries[0]["message"] == "Merge pull request #7: real-time back on"
    assert entries[0]["changes"] == [{"path": "schedule.realtime", "before": False, "after": True}]
    assert [e["message"] for e in entries].count("staging: real-time back on") == 0  # once, at the merge


def test_a_removed_environment_shows_its_settings_removed(repo: Path, history: dict[str, str], cli) -> None:
    git(repo, "rm", "-q", "-r", "environments/sandbox")
    sha = commit(repo, "retire sandbox", "2026-10-30T09:00:00+00:00")

    entries = json.loads(cli("--root", str(repo), "log", "sandbox", "--format", "json").out)
    assert entries[0]["sha"] == sha
    assert entries[0]["changes"] and all(c["after"] is None for c in entries[0]["changes"])


def test_a_merged_pull_request_shows_its_title(repo: Path, history: dict[str, str], cli) -> None:
    """GitHub's merge commit says only "Merge pull request #…"; the reason is the first line of its body."""
    git(repo, "checkout", "-q", "-b", "roll")
    edit(repo, "staging/merge-settings.yaml", "realtime: false ", "realtime: true ")
    commit(repo, "staging: real-time on again", "2026-10-21T09:00:00+00:00")
    git(repo, "checkout", "-q", "main")
    when = "2026-10-22T09:00:00+00:00"
    git(repo, "merge", "-q", "--no-ff", "roll", "-m", "Merge pull request #12 from registrar/roll",
        "-m", "Real-time merges back on after the SIS upgrade (REG-42)",
        env={"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when})
    entries = json.loads(cli("--root", str(repo), "log", "staging", "--format", "json").out)
    assert entries[0]["message"] == ("Merge pull request #12 from registrar/roll: "
                                     "Real-time merges back on after the SIS upgrade (REG-42)")
    assert [(c["path"], c["before"], c["after"]) for c in entries[0]["changes"]] == [
        ("schedule.realtime", False, True)]


def test_since_is_read_in_the_environments_zone(repo: Path, history: dict[str, str], cli) -> None:
    """staging's commit at 10:30 Chicago (15:30Z): --since 10:00 without an offset is Chicago's 10:00."""
    kept = cli("--root", str(repo), "log", "staging", "--since", "2026-10-10T10:00", "--format", "json")
    assert kept.code == 0, kept.err
    assert history["off"] in [e["sha"] for e in json.loads(kept.out)]
    dropped = cli("--root", str(repo), "log", "staging", "--since", "2026-10-10T10:31", "--format", "json")
    assert history["off"] not in [e["sha"] for e in json.loads(dropped.out)]  # UTC would have kept it


def test_since_without_an_offset_is_refused_naming_the_zones(repo: Path, history: dict[str, str], cli) -> None:
    env_file = repo / "environments" / "sandbox" / "environment.yaml"
    env_file.write_text(env_file.read_text().replace("America/Chicago", "Europe/London"))
    result = cli("--root", str(repo), "log", "--since", "2026-10-10T10:00")
    assert result.code == 1
    assert "America/Chicago" in result.err and "Europe/London" in result.err and "Traceback" not in result.err
    assert cli("--root", str(repo), "log", "--since", "2026-10-10T10:00-05:00").code == 0
