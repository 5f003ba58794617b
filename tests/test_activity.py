"""The `reconciler/activity` branch: apply and import record there, never touching work tree, index or HEAD."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler import activity
from reconciler.git import read_records, record


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30)
    return done.stdout.strip()


def init_git(root: Path) -> None:
    (root / ".gitignore").write_text(".reconciler/\n", encoding="utf-8")
    past = time.time() - 3600
    for path in root.rglob("*"):  # files older than the index: `git status` then has no reason to rewrite it
        os.utime(path, (past, past))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial settings")


def trailers(root: Path, rev: str) -> dict[str, str]:
    message = git(root, "log", "-1", "--format=%B", rev)
    parsed = subprocess.run(["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True,
                            check=True, cwd=root).stdout
    return dict(line.split(": ", 1) for line in parsed.splitlines())


def snapshot(root: Path) -> tuple[str, str, bytes, int, str]:
    index = root / ".git" / "index"
    return (git(root, "rev-parse", "HEAD"), git(root, "symbolic-ref", "HEAD"), index.read_bytes(),
            index.stat().st_mtime_ns, git(root, "status", "--porcelain", "--untracked-files=all"))


def test_apply_records_a_root_commit_with_trailers_and_touches_nothing_else(repo: Path, cli) -> None:
    init_git(repo)
    (repo / "notes.txt").write_text("work in progress\n", encoding="utf-8")  # an untracked file stays as it is
    before = snapshot(repo)

    result = cli("--root", str(repo), "apply", "staging", "--ticket", "SUP-9", "--message", "spring rehearsal")

    assert result.code == 0, result.err
    assert snapshot(repo) == before
    assert git(repo, "rev-list", "--count", activity.BRANCH) == "1"
    assert git(repo, "rev-list", "--parents", "-n1", activity.BRANCH).split() == [git(repo, "rev-parse",
                                                                                      activity.BRANCH)]
    assert trailers(repo, activity.BRANCH) == {
        "Environment": "staging", "Revision": before[0], "Outcome": "applied",
        "Actor": "Test Registrar <registrar@example.edu>", "Ticket": "SUP-9",
    }
    message = git(repo, "log", "-1", "--format=%B", activity.BRANCH)
    assert message.splitlines()[0].startswith("apply staging: applied ")
    assert "spring rehearsal" in message
    assert "schedule.realtime" in message  # the changes, one per line
    assert git(repo, "log", "-1", "--format=%an <%ae>", activity.BRANCH) == "Test Registrar <registrar@example.edu>"
    assert git(repo, "ls-tree", "--name-only", activity.BRANCH) == "staging.log"
    assert "SUP-9" in git(repo, "show", f"{activity.BRANCH}:staging.log")
    assert "no git record" not in result.err


def test_apply_also_comments_on_the_live_activity_log_with_the_ticket(repo: Path, cli) -> None:
    from reconciler.connectors import get_connector
    from reconciler.repo import load_repository

    init_git(repo)
    assert cli("--root", str(repo), "apply", "staging", "--ticket", "SUP-9").code == 0
    spec = load_repository(repo).envs["staging"]
    entries = get_connector(spec, repo).read()["activity"]
    assert entries[-1]["kind"] == "apply" and entries[-1]["ticket"] == "SUP-9"


def test_a_second_apply_appends_on_the_previous_tip(repo: Path, cli) -> None:
    init_git(repo)
    assert cli("--root", str(repo), "apply", "staging").code == 0
    first = git(repo, "rev-parse", activity.BRANCH)
    assert cli("--root", str(repo), "apply", "sandbox").code == 0

    tip = git(repo, "rev-parse", activity.BRANCH)
    assert tip != first
    assert git(repo, "rev-parse", f"{tip}^") == first
    assert git(repo, "ls-tree", "--name-only", activity.BRANCH).split() == ["sandbox.log", "staging.log"]
    assert "Ticket" not in trailers(repo, tip)
    assert trailers(repo, tip)["Environment"] == "sandbox"


def test_apply_outside_a_git_repository_works_and_says_no_record_was_written(repo: Path, cli) -> None:
    result = cli("--root", str(repo), "apply", "--yes")

    assert result.code == 0, result.err
    assert "staging: applied" in result.out and "sandbox: applied" in result.out
    assert result.err.count(activity.NO_GIT_NOTE) == 1


def test_a_failed_apply_is_recorded_as_failed(repo: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.connectors.embedded import EmbeddedConnector

    init_git(repo)

    def broken(self, changes, *, record):  # type: ignore[no-untyped-def]
        raise RuntimeError("the platform said no")

    monkeypatch.setattr(EmbeddedConnector, "apply_changes", broken)
    result = cli("--root", str(repo), "apply", "staging")

    assert result.code == 1
    assert trailers(repo, activity.BRANCH)["Outcome"] == "failed"
    assert "the platform said no" in git(repo, "log", "-1", "--format=%s", activity.BRANCH)


def test_import_records_too(repo: Path, cli) -> None:
    init_git(repo)
    assert cli("--root", str(repo), "apply", "staging").code == 0
    settings = repo / "environments" / "staging" / "merge-settings.yaml"
    settings.write_text(settings.read_text(encoding="utf-8").replace("realtime: false", "realtime: true"),
                        encoding="utf-8")

    result = cli("--root", str(repo), "import", "staging")

    assert result.code == 0, result.err
    found = trailers(repo, activity.BRANCH)
    assert found["Outcome"] == "imported" and found["Environment"] == "staging"
    assert git(repo, "rev-list", "--count", activity.BRANCH) == "2"


def test_import_outside_git_says_no_record(repo: Path, cli) -> None:
    assert cli("--root", str(repo), "apply", "staging").code == 0
    settings = repo / "environments" / "staging" / "merge-settings.yaml"
    settings.write_text(settings.read_text(encoding="utf-8").replace("realtime: false", "realtime: true"),
                        encoding="utf-8")
    result = cli("--root", str(repo), "import", "staging")
    assert result.code == 0
    assert result.err.count(activity.NO_GIT_NOTE) == 1


def test_record_returns_none_outside_git(tmp_path: Path) -> None:
    sha = record(tmp_path, environment="staging", revision=None, outcome="applied", actor="me",
                 ticket=None, subject="s", body="")
    assert sha is None
    assert read_records(tmp_path) == []


def test_records_read_back_and_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_git(tmp_path)
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-11-01T10:00:00+00:00")
    record(tmp_path, environment="staging", revision="abc", outcome="paused", actor="ci-bot",
           ticket="SUP-1", subject="pause staging", body="~ schedule.realtime: true → false")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-11-02T10:00:00+00:00")
    sha = record(tmp_path, environment="production", revision=None, outcome="applied", actor="ci-bot",
                 ticket=None, subject="apply production", body="")

    records = read_records(tmp_path)
    assert [r.environment for r in records] == ["staging", "production"]
    first = records[0]
    assert (first.revision, first.outcome, first.actor, first.ticket, first.subject, first.body) == (
        "abc", "paused", "ci-bot", "SUP-1", "pause staging", "~ schedule.realtime: true → false")
    assert first.at == datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert records[1].sha == sha and records[1].revision is None and records[1].ticket is None
    assert [r.environment for r in read_records(tmp_path, environment="production")] == ["production"]
    since = datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert [r.sha for r in read_records(tmp_path, since=since)] == [sha]
    assert read_records(tmp_path, since=since + timedelta(days=5)) == []


def test_concurrent_records_all_land_in_one_line_of_history(tmp_path: Path) -> None:
    init_git(tmp_path)
    errors: list[BaseException] = []

    def worker(env: str) -> None:
        try:
            for i in range(3):
                record(tmp_path, environment=env, revision=None, outcome="applied", actor="a",
                       ticket=None, subject=f"{env} {i}", body="")
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(env,)) for env in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert git(tmp_path, "rev-list", "--count", activity.BRANCH) == "9"
    for env in ("a", "b", "c"):
        assert len(git(tmp_path, "show", f"{activity.BRANCH}:{env}.log").splitlines()) == 3


def test_a_checked_out_activity_branch_is_refused(tmp_path: Path) -> None:
    from reconciler.errors import GitError

    init_git(tmp_path)
    record(tmp_path, environment="a", revision=None, outcome="applied", actor="a", ticket=None,
           subject="s", body="")
    git(tmp_path, "checkout", "-q", activity.BRANCH)
    with pytest.raises(GitError, match="checked out"):
        record(tmp_path, environment="a", revision=None, outcome="applied", actor="a", ticket=None,
               subject="s", body="")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat"}, "octocat", id="github-actions"),
        pytest.param({"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "RECONCILER_ACTOR": "x"}, "x",
                     id="github-actions-with-named-actor"),
        pytest.param({"CI": "true", "GITLAB_USER_LOGIN": "gl-user"}, "gl-user", id="gitlab"),
        pytest.param({"CI": "true", "RECONCILER_ACTOR": "named", "GITLAB_USER_LOGIN": "gl"}, "named",
                     id="ci-with-named-actor"),
        pytest.param({"RECONCILER_ACTOR": "jo"}, "jo", id="named-actor"),
        pytest.param({}, "Test Registrar <registrar@example.edu>", id="git-identity"),
    ],
)
def test_actor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str) -> None:
    for name in ("RECONCILER_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert activity.actor(tmp_path) == expected


def test_actor_falls_back_to_the_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RECONCILER_ACTOR", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(activity.getpass, "getuser", lambda: "login-name")
    assert activity.actor(tmp_path) == "login-name"


def test_actor_reads_the_repository_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIT_AUTHOR_NAME", raising=False)
    monkeypatch.delenv("GIT_AUTHOR_EMAIL", raising=False)
    monkeypatch.delenv("RECONCILER_ACTOR", raising=False)
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.name", "Repo Person")
    git(tmp_path, "config", "user.email", "repo@example.edu")
    assert activity.actor(tmp_path) == "Repo Person <repo@example.edu>"
