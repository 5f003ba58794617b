"""Plan and apply a generated fleet on the embedded store.

Prints: the first apply of N environments; a no-change plan, cold (empty document cache) and
warm; an apply that changes one setting in each environment; a no-change apply.
Usage: python3 bench/bench_plan.py [N]   (default 500)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_validate import PROJECT, make_fleet, run

AT = "2026-11-25T12:00"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_fleet(root, count)
        env = {**os.environ, "RECONCILER_CACHE_DIR": str(root / "cache"), "PYTHONPATH": str(PROJECT)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode compiled
        first, code = run(root, env, "apply", "--yes")
        print(f"first apply of {count} environments: {first:.2f} s (exit {code})")
        env["RECONCILER_CACHE_DIR"] = str(root / "cache-cold")
        cold, code = run(root, env, "plan", "--at", AT, "--detailed-exitcode")
        warm = min(run(root, env, "plan", "--at", AT, "--detailed-exitcode")[0] for _ in range(3))
        print(f"no-change plan of {count} environments: cold {cold:.2f} s, warm {warm:.2f} s (exit {code})")
        base = root / "environments" / "_base" / "merge-settings.yaml"
        base.write_text(base.read_text().replace("on_delete: cancel", "on_delete: inactivate"))
        one, code = run(root, env, "apply", "--yes")
        print(f"apply changing one setting in each of {count} environments: {one:.2f} s (exit {code})")
        store = root / ".reconciler" / "live.sqlite"
        before = store.stat().st_mtime_ns, store.stat().st_size
        again, code = run(root, env, "apply", "--yes")
        after = store.stat().st_mtime_ns, store.stat().st_size
        print(f"no-change apply: {again:.2f} s (exit {code}); store file touched: {before != after}")


if __name__ == "__main__":
    main()
