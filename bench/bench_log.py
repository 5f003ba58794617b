"""`reconciler log` over a long history: N commits touching environments/ (default 2,000).

The repository is built in one `git fast-import` run from the example environments: each
commit edits one file (real-time merges in staging, sandbox's term scopes, a production user,
a production phase, now and then `_base/`), with some authors and a broken YAML every 500th
commit. Prints the time of `log`, `log --setting schedule.realtime` and `log --format json`,
each run as a user runs it (a new process), best of 3, and the number of entries printed.
Usage: python3 bench/bench_log.py [N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
EXAMPLE = PROJECT / "environments"
AUTHORS = ("Ana Ruiz", "Bo Chen", "Cy Okafor", "Di Hernandez")
START = 1_760_000_000


def _blob(path: str, text: str) -> bytes:
    data = text.encode()
    return f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"


def _edit(i: int, files: dict[str, str]) -> tuple[str, str, str]:
    """The i-th commit's file, its new text and its subject."""
    if i % 500 == 250:
        path = "environments/sandbox/phases.yaml"
        return path, files[path] + "  broken: [\n", "wip: phases (broken)"
    if i % 100 == 99:
        path = "environments/_base/merge-settings.yaml"
        action = "inactivate" if i % 200 == 99 else "cancel"
        return path, files[path].replace("on_delete: cancel", f"on_delete: {action}"), f"base: on_delete {action}"
    kind = i % 4
    if kind == 0:
        path = "environments/staging/merge-settings.yaml"
        value = "true" if i % 8 == 0 else "false"
        return path, files[path].replace("realtime: false", f"realtime: {value}"), f"staging: real-time {value}"
    if kind == 1:
        path = "environments/sandbox/merge-settings.yaml"
        terms = '"202720", "202730"' if i % 3 else '"202710", "202720", "202730"'
        text = files[path].replace('terms: ["202710", "202720", "202730"]', f"terms: [{terms}]", 1)
        return path, text, f"sandbox: course terms {terms}"
    if kind == 2:
        path = "environments/production/access.yaml"
        user = f"  - {{email: user{i % 40}@example.edu, products: [scheduling]}}\n"
        return path, files[path] + user, f"production: access for user{i % 40}"
    path = "environments/production/phases.yaml"
    day = 10 + i % 5
    return path, files[path].replace("end: 2027-01-11", f"end: 2027-01-{day}"), f"production: final review ends {day}"


def fast_import_stream(count: int) -> bytes:
    files = {f"environments/{p.relative_to(EXAMPLE).as_posix()}": p.read_text(encoding="utf-8")
             for p in sorted(EXAMPLE.rglob("*.yaml"))}
    out = bytearray()
    for i in range(count):
        author = AUTHORS[i % len(AUTHORS)]
        who = f"{author} <{author.split()[0].lower()}@example.edu> {START + i * 3600} +0000"
        subject = "initial settings" if i == 0 else ""
        changes = b"".join(_blob(path, text) for path, text in files.items()) if i == 0 else b""
        if i:
            path, text, subject = _edit(i, files)
            changes = _blob(path, text)
        message = subject.encode()
        out += f"commit refs/heads/main\nmark :{i + 1}\nauthor {who}\ncommitter {who}\n".encode()
        out += f"data {len(message)}\n".encode() + message + b"\n"
        if i:
            out += f"from :{i}\n".encode()
        out += changes + b"\n"
    return bytes(out)


def build(root: Path, count: int) -> float:
    start = time.perf_counter()
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=fast_import_stream(count), check=True)
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=root, check=True)
    return time.perf_counter() - start


def run(root: Path, env: dict[str, str], *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "reconciler", "--root", str(root), "log", *args],
                          env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stderr.strip()[-400:], file=sys.stderr)
    return took, proc.stdout


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        made = build(root, count)
        print(f"built a repository of {count} commits with git fast-import: {made:.2f} s")
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode compiled
        for label, args in (("log", ()), ("log --setting schedule.realtime", ("--setting", "schedule.realtime")),
                            ("log --format json", ("--format", "json"))):
            runs = [run(root, env, *args) for _ in range(3)]
            best = min(t for t, _ in runs)
            out = runs[0][1]
            heads = sum(1 for line in out.splitlines() if line and not line.startswith(" "))
            entries = len(json.loads(out)) if "json" in args else heads
            print(f"{label}: best of 3 {best:.2f} s (runs: {', '.join(f'{t:.2f}' for t, _ in runs)}); "
                  f"{entries} entries")


if __name__ == "__main__":
    main()
