"""`reconciler activity push`: two runners (two clones of one bare remote) record, then push; the second
replays its records on the first's, so every record reaches the remote exactly once."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler import activity
from reconciler import git as rgit
from reconciler.activity import Entry

BRANCH = activity.BRANCH


def git(cwd: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check, timeout=60)
    return done.stdout.strip()


def seed_remote(repo: Path, tmp_path: Path) -> Path:
    """A bare remote holding the example repository on `main`."""
    from test_activity import init_git

    init_git(repo)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "push", "-q", str(remote), "main")
    return remote


def clone(remote: Path, dest: Path, *options: str) -> Path:
    git(remote.parent, "clone", "-q", *options, remote.as_uri() if options else str(remote), str(dest))
    return dest


@pytest.fixture
def remote(repo: Path, tmp_path: Path) -> Path:
    return seed_remote(repo, tmp_path)


@pytest.fixture
def runners(remote: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two clones standing in for two CI runners."""
    return clone(remote, tmp_path / "runner-a"), clone(remote, tmp_path / "runner-b")


def remote_log(remote: Path, env: str = "staging") -> list[list[str]]:
    """The rows of `<env>.log` on the remote's activity branch."""
    text = git(remote, "show", f"{BRANCH}:{env}.log")
    return [line.split("\t") for line in text.splitlines()]


def record_ids(remote: Path, env: str = "staging") -> list[str]:
    return [row[6] for row in remote_log(remote, env)]


def apply_staging(cli, root: Path, message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(root), "apply", "staging", "--message", message)
    assert result.code == 0, result.err


