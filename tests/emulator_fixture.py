"""A real `reconciler emulator` on 127.0.0.1, in a subprocess, for tests that talk HTTP to it.

Use it from a test module with `from emulator_fixture import emulator, start_emulator  # noqa: F401`
(pytest puts tests/ on sys.path). `emulator` is a server with default options; `start_emulator(**options)`
starts more (fault injection, a given store file, `api="coursedog"` for the platform's own read API, extra
arguments). Every server is stopped at teardown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
TOKEN_ENV = "RECONCILER_EMULATOR_TEST_TOKEN"
DEFAULT_TOKEN = "test-token-0123456789abcdef"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


@dataclass
class Emulator:
    """One running emulator: `url` is the API base (…/api/v1), `base` the server root (…:PORT)."""

    url: str
    base: str
    port: int
    token: str
    db: Path
    proc: subprocess.Popen[bytes]
    log_dir: Path
    _stopped: int | None = field(default=None, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def output(self) -> str:
        """Everything the server printed so far (stdout, then stderr)."""
        return "".join(
            (self.log_dir / name).read_text(encoding="utf-8", errors="replace") for name in ("stdout", "stderr")
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send `sig` and wait (bounded) for the exit code; a server that hangs is killed and fails the test."""
        if self._stopped is not None:
            return self._stopped
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self._stopped = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError(f"the emulator did not stop within {timeout}s of signal {sig}") from None
        return self._stopped


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def emulator_args(
    port: int,
    db: Path,
    *,
    latency_ms: int = 0,
    error_rate: float = 0.0,
    drop_rate: float = 0.0,
    seed: int | None = None,
    api: str = "reconciler",
    extra_args: Sequence[str] = (),
) -> list[str]:
    args = [sys.executable, "-m", "reconciler", "emulator", "--host", "127.0.0.1", "--port", str(port),
            "--db", str(db), "--token-env", TOKEN_ENV, "--latency", str(latency_ms),
            "--error-rate", str(error_rate), "--drop-rate", str(drop_rate)]
    if seed is not None:
        args += ["--seed", str(seed)]
    if api != "reconciler":
        args += ["--api", api]
    return [*args, *extra_args]


def _wait_healthy(server: Emulator, deadline: float) -> bool:
    """True once /healthz answers; False if the process died first (e.g. its port was taken meanwhile)."""
    import httpx

    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            return False
        try:
            if httpx.get(f"{server.base}/healthz", timeout=1.0).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"the emulator did not answer /healthz within {START_TIMEOUT_S}s:\n{server.output()}")


def launch(
    work: Path,
    *,
    db: Path | None = None,
    token: str = DEFAULT_TOKEN,
    latency_ms: int = 0,
    error_rate: float = 0.0,
    drop_rate: float = 0.0,
    seed: int | None = None,
    api: str = "reconciler",
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Emulator:
    """Start one emulator serving `db` (default: work/live.sqlite) and wait until it answers. `api`: our admin
    API (`reconciler`, the default) or the scheduling platform's read API (`coursedog`, `emulator --api`)."""
    db = db or work / "live.sqlite"
    for _attempt in range(3):  # the free port may be taken between our probe and the server's bind
        port = free_port()
        log_dir = Path(os.fspath(work)) / f"emulator-{port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        args = emulator_args(port, db, latency_ms=latency_ms, error_rate=error_rate, drop_rate=drop_rate,
                             seed=seed, api=api, extra_args=extra_args)
        proc_env = {**os.environ, "PYTHONPATH": str(PROJECT), TOKEN_ENV: token, **(env or {})}
        with (log_dir / "stdout").open("wb") as out, (log_dir / "stderr").open("wb") as err:
            proc = subprocess.Popen(args, cwd=work, env=proc_env, stdout=out, stderr=err)
        base = f"http://127.0.0.1:{port}"
        server = Emulator(f"{base}/api/v1", base, port, token, db, proc, log_dir)
        if _wait_healthy(server, time.monotonic() + START_TIMEOUT_S):
            return server
        if "address already in use" not in server.output().lower():
            raise AssertionError(f"the emulator exited with {proc.returncode}:\n{server.output()}")
    raise AssertionError("no free port for the emulator after 3 attempts")


@pytest.fixture
def start_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Emulator]]:
    """A factory: `start_emulator(db=None, token=..., latency_ms=0, error_rate=0.0, drop_rate=0.0, seed=None,
    api="reconciler", extra_args=(), env=None) -> Emulator`. Every emulator it started is stopped (SIGTERM) at
    teardown."""
    started: list[Emulator] = []

    def start(**options: object) -> Emulator:
        server = launch(tmp_path_factory.mktemp("emulator"), **options)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.stop()


@pytest.fixture
def emulator(start_emulator: Callable[..., Emulator]) -> Emulator:
    """One emulator with no fault injection and a fresh store."""
    return start_emulator()
