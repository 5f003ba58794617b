"""Where live was applied from (DESIGN §3; issue 12 item 4), on a bare remote and two clones — a laptop
and a CI runner — whose environments live on one real emulator: a pause from the laptop that is not
pushed is not undone by the runner's apply in CI; a boundary acted on late says so; the embedded store
in CI warns."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from emulator_fixture import TOKEN_ENV, Emulator, emulator, start_emulator  # noqa: F401
from test_rehearsal import Clock, schedule, use_emulator

import reconciler.engine as engine_clock

CHICAGO = ZoneInfo("America/Chicago")
T0 = datetime(2026, 11, 25, 12, 5, tzinfo=CHICAGO)  # a Wednesday noon: no window open
T1 = datetime(2026, 11, 25, 12, 20, tzinfo=CHICAGO)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, timeout=30).stdout


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(T0)
    monkeypatch.setattr(engine_clock, "now", clock)
    return clock


@pytest.fixture
def clones(repo: Path, tmp_path: Path, emulator: Emulator,  # noqa: F811
           monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(laptop, runner): two clones of one bare remote, both on the emulator, the example pushed."""
    monkeypatch.setenv(TOKEN_ENV, emulator.token)
    use_emulator(repo, emulator)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "The example repository, on the admin API")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "push", "-q", str(remote), "main")
    laptop, runner = tmp_path / "laptop", tmp_path / "runner"
    for clone in (laptop, runner):
        git(tmp_path, "clone", "-q", str(remote), str(clone))
    return laptop, runner