def test_two_runners_recording_one_environment_both_reach_the_remote_once(cli, remote: Path,  # type: ignore[no-untyped-def]
                                                                          runners: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    a, b = runners
    apply_staging(cli, a, "runner a")
    apply_staging(cli, b, "runner b")
    b_record = git(b, "log", "-1", "--format=%B%x00%an <%ae>%x00%aI", BRANCH)

    first = cli("--root", str(a), "activity", "push")
    assert first.code == 0, first.err
    assert first.out.strip() == f"pushed 1 record of {BRANCH} to origin"
    second = cli("--root", str(b), "activity", "push")
    assert second.code == 0, second.err
    assert second.out.strip() == (f"pushed 1 record of {BRANCH} to origin "
                                  "(replayed on the records another run pushed first)")

    ids = record_ids(remote)
    assert len(ids) == 2 and len(set(ids)) == 2
    messages = git(remote, "log", "--format=%s", BRANCH).splitlines()
    assert len(messages) == 2 and all(m.startswith("apply staging: applied") for m in messages)
    # the replayed commit keeps the message, the author and the author date; it stands on a's record
    assert git(remote, "log", "-1", "--format=%B%x00%an <%ae>%x00%aI", BRANCH) == b_record
    assert git(remote, "rev-parse", f"{BRANCH}~1") == git(a, "rev-parse", BRANCH)
    assert git(b, "rev-parse", BRANCH) == git(remote, "rev-parse", BRANCH)

    reader = clone(remote, tmp_path / "reader")
    shown = cli("--root", str(reader), "log", "staging")
    assert shown.code == 0, shown.err
    assert "runner a" in shown.out and "runner b" in shown.out
    assert shown.out.count("  activity ") == 2


def test_pushing_again_changes_nothing(cli, remote: Path, runners: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    a, b = runners
    apply_staging(cli, a, "runner a")
    apply_staging(cli, b, "runner b")
    assert cli("--root", str(a), "activity", "push").code == 0
    assert cli("--root", str(b), "activity", "push").code == 0
    tip = git(remote, "rev-parse", BRANCH)

    again = cli("--root", str(b), "activity", "push")
    assert again.code == 0 and again.out.strip() == f"nothing to push: {BRANCH} is up to date on origin"
    behind = cli("--root", str(a), "activity", "push")  # a lacks b's record: it catches up, pushes nothing
    assert behind.code == 0 and behind.out.strip() == f"nothing to push: {BRANCH} is up to date on origin"
    assert git(remote, "rev-parse", BRANCH) == tip
    assert git(a, "rev-parse", BRANCH) == tip
    assert len(record_ids(remote)) == 2


def test_a_record_the_remote_holds_already_is_not_written_twice(cli, remote: Path,  # type: ignore[no-untyped-def]
                                                                runners: tuple[Path, Path]) -> None:
    a, b = runners
    apply_staging(cli, a, "runner a")
    assert cli("--root", str(a), "activity", "push").code == 0
    (pushed_id,) = record_ids(remote)
    # b holds one record of its own and the same record as a (a killed run's leftover, written again)
    apply_staging(cli, b, "runner b")
    same = Entry("staging", None, "applied", "Test Registrar <registrar@example.edu>", None,
                 "apply staging: applied (again)", "", record_id=pushed_id)
    assert rgit.record_many(b, [same]) is not None

    result = cli("--root", str(b), "activity", "push")
    assert result.code == 0, result.err
    assert result.out.strip().endswith("; 1 the remote held already, not written twice")
    ids = record_ids(remote)
    assert ids.count(pushed_id) == 1 and len(ids) == 2
    assert git(remote, "rev-list", "--count", BRANCH) == "2"


def test_a_push_rejected_because_another_run_pushed_meanwhile_is_retried(cli, remote: Path,  # type: ignore[no-untyped-def]
                                                                        runners: tuple[Path, Path],
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = runners
    third = clone(remote, tmp_path / "runner-c")
    apply_staging(cli, a, "runner a")
    assert cli("--root", str(a), "activity", "push").code == 0
    apply_staging(cli, b, "runner b")
    real = rgit.push_activity
    calls: list[str] = []

    def racing(repo, name, sha):  # type: ignore[no-untyped-def]
        if not calls:  # just before b's push lands, runner c pushes a record of its own
            entry = Entry("production", None, "applied", "c <c@example.edu>", None, "apply production", "",
                          record_id="from-runner-c")
            git(third, "fetch", "-q", "origin")
            rgit.record_many(third, [entry])
            git(third, "push", "-q", "origin", BRANCH)
        calls.append(sha)
        return real(repo, name, sha)

    monkeypatch.setattr(rgit, "push_activity", racing)
    result = cli("--root", str(b), "activity", "push")

    assert result.code == 0, result.err
    assert len(calls) == 2  # rejected once, replayed again on c's record, then pushed
    assert len(record_ids(remote, "staging")) == 2
    assert record_ids(remote, "production") == ["from-runner-c"]
    assert git(remote, "rev-list", "--count", BRANCH) == "3"


def test_a_remote_that_keeps_moving_is_given_up_after_bounded_attempts(cli, runners: tuple[Path, Path],  # type: ignore[no-untyped-def]
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = runners
    apply_staging(cli, a, "runner a")
    calls: list[str] = []

    def refused(repo, name, sha):  # type: ignore[no-untyped-def]
        calls.append(sha)
        return False

    monkeypatch.setattr(rgit, "push_activity", refused)

    result = cli("--root", str(a), "activity", "push")

    assert result.code == 1
    assert len(calls) == 5
    assert result.err.strip().splitlines() == [
        f"error: cannot push {BRANCH} to 'origin': it moved under every one of 5 attempts (other runs kept "
        "pushing); run `reconciler activity push` again"]


def test_an_unreachable_remote_is_one_line_naming_it(cli, remote: Path, runners: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    a, _ = runners
    apply_staging(cli, a, "runner a")
    shutil.rmtree(remote)

    result = cli("--root", str(a), "activity", "push")
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the remote 'origin': ")
    assert "Traceback" not in result.err

    other = cli("--root", str(a), "activity", "push", "backup")
    assert other.code == 1 and other.err.startswith("error: cannot reach the remote 'backup': ")
    assert len(other.err.strip().splitlines()) == 1


def test_nothing_to_push_without_a_local_branch(cli, runners: tuple[Path, Path], remote: Path) -> None:  # type: ignore[no-untyped-def]
    a, _ = runners
    result = cli("--root", str(a), "activity", "push")
    assert result.code == 0, result.err
    assert result.out.strip() == f"nothing to push: there is no local branch {BRANCH}"
    assert git(remote, "branch", "--list", BRANCH) == ""


def test_the_first_record_in_a_fresh_clone_starts_from_the_remote_tip(cli, remote: Path,  # type: ignore[no-untyped-def]
                                                                      runners: tuple[Path, Path]) -> None:
    a, b = runners
    apply_staging(cli, a, "runner a")
    assert cli("--root", str(a), "activity", "push").code == 0
    git(b, "fetch", "-q", "origin")  # b now has origin/reconciler/activity and no local branch
    assert git(b, "branch", "--list", BRANCH) == ""

    # staging was applied (origin's branch says so) and b's store is empty: the guard needs --force
    refused = cli("--root", str(b), "apply", "staging")
    assert refused.code == 1 and "the activity branch shows an earlier apply" in refused.err
    assert cli("--root", str(b), "apply", "staging", "--force", "--message", "runner b").code == 0

    assert git(b, "rev-parse", f"{BRANCH}~1") == git(b, "rev-parse", f"origin/{BRANCH}")
    result = cli("--root", str(b), "activity", "push")
    assert result.out.strip() == f"pushed 1 record of {BRANCH} to origin"  # a fast-forward: nothing replayed
    assert len(record_ids(remote)) == 2


def test_a_url_remote_is_pushed_to_as_well(cli, remote: Path, runners: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    a, b = runners
    apply_staging(cli, a, "runner a")
    apply_staging(cli, b, "runner b")
    assert cli("--root", str(a), "activity", "push", remote.as_uri()).code == 0
    result = cli("--root", str(b), "activity", "push", str(remote))
    assert result.code == 0, result.err
    assert "replayed" in result.out
    assert len(set(record_ids(remote))) == 2
