"""A fleet apply killed with SIGKILL again and again, at random moments: afterwards live and the
activity branch agree (one record per apply that reached live, none for one that did not), no lease is
left to block the next run, and the next apply converges."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

from reconciler.connectors import get_connector
from reconciler.connectors.base import holder_is_dead, lease_holder
from reconciler.connectors.embedded import store_path
from reconciler.repo import load_repository

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "bench"))
from bench_validate import make_fleet  # noqa: E402

FLEET = 24
KILLS = 6


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def reconciler(root: Path, *args: str) -> subprocess.Popen[bytes]:
    """A run in its own process, its output dropped (a killed run's pipes would be left open)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.Popen([sys.executable, "-m", "reconciler", "--root", str(root), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finished(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run([sys.executable, "-m", "reconciler", "--root", str(root), *args], env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def toggle_setting(root: Path, step: int) -> None:
    """A merged pull request that changes one setting of every environment."""
    base = root / "environments" / "_base" / "merge-settings.yaml"
    old, new = ("on_delete: cancel", "on_delete: inactivate") if step % 2 == 0 else \
        ("on_delete: inactivate", "on_delete: cancel")
    base.write_text(base.read_text().replace(old, new))
    git(root, "commit", "-qam", f"step {step}")


def live_applies(root: Path) -> Counter[str]:
    with closing(sqlite3.connect(store_path(root))) as conn, conn:
        rows = conn.execute("SELECT env, entry FROM activity").fetchall()
    return Counter(env for env, entry in rows
                   if json.loads(entry).get("kind") == "apply" and json.loads(entry).get("outcome") == "applied")


def git_applies(root: Path) -> Counter[str]:
    out = git(root, "log", "--format=%(trailers:key=Environment,valueonly,separator=)|"
                           "%(trailers:key=Outcome,valueonly,separator=)", "reconciler/activity")
    pairs = [line.split("|") for line in out.splitlines() if line.strip("|")]
    return Counter(env for env, outcome in pairs if outcome == "applied")


def test_sigkill_during_fleet_applies_loses_no_record_and_wedges_no_lease(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    make_fleet(root, FLEET)
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text(".reconciler/\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "fleet")
    first = finished(root, "apply", "--yes", "--parallel", "2")
    assert first.returncode == 0, first.stderr
    chance = random.Random(20261201)
    for step in range(KILLS):
        toggle_setting(root, step)
        run = reconciler(root, "apply", "--yes", "--parallel", "2")
        time.sleep(chance.uniform(0.4, 2.0))
        run.send_signal(signal.SIGKILL)
        run.wait(30)
    final = finished(root, "apply", "--yes", "--parallel", "2")
    assert final.returncode == 0, final.stderr
    assert "locked by" not in final.stderr
    assert finished(root, "plan", "--detailed-exitcode").returncode == 0
    assert live_applies(root) == git_applies(root)
    assert sum(live_applies(root).values()) > FLEET  # the killed runs did apply some environments
    with closing(sqlite3.connect(store_path(root))) as conn, conn:
        left = [holder for (holder,) in conn.execute("SELECT holder FROM lease")]
    # a run killed while holding a lease on an environment it had finished leaves a row no one waits on:
    # its holder is a dead process on this host, so the next run takes it over at once
    assert all(holder_is_dead(holder) for holder in left), left
    specs = load_repository(root).envs
    for name in sorted(specs):
        with get_connector(specs[name], root).lock(lease_holder("next-run"), 60, wait_s=0):
            pass
    assert not list((root / ".reconciler" / "pending").glob("*.json"))


def test_a_branch_lock_left_by_a_killed_writer_is_outwaited_not_a_lost_record(tmp_path: Path) -> None:
    """A run killed while moving the branch leaves `reconciler/activity.lock`; the next run, started at
    once, waits for it to go stale and writes its record (it used to give up within a second, leaving
    the record pending with exit 0)."""
    root = tmp_path / "fleet"
    make_fleet(root, 1)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "fleet")
    assert finished(root, "apply", "--yes").returncode == 0
    lock = root / ".git" / "refs" / "heads" / "reconciler" / "activity.lock"
    lock.write_text("0" * 40 + "\n")  # as a writer killed between creating the lock and renaming it leaves it
    toggle_setting(root, 0)
    again = finished(root, "apply", "--yes")
    assert again.returncode == 0, again.stderr
    assert "kept in .reconciler/pending" not in again.stderr
    assert sum(git_applies(root).values()) == 2
    assert not list((root / ".reconciler" / "pending").glob("*.json"))
