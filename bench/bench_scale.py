"""How a fleet's warm validate and warm no-change plan grow with its size: seconds and peak memory.

For each size, a generated fleet is applied once to the embedded store (no git), then `validate` and
`plan` are each run warm (the document cache filled by a first run) under `/usr/bin/time -v`.
Prints one line per size and command, and the ratio to the smallest size (linear: ratio ≈ size ratio).
Usage: python3 bench/bench_scale.py [N ...]   (default 1250 2500 5000)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_validate import PROJECT, make_fleet, run

AT = "2026-11-25T12:00"


def measured(root: Path, env: dict[str, str], *args: str) -> tuple[float, int]:
    """Best wall time of three runs, and the peak resident memory (KiB) of the last, per /usr/bin/time -v."""
    best, peak = float("inf"), 0
    for _ in range(3):
        start = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "reconciler", "--root", str(root), *args],
                              env=env, capture_output=True, text=True, check=False)
        best = min(best, time.perf_counter() - start)
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        peak = int(found[1]) if found else 0
    return best, peak


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1250, 2500, 5000]
    first: dict[str, tuple[float, int]] = {}
    for count in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_fleet(root, count)
            env = {**os.environ, "RECONCILER_CACHE_DIR": str(root / "cache"), "PYTHONPATH": str(PROJECT)}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            seconds, code = run(root, env, "apply", "--yes", "--parallel", "8")
            print(f"{count} environments: first apply {seconds:.1f} s (exit {code})")
            for name, args in (("validate", ("validate",)), ("plan", ("plan", "--at", AT, "--detailed-exitcode"))):
                run(root, env, *args)  # fills the document cache
                wall, peak = measured(root, env, *args)
                base = first.setdefault(name, (wall, peak))
                print(f"  {name} warm: {wall:.2f} s, peak {peak / 1024:.0f} MiB "
                      f"(x{wall / base[0]:.2f} time, x{peak / base[1]:.2f} memory for x{count / sizes[0]:.1f} size)")


if __name__ == "__main__":
    main()
