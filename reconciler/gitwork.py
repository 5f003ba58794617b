"""EDGE: the work tree around a YAML edit that is committed at once (pause, resume).

Before the edit, `require_clean` refuses a work tree with a merge in progress or a conflict, or
with uncommitted changes the edit would be mixed with; after it, `commit_files` commits only
the files the edit wrote (`git commit --only`), so nothing else of the user's is swept in.
Untracked files outside `environments/` (the embedded store, editor files) are not the
edit's business and are ignored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.activity import one_line, open_repo
from reconciler.errors import GitError

_CONFLICT_CODES = {"DD", "AU", "UD", "UA", "DU", "AA", "UU"}


@dataclass(frozen=True)
class WorkTree:
    """The git work tree holding the root."""

    repo: Any
    top: Path

    def rel(self, path: Path) -> str:
        return path.resolve().relative_to(self.top).as_posix()


def open_work_tree(root: Path) -> WorkTree | None:
    """The work tree holding `root`, or None when it is not in one."""
    repo = open_repo(root)
    if repo is None:
        return None
    if repo.bare or repo.working_tree_dir is None:
        return None
    return WorkTree(repo, Path(repo.working_tree_dir).resolve())


def require_clean(root: Path, action: str) -> WorkTree | None:
    """The work tree, once it is clear that `action` can commit on it; None outside git."""
    tree = open_work_tree(root)
    if tree is None:
        return None
    git_dir = Path(tree.repo.git_dir)
    for marker, what in (("MERGE_HEAD", "a merge"), ("REBASE_HEAD", "a rebase"), ("CHERRY_PICK_HEAD", "a cherry-pick")):
        if (git_dir / marker).exists():
            raise GitError(f"{action}: {what} is in progress in {tree.top}; finish or abort it first")
    dirty = _dirty(tree, root)
    conflicts = [path for code, path in dirty if code in _CONFLICT_CODES]
    if conflicts:
        raise GitError(f"{action}: {conflicts[0]} has a merge conflict; resolve it first")
    if dirty:
        shown = ", ".join(path for _, path in dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
        raise GitError(
            f"{action}: the work tree has uncommitted changes ({shown}); commit or stash them first, "
            "so the commit holds only this edit"
        )
    return tree


def _dirty(tree: WorkTree, root: Path) -> list[tuple[str, str]]:
    """(status code, path) of every change that matters: tracked ones, and untracked files under environments/."""
    import git

    try:
        out = tree.repo.git.status("--porcelain=v1", "-z", "--untracked-files=all")
    except git.GitCommandError as e:
        raise GitError(f"cannot read the git status of {tree.top}: {one_line(e)}") from e
    environments = tree.rel(root / "environments") + "/"
    found: list[tuple[str, str]] = []
    entries = iter(out.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            next(entries, None)  # the source path of a rename or copy
        if code == "??" and not path.startswith(environments):
            continue
        found.append((code, path))
    return found


def commit_files(tree: WorkTree, files: Sequence[Path], message: str) -> str:
    """Commit exactly `files` with `message`; the new commit's sha."""
    import tempfile

    import git

    paths = [tree.rel(f) for f in files]
    try:
        tree.repo.git.add("--", *paths)
        with tempfile.TemporaryFile() as handle:
            handle.write(message.encode())
            handle.seek(0)
            tree.repo.git.commit("-q", "-F", "-", "--only", "--", *paths, istream=handle, env=_identity_env(tree))
    except git.GitCommandError as e:
        raise GitError(f"cannot commit {', '.join(paths)}: {one_line(e)}") from e
    return str(tree.repo.head.commit.hexsha)


def unstage(tree: WorkTree, files: Sequence[Path]) -> None:
    """Take `files` out of the index again (after a failed commit), best effort."""
    import git

    with contextlib.suppress(git.GitCommandError):
        tree.repo.git.reset("-q", "--", *[tree.rel(f) for f in files])


def _identity_env(tree: WorkTree) -> dict[str, str] | None:
    """No identity configured anywhere: commit as `reconciler`, rather than fail on git's complaint."""
    env = os.environ
    if env.get("GIT_AUTHOR_NAME") and env.get("GIT_COMMITTER_NAME"):
        return None
    try:
        reader = tree.repo.config_reader()
        if reader.get_value("user", "name", default="") and reader.get_value("user", "email", default=""):
            return None
    except Exception:  # an unreadable config is no identity
        pass
    fallback = {"GIT_AUTHOR_NAME": "reconciler", "GIT_AUTHOR_EMAIL": "reconciler@localhost",
                "GIT_COMMITTER_NAME": "reconciler", "GIT_COMMITTER_EMAIL": "reconciler@localhost"}
    return {key: env.get(key) or value for key, value in fallback.items()}

