"""`reconciler watch`: the pure wake decision, the loop on a driven clock, and a real process."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reconciler.engine as engine_clock
import reconciler.engine.watch as watch_cli
from reconciler.connectors import get_connector
from reconciler.core.timeline import Timeline
from reconciler.core.watchloop import DRIFT_CHECK, START, Watched, applied, backoff, due_for, failed, next_wake
from reconciler.repo import load_repository

PROJECT = Path(__file__).resolve().parents[1]
CHICAGO = ZoneInfo("America/Chicago")
BEFORE_UPGRADE = datetime(2026, 12, 5, 19, 58, tzinfo=CHICAGO)  # the Banner upgrade window opens at 20:00
UPGRADE_START = datetime(2026, 12, 5, 20, 0, tzinfo=CHICAGO)
UPGRADE_END = datetime(2026, 12, 6, 3, 30, tzinfo=CHICAGO)
HOUR = timedelta(hours=1)


@cache
def example_production() -> Timeline:
    """The example repository's production timeline (read only)."""
    return Timeline.from_spec(load_repository(PROJECT).envs["production"])


@pytest.fixture
def production(repo: Path) -> Timeline:
    return Timeline.from_spec(load_repository(repo).envs["production"])


# --- the pure decision -------------------------------------------------------------------------


def test_nothing_applied_yet_is_due_now(production: Timeline) -> None:
    wake = next_wake(BEFORE_UPGRADE, {"production": production, "quiet": Timeline("quiet", UTC)}, {}, HOUR)
    assert wake is not None
    assert wake.at == BEFORE_UPGRADE
    assert [(d.environment, d.reason) for d in wake.due] == [("production", START), ("quiet", START)]


def test_wakes_at_the_window_start_before_the_interval(production: Timeline) -> None:
    watched = {"production": applied(BEFORE_UPGRADE)}
    wake = next_wake(BEFORE_UPGRADE, {"production": production}, watched, HOUR)
    assert wake is not None
    assert wake.at == UPGRADE_START
    assert [d.reason for d in wake.due] == ["window-start banner-upgrade-2026-12"]


def test_wakes_for_the_drift_check_when_it_comes_first(production: Timeline) -> None:
    watched = {"production": applied(BEFORE_UPGRADE)}
    wake = next_wake(BEFORE_UPGRADE, {"production": production}, watched, timedelta(seconds=60))
    assert wake is not None
    assert wake.at == BEFORE_UPGRADE + timedelta(seconds=60)
    assert [d.reason for d in wake.due] == [DRIFT_CHECK]


def test_after_the_window_start_the_next_is_its_end(production: Timeline) -> None:
    watched = {"production": applied(UPGRADE_START)}
    due = due_for("production", production, watched["production"], UPGRADE_START, timedelta(days=1))
    assert (due.at, due.reason) == (UPGRADE_END, "window-end banner-upgrade-2026-12")


def test_a_transition_slept_past_is_due_at_once(production: Timeline) -> None:
    """Woken late (a suspended machine): the boundary already passed is acted on now."""
    late = UPGRADE_START + timedelta(minutes=7)
    wake = next_wake(late, {"production": production}, {"production": applied(BEFORE_UPGRADE)}, HOUR)
    assert wake is not None
    assert wake.at == late
    assert [d.reason for d in wake.due] == ["window-start banner-upgrade-2026-12"]


def test_only_the_earliest_environments_are_due(production: Timeline) -> None:
    watched = {"production": applied(BEFORE_UPGRADE), "quiet": applied(BEFORE_UPGRADE)}
    wake = next_wake(BEFORE_UPGRADE, {"production": production, "quiet": Timeline("quiet", UTC)}, watched, HOUR)
    assert wake is not None
    assert [d.environment for d in wake.due] == ["production"]


def test_the_weekly_window_after_the_clocks_go_back_is_at_4_local(production: Timeline) -> None:
    saturday = datetime(2026, 10, 31, 12, 0, tzinfo=CHICAGO)  # CDT; the clocks go back at 02:00 Sunday
    wake = next_wake(saturday, {"production": production}, {"production": applied(saturday)}, timedelta(days=7))
    assert wake is not None
    assert wake.at.astimezone(CHICAGO).isoformat() == "2026-11-01T04:00:00-06:00"
    assert [d.reason for d in wake.due] == ["window-start weekly-hosted-updates"]