def test_a_pause_not_pushed_is_not_undone_by_a_ci_apply(cli, clones: tuple[Path, Path], clock: Clock,  # type: ignore[no-untyped-def]
                                                         emulator: Emulator,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    laptop, runner = clones
    first = cli("--root", str(runner), "apply", "--yes")
    assert first.code == 0, first.err

    clock.at = T1
    paused = cli("--root", str(laptop), "pause", "production", "--reason", "SIS outage", "--ticket", "INC-7")
    assert paused.code == 0, paused.err
    assert "production: push this commit (git push origin main, or merge it through a pull request)" in paused.err
    assert schedule(emulator, "production") == {"nightly": False, "realtime": False}
    unpushed = git(laptop, "rev-parse", "HEAD").strip()

    monkeypatch.setenv("CI", "true")
    refused = cli("--root", str(runner), "apply", "--yes", "production")
    assert refused.code == 1
    assert (f"production: live was applied from revision {unpushed[:12]}, which this checkout does not have"
            in refused.err)
    assert "rerun with --force" in refused.err
    assert schedule(emulator, "production") == {"nightly": False, "realtime": False}, "the pause was undone"

    monkeypatch.delenv("CI")
    warned = cli("--root", str(runner), "plan", "production", "--detailed-exitcode")
    assert warned.code == 2  # the plan still shows what an apply from here would do

    git(laptop, "push", "-q", "origin", "main")
    git(runner, "pull", "-q", "--ff-only")
    monkeypatch.setenv("CI", "true")
    converged = cli("--root", str(runner), "apply", "--yes", "production")
    assert converged.code == 0, converged.err
    assert "does not have" not in converged.err
    assert "production: no changes" in converged.lines  # (with its linked sandbox)


def test_outside_ci_the_apply_warns_and_goes_on(cli, clones: tuple[Path, Path], clock: Clock,  # type: ignore[no-untyped-def]
                                                emulator: Emulator) -> None:  # noqa: F811
    laptop, runner = clones
    assert cli("--root", str(runner), "apply", "--yes").code == 0
    clock.at = T1
    assert cli("--root", str(laptop), "pause", "production", "--reason", "SIS outage").code == 0

    undone = cli("--root", str(runner), "apply", "--yes", "production")
    assert undone.code == 0, undone.err
    assert "warning: production: live was applied from revision" in undone.err
    assert schedule(emulator, "production") == {"nightly": True, "realtime": True}


def test_force_in_ci_applies_with_the_warning(cli, clones: tuple[Path, Path], clock: Clock,  # type: ignore[no-untyped-def]
                                              emulator: Emulator,  # noqa: F811
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    laptop, runner = clones
    assert cli("--root", str(runner), "apply", "--yes").code == 0
    clock.at = T1
    assert cli("--root", str(laptop), "pause", "production", "--reason", "SIS outage").code == 0
    monkeypatch.setenv("CI", "true")
    forced = cli("--root", str(runner), "apply", "--yes", "--force", "production")
    assert forced.code == 0, forced.err
    assert "warning: production: live was applied from revision" in forced.err
    assert schedule(emulator, "production")["nightly"] is True


# --- on the embedded store ---------------------------------------------------------------------------


def at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(engine_clock, "now", lambda: moment)


def test_a_window_start_acted_on_late_says_when_it_started_and_when_it_acted(cli, repo: Path,  # type: ignore[no-untyped-def]
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(repo)
    at(monkeypatch, datetime(2026, 12, 5, 19, 50, tzinfo=CHICAGO))  # banner-upgrade-2026-12 starts at 20:00
    assert cli("--root", root, "apply", "--yes", "production").code == 0
    at(monkeypatch, datetime(2026, 12, 5, 20, 14, tzinfo=CHICAGO))
    late = cli("--root", root, "apply", "--yes", "production")
    assert late.code == 0, late.err
    assert any(line.startswith("production: maintenance window banner-upgrade-2026-12") and
               line.endswith("started 20:00, acted 20:14") for line in late.lines), late.lines

    at(monkeypatch, datetime(2026, 12, 6, 3, 30, 20, tzinfo=CHICAGO))  # it ends at 03:30: acted on time
    on_time = cli("--root", root, "apply", "--yes", "production")
    assert on_time.code == 0, on_time.err
    assert not [line for line in on_time.lines if "acted" in line], on_time.lines


def test_an_apply_in_ci_to_the_embedded_store_warns(cli, repo: Path,  # type: ignore[no-untyped-def]
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, datetime(2026, 11, 25, 12, 5, tzinfo=CHICAGO))
    local = cli("--root", str(repo), "apply", "--yes", "staging")
    assert "not kept between CI runs" not in local.err
    monkeypatch.setenv("CI", "true")
    result: Any = cli("--root", str(repo), "apply", "--yes", "staging")
    assert result.code == 0, result.err
    assert ("warning: staging: live is the embedded store (.reconciler/live.sqlite), which is not kept between "
            "CI runs") in result.err


def test_a_shallow_clone_that_cannot_tell_is_refused_in_ci_with_the_way_out(  # type: ignore[no-untyped-def]
        cli, clones: tuple[Path, Path], clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    laptop, runner = clones
    assert cli("--root", str(runner), "apply", "--yes").code == 0  # live: applied from the first commit
    access = laptop / "environments" / "production" / "access.yaml"
    text = access.read_text(encoding="utf-8")
    access.write_text(text.replace("products: [catalog, curriculum]", "products: [catalog]", 1), encoding="utf-8")
    git(laptop, "commit", "-qam", "The catalog editor leaves curriculum")
    git(laptop, "push", "-q", "origin", "main")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{tmp_path / 'remote.git'}", str(shallow))

    monkeypatch.setenv("CI", "true")
    refused = cli("--root", str(shallow), "apply", "--yes", "production")
    assert refused.code == 1
    assert "production: this shallow clone cannot tell whether it holds revision" in refused.err
    assert "fetch-depth: 0" in refused.err
    git(shallow, "fetch", "-q", "--unshallow")
    assert cli("--root", str(shallow), "apply", "--yes", "production").code == 0


def test_a_boundary_acted_on_the_next_day_gives_its_date(cli, repo: Path,  # type: ignore[no-untyped-def]
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, datetime(2026, 12, 5, 19, 50, tzinfo=CHICAGO))
    assert cli("--root", str(repo), "apply", "--yes", "production").code == 0
    at(monkeypatch, datetime(2026, 12, 6, 0, 10, tzinfo=CHICAGO))  # the runner came back after midnight
    late = cli("--root", str(repo), "apply", "--yes", "production")
    assert late.code == 0, late.err
    assert any(line.endswith("started Sat 2026-12-05 20:00 -06:00, acted 00:10") for line in late.lines), late.lines
