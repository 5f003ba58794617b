"""EDGE: git reads the engine needs about the work tree (pre-commit's `git.py`).

The revision the work tree stands at, and `environments/` as it stood at another revision.
The activity branch is written by `reconciler.activity`; commits of edits by `reconciler.gitwork`.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
TIMEOUT_S = 30


def _git(root: Path, *args: str, timeout: float = TIMEOUT_S) -> bytes | None:
    """stdout of `git ARGS` run in `root`, or None when git fails or is missing."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def revision(root: Path) -> str | None:
    """`git rev-parse HEAD` of the root, or None when it is not a git repository."""
    out = _git(root, "rev-parse", "HEAD", timeout=10)
    return (out or b"").decode().strip() or None


def with_tree_at(root: Path, rev: str, use: Callable[[Path], T]) -> T | None:
    """`use(folder)` on a temporary folder holding `environments/` as it stood at `rev` (the root may be
    a subfolder of the repository); None when git cannot say."""
    prefix = (_git(root, "rev-parse", "--show-prefix") or b"").decode().strip()
    archive = _git(root, "archive", "--format=tar", f"{rev}:{prefix}environments")
    if archive is None:
        return None
    with tempfile.TemporaryDirectory(prefix="reconciler-rev-") as tmp:
        target = Path(tmp) / "environments"
        target.mkdir()
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
        return use(Path(tmp))
