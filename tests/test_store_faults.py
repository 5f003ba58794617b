"""The embedded store under faults: a killed apply and two processes racing for the lease."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reconciler.connectors.base import lease_holder
from reconciler.connectors.embedded import EmbeddedConnector
from reconciler.errors import LockError
from reconciler.repo import load_repository

PROJECT = Path(__file__).resolve().parents[1]

HOLD_AND_DIE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from reconciler.connectors.embedded import EmbeddedConnector, open_store, store_path
    from reconciler.repo import load_repository

    root = Path(sys.argv[1])
    spec = load_repository(root).envs["sandbox"]
    connector = EmbeddedConnector(spec, root)
    with connector.lock("killed-run@ci:1", 1.0):
        conn = open_store(store_path(root))
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE live SET doc = '{}'")
        os.kill(os.getpid(), signal.SIGKILL)
    """
)

HOLD_AND_LOG = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from reconciler.connectors.embedded import EmbeddedConnector
    from reconciler.repo import load_repository

    root, name, log = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    spec = load_repository(root).envs["sandbox"]
    with EmbeddedConnector(spec, root).lock(name, 30.0, wait_s=5.0):
        with log.open("a") as f:
            f.write(f"start {name} {time.monotonic()}\\n")
        time.sleep(0.4)
        with log.open("a") as f:
            f.write(f"end {name} {time.monotonic()}\\n")
    """
)


HOLD_LONG_AND_DIE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from reconciler.connectors.base import LEASE_TTL_S, lease_holder
    from reconciler.connectors.embedded import EmbeddedConnector
    from reconciler.repo import load_repository

    root = Path(sys.argv[1])
    connector = EmbeddedConnector(load_repository(root).envs["sandbox"], root)
    with connector.lock(lease_holder("Ada <ada@x.edu>"), LEASE_TTL_S):
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _python(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.Popen([sys.executable, "-c", *args], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_apply_killed_with_sigkill_leaves_no_lock_beyond_its_lease(repo: Path, cli) -> None:
    assert cli("--root", str(repo), "apply", "sandbox", "--yes").code == 0
    before = cli("--root", str(repo), "plan", "sandbox", "--format", "json").out
    code, err = _finish(_python(HOLD_AND_DIE, str(repo)))
    assert code == -9, err
    time.sleep(1.1)  # the killed run's one-second lease runs out
    after = cli("--root", str(repo), "apply", "sandbox", "--yes")
    assert after.code == 0, after.err
    assert cli("--root", str(repo), "plan", "sandbox", "--detailed-exitcode").code == 0
    assert '"changes": []' in before


def test_two_processes_never_hold_the_lease_at_once(repo: Path, cli, tmp_path: Path) -> None:
    assert cli("--root", str(repo), "apply", "sandbox", "--yes").code == 0
    log = tmp_path / "log.txt"
    procs = [_python(HOLD_AND_LOG, str(repo), f"run-{i}", str(log)) for i in range(2)]
    results = [_finish(proc) for proc in procs]
    assert [code for code, _ in results] == [0, 0], results
    events = [line.split() for line in log.read_text().splitlines()]
    assert [e[0] for e in events] == ["start", "end", "start", "end"]
    assert events[0][1] == events[1][1] and events[2][1] == events[3][1]
    assert float(events[2][2]) >= float(events[1][2])


def test_a_run_killed_on_this_host_is_taken_over_at_once(repo: Path) -> None:
    """Its lease would last LEASE_TTL_S; its holder names a pid on this host that no longer runs."""
    proc = _python(HOLD_LONG_AND_DIE, str(repo))
    code, err = _finish(proc)
    assert code == -9, err
    killed = lease_holder("Ada <ada@x.edu>", pid=proc.pid)
    connector = EmbeddedConnector(load_repository(repo).envs["sandbox"], repo)
    with connector.lock("next-run@ci:2", 60, wait_s=0.5) as lease:
        assert (lease.holder, lease.took_over) == ("next-run@ci:2", killed)
        other = EmbeddedConnector(load_repository(repo).envs["sandbox"], repo)
        with pytest.raises(LockError, match="locked by next-run@ci:2"), other.lock("third-run@ci:3", 60, wait_s=0.1):
            pytest.fail("the lease taken over was not held")