@settings(max_examples=40, deadline=None)
@given(since=st.integers(0, 60 * 24 * 40), waited=st.integers(0, 60 * 24 * 3), interval=st.integers(1, 60 * 24))
def test_no_transition_is_slept_past(since: int, waited: int, interval: int) -> None:
    """Whatever the times, the wake is never after the first transition since the last apply,
    nor after the drift check, nor before now."""
    production = example_production()
    last = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(minutes=since)
    now = last + timedelta(minutes=waited)
    step = timedelta(minutes=interval)
    wake = next_wake(now, {"production": production}, {"production": applied(last)}, step)
    assert wake is not None
    assert wake.at >= now
    assert wake.at <= max(now, last + step)
    upcoming = production.next_transition(last)
    if upcoming is not None:
        assert wake.at <= max(now, upcoming.at)


def test_nothing_watched_is_no_wake() -> None:
    assert next_wake(BEFORE_UPGRADE, {}, {}, HOUR) is None


@pytest.mark.parametrize(("failures", "seconds"), [
    pytest.param(0, 0, id="none"),
    pytest.param(1, 1, id="first"),
    pytest.param(2, 2, id="second"),
    pytest.param(4, 8, id="doubling"),
    pytest.param(10, 300, id="capped-at-interval"),
    pytest.param(10_000, 300, id="many-stays-capped"),
])
def test_backoff_doubles_up_to_the_interval(failures: int, seconds: float) -> None:
    assert backoff(failures, timedelta(seconds=300)) == timedelta(seconds=seconds)


def test_platform_down_is_retried_with_backoff_not_at_the_transition(production: Timeline) -> None:
    record = applied(BEFORE_UPGRADE)
    for expected in (1, 2, 4):
        record = failed(record, UPGRADE_START, HOUR, transient=True)
        due = due_for("production", production, record, UPGRADE_START, HOUR)
        assert due.at == UPGRADE_START + timedelta(seconds=expected)
        assert due.reason == f"retry {record.failures} after a failure (window-start banner-upgrade-2026-12)"
    assert applied(UPGRADE_START) == Watched(last_apply=UPGRADE_START)


def test_broken_yaml_waits_for_the_next_interval(production: Timeline) -> None:
    record = failed(Watched(), BEFORE_UPGRADE, HOUR, transient=False)
    due = due_for("production", production, record, BEFORE_UPGRADE, HOUR)
    assert due.at == BEFORE_UPGRADE + HOUR
    assert due.reason.startswith("retry 1")


# --- the loop, on a driven clock -----------------------------------------------------------------


@dataclass
class Clock:
    """Stands in for the wall clock and for sleeping: a sleep moves time on at once."""

    at: datetime
    sleeps: list[float] = field(default_factory=list)
    on_sleep: Callable[[Clock], None] | None = None

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        self.sleeps.append(seconds)
        self.at += timedelta(seconds=seconds)
        if self.on_sleep is not None:
            self.on_sleep(self)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    driven = Clock(BEFORE_UPGRADE)
    monkeypatch.setattr(watch_cli, "now", driven.now)
    monkeypatch.setattr(watch_cli, "sleep", driven.sleep)
    monkeypatch.setattr(engine_clock, "now", driven.now)
    return driven


def live(repo: Path, env: str) -> dict[str, Any]:
    return get_connector(load_repository(repo).envs[env], repo).read()


def test_applies_at_start_then_on_time_at_the_window_start(cli, repo: Path, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "watch", "production", "--interval", "3600", "--max-cycles", "2")
    assert result.code == 0, result.err
    assert result.out == ""
    assert clock.sleeps == [60.0, 60.0]  # 19:58 -> 20:00 exactly, in naps of at most a minute
    lines = result.err.splitlines()
    assert any(line.startswith("2026-12-05T19:58:00-06:00 production: applied ") and line.endswith("[start]")
               for line in lines), result.err
    opened = [line for line in lines if "[window-start banner-upgrade-2026-12]" in line]
    assert opened and opened[0].startswith("2026-12-05T20:00:00-06:00 production: applied 2 changes"), result.err
    assert live(repo, "production")["schedule"] == {"nightly": False, "realtime": False}
    activity = live(repo, "production")["activity"]
    assert any("watch: window-start banner-upgrade-2026-12" in str(entry) for entry in activity)


def test_a_quiet_interval_logs_no_changes(cli, repo: Path, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "watch", "staging", "--interval", "60", "--max-cycles", "2")
    assert result.code == 0, result.err
    assert clock.sleeps == [60.0]
    assert "2026-12-05T19:59:00-06:00 staging: no changes [drift check]" in result.err.splitlines()


