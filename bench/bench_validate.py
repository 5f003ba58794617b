"""Validate a generated fleet shaped like the example: cold (empty cache) and warm; then one
environment holding many maintenance windows (the checks that compare windows must stay O(n log n)).

Usage: python3 bench/bench_validate.py [N [W]]   (default 500 environments, 1000 windows)
Targets on a 2-core machine: 500 environments cold <= 2.5 s, warm <= 0.5 s; 1,000 windows <= 1 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
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
            text = text.replace("source: production", "source: college-0000")  # a site of this fleet
            folder.joinpath(extra).write_text(text)
    shutil.copytree(PROJECT / "schemas", root / "schemas")


def make_windows(root: Path, count: int, *, weekly_share: float = 0.4) -> None:
    """One environment (the example's production) whose maintenance.yaml holds `count` windows: weekly
    ones on distinct half-hour slots of the week, the rest one-off, a day apart."""
    shutil.copytree(PROJECT / "environments", root / "environments")
    shutil.copytree(PROJECT / "schemas", root / "schemas")
    lines = ["apiVersion: reconciler/v1", "kind: MaintenanceWindows", "windows:"]
    weekly = int(count * weekly_share)
    days = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
    for i in range(weekly):
        slot = i % (7 * 48)
        day, half = days[slot // 48], slot % 48
        lines.append(f"  - {{id: weekly-{i:04d}, reason: hosted, every: FREQ=WEEKLY;BYDAY={day}, "
                     f'start: "{half // 2:02d}:{30 * (half % 2):02d}", duration: 20m}}')
    for i in range(count - weekly):
        day = (datetime(2027, 1, 1) + timedelta(days=i)).date().isoformat()
        lines.append(f"  - {{id: once-{i:04d}, reason: upgrade, start: {day}T20:00, end: {day}T21:00}}")
    (root / "environments" / "production" / "maintenance.yaml").write_text("\n".join(lines) + "\n")


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
    windows = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    for label, count, share in ((f"{windows} windows", windows, 0.4), ("600 weekly windows", 600, 1.0)):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_windows(root, count, weekly_share=share)
            env = {**os.environ, "RECONCILER_CACHE_DIR": str(root / "cache"), "PYTHONPATH": str(PROJECT)}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            seconds, code = run(root, env, "validate", "production")
            print(f"validate: {label} in one environment: cold {seconds:.2f} s (exit {code})")


def timed_help(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "reconciler", "--help"], env=env, capture_output=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
