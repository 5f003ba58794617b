"""Plan and apply a generated fleet over the http connector against `reconciler emulator` on 127.0.0.1.

Prints: the first apply of N environments (and the requests it sent, by kind); a no-change plan with
`--parallel 16`, timed as a user runs it (a fresh process) and with its requests counted from the
emulator's access log (one read per environment); an apply that changes one setting everywhere (one
batched write per environment).
Usage: python3 bench/bench_http.py [N]   (default 200)
"""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_validate import PROJECT, make_fleet, run

TOKEN_ENV = "RECONCILER_BENCH_TOKEN"
ACCESS = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) /api/v1/environments/[a-z0-9-]+(/[a-z-]+)? \w+ (\d+)ms")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_emulator(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = root / "emulator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "reconciler", "emulator", "--port", str(port),
                                 "--db", str(root / "emulator.sqlite"), "--token-env", TOKEN_ENV],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    import httpx

    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, f"{url}/api/v1", log
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the emulator did not start:\n{log.read_text()}")


def point_at(root: Path, url: str) -> None:
    live = f"live:\n  connector: http\n  url: {url}\n  token_env: {TOKEN_ENV}\n"
    for path in (root / "environments").glob("*/environment.yaml"):
        text = re.sub(r"^live:\n(?:[ \t]+.*\n)*", live, path.read_text(), flags=re.M)
        path.write_text(text)


def requests_since(log: Path, offset: int) -> tuple[Counter[str], int]:
    text = log.read_text(errors="replace")
    counts = Counter(f"{m[1]} {m[2] or '(environment)'}" for m in ACCESS.finditer(text[offset:]))
    return counts, len(text)


def server_ms(log: Path, offset: int) -> str:
    """The emulator's own time per request (median, by kind), from its access log."""
    times: dict[str, list[int]] = {}
    for m in ACCESS.finditer(log.read_text(errors="replace")[offset:]):
        times.setdefault(f"{m[1]} {m[2] or '(environment)'}", []).append(int(m[3]))
    return ", ".join(f"{k} {statistics.median(v):.0f} ms" for k, v in sorted(times.items()))


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_fleet(root, count)
        env = {**os.environ, "RECONCILER_CACHE_DIR": str(root / "cache"), "PYTHONPATH": str(PROJECT),
               TOKEN_ENV: "bench-token-not-secret"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode compiled
        proc, url, log = start_emulator(root, env)
        try:
            point_at(root, url)
            offset = 0
            first, code = run(root, env, "apply", "--yes", "--parallel", "16")
            took_ms = server_ms(log, offset)
            counts, offset = requests_since(log, offset)
            print(f"first apply of {count} environments over http: {first:.2f} s (exit {code}); "
                  f"requests: {dict(sorted(counts.items()))}; server time (median): {took_ms}")
            times = []
            for _ in range(3):
                took, code = run(root, env, "plan", "--detailed-exitcode", "--parallel", "16")
                took_ms = server_ms(log, offset)
                counts, offset = requests_since(log, offset)
                times.append(took)
            reads = counts.get("GET (environment)", 0)
            print(f"no-change plan of {count} environments over http, --parallel 16: best {min(times):.2f} s, "
                  f"worst {max(times):.2f} s (exit {code}, 0 = nothing to do); requests in the last: "
                  f"{dict(sorted(counts.items()))} ({reads / count:.2f} reads per environment); "
                  f"server time (median): {took_ms}")
            for path in (root / "environments").glob("college-*/merge-settings.yaml"):
                path.write_text(path.read_text().replace("allow_empty: true", "allow_empty: false"))
            took, code = run(root, env, "apply", "--yes", "--parallel", "16")
            counts, offset = requests_since(log, offset)
            writes = counts.get("POST /changes", 0)
            print(f"apply changing one setting in each of {count} environments: {took:.2f} s (exit {code}); "
                  f"{writes} change writes ({writes / count:.2f} per environment); "
                  f"requests: {dict(sorted(counts.items()))}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