def test_platform_down_is_logged_and_retried_with_backoff(cli, repo: Path, clock: Clock,  # type: ignore[no-untyped-def]
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("reconciler.connectors.embedded.LOCK_WAIT_S", 0.01)
    held = ExitStack()
    held.enter_context(get_connector(load_repository(repo).envs["staging"], repo).lock("console-job-7", 600))

    def release_after_two(driven: Clock) -> None:
        if len(driven.sleeps) == 2:
            held.close()

    clock.on_sleep = release_after_two
    try:
        result = cli("--root", str(repo), "watch", "staging", "--interval", "300", "--max-cycles", "3")
    finally:
        held.close()
    assert result.code == 0, result.err
    assert clock.sleeps == [1.0, 2.0]
    refused = [line for line in result.err.splitlines() if "not applied" in line]
    assert len(refused) == 2
    assert "console-job-7" in refused[0] and refused[0].endswith("(retry in 1s)")
    assert refused[1].endswith("(retry in 2s)")
    assert "Traceback" not in result.err
    done = [line for line in result.err.splitlines() if "staging: applied " in line]
    assert len(done) == 1 and done[0].startswith("2026-12-05T19:58:03-06:00 ")
    assert done[0].endswith("[retry 2 after a failure (start)]")


def test_broken_yaml_after_a_pull_is_logged_and_picked_up_when_fixed(cli, repo: Path,  # type: ignore[no-untyped-def]
                                                                    clock: Clock) -> None:
    env_file = repo / "environments" / "staging" / "environment.yaml"
    good = env_file.read_text(encoding="utf-8")
    env_file.write_text(good.replace("timezone:", "timezone: [", 1), encoding="utf-8")

    def fix(driven: Clock) -> None:
        env_file.write_text(good, encoding="utf-8")

    clock.on_sleep = fix
    result = cli("--root", str(repo), "watch", "staging", "--interval", "120", "--max-cycles", "2")
    assert result.code == 0, result.err
    assert clock.sleeps == [60.0, 60.0]
    refused = [line for line in result.err.splitlines() if "staging: not applied:" in line]
    assert len(refused) == 1 and refused[0].endswith("(trying again in 120s)"), result.err
    assert "2026-12-05T20:00:00-06:00 staging: applied " in result.err
    assert "Traceback" not in result.err


def test_sigterm_lets_the_loop_finish_and_exit_zero(cli, repo: Path, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    clock.on_sleep = lambda driven: signal.raise_signal(signal.SIGTERM)
    before = signal.getsignal(signal.SIGTERM)
    result = cli("--root", str(repo), "watch", "staging", "--interval", "60")
    assert result.code == 0, result.err
    assert clock.sleeps == [60.0]  # no apply after the signal, no second sleep
    assert result.err.splitlines()[-1].endswith("stopped (SIGTERM)")
    assert signal.getsignal(signal.SIGTERM) == before


def test_unknown_environment_is_one_line_and_exit_1(cli, repo: Path, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "watch", "nowhere", "--max-cycles", "1")
    assert result.code == 1
    assert result.err.strip() == ("error: no environment 'nowhere' under environments/ "
                                  "(have: production, sandbox, staging)")


def test_help_hides_the_test_option(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("watch", "--help")
    assert result.code == 0
    assert "--interval" in result.out
    assert "--max-cycles" not in result.out


# --- a real process ---------------------------------------------------------------------------


def test_real_process_applies_then_stops_on_sigterm(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    command = [sys.executable, "-m", "reconciler", "--root", str(repo), "watch", "--interval", "1"]
    seen: list[str] = []
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr or ()], daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 60
            # All three applied (the signal would stop the loop before the next environment).
            while not any("staging: applied " in line for line in seen):
                assert time.monotonic() < deadline, f"no apply logged within 60s: {seen}"
                try:
                    seen.append(lines.get(timeout=1))
                except queue.Empty:
                    assert proc.poll() is None, f"watch ended early ({proc.returncode}): {seen}"
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=15)
            stopped_in = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
        out = proc.stdout.read() if proc.stdout else ""
    while not lines.empty():
        seen.append(lines.get())
    assert code == 0, seen
    assert stopped_in < 10
    assert seen[-1].rstrip().endswith("stopped (SIGTERM)"), seen
    assert "Traceback" not in "".join(seen)
    assert out == ""
    plan = cli("--root", str(repo), "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err  # the store holds the applied state
    assert any("watch: start" in str(entry) for entry in live(repo, "staging")["activity"])
