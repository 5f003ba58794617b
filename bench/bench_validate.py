"""Validate a generated fleet shaped like the example: cold (empty cache) and warm.

Usage: python3 bench/bench_validate.py [N]   (default 500 environments)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def make_fleet(root: Path, count: int) -> None:
    example = PROJECT / "environments"
    shutil.copytree(example / "_base", root / "environments" / "_base")
    sandbox = example / "sandbox"
    for i in range(count):
        name = f"college-{i:04d}"
        folder = root / "environments" / name
        folder.mkdir(parents=True)
        for src in sandbox.iterdir():
            text = src.read_text().replace("name: sandbox", f"name: {name}")
            folder.joinpath(src.name).write_text(text)
        for extra in ("maintenance.yaml", "updates.yaml", "terms.yaml"):
            src = example / "production" / extra
            if not src.exists():
                src = example / "_base" / extra
            text = src.read_text()
            for site in ("staging", "production"):
                text = text.replace(f"site: {site}", f"site: {name}")
            folder.joinpath(extra).write_text(text)
    shutil.copytree(PROJECT / "schemas", root / "schemas")


def run(root: Path, env: dict[str, str], *args: str) -> tuple[float, int]:
    """Seconds and exit code of one `reconciler --root ROOT ARGS…` in a fresh process, as a user runs it."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "reconciler", "--root", str(root), *args],
                          env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 2):
        print(proc.stderr.strip()[-400:], file=sys.stderr)
    return time.perf_counter() - start, proc.returncode


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_fleet(root, count)
        files = sum(1 for _ in (root / "environments").rglob("*.yaml"))
        env = {**os.environ, "RECONCILER_CACHE_DIR": str(root / "cache"), "PYTHONPATH": str(PROJECT)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode compiled
        cold, code = run(root, env, "validate")
        warm = min(run(root, env, "validate")[0] for _ in range(3))
        help_time = min(timed_help(env) for _ in range(5))
        print(f"validate: {count} environments ({files} files): cold {cold:.2f} s, warm {warm:.2f} s (exit {code})")
        print(f"reconciler --help: {help_time * 1000:.0f} ms")


def timed_help(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "reconciler", "--help"], env=env, capture_output=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
