"""EDGE: the history of `environments/` as git holds it, read for `reconciler log`.

One `git log --first-parent --raw` lists the commits that touched the folder and the blobs they
changed; one `git cat-file --batch` reads those blobs. `cli/log.py` parses them with the strict
loader and diffs consecutive states (core/history.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.activity import one_line
from reconciler.errors import GitError

_SEP = "\x1e"
_END = "\x1f"


@dataclass(frozen=True)
class FileChange:
    """One file a commit added, modified or deleted (blob None) under the history's folder."""

    path: str
    blob: str | None


@dataclass(frozen=True)
class Revision:
    """One commit of the first-parent history of a folder, with the files it changed."""

    sha: str
    at: datetime
    author: str
    subject: str
    files: tuple[FileChange, ...]


def folder_history(repo: Any, folder: str) -> list[Revision]:
    """The commits that touched `folder` (a path in the repository), oldest first, in ONE git process.

    The first-parent line is followed, a merge diffed against its first parent: that is the
    line on which the folder's states succeed one another.
    """
    import git

    if _head(repo) is None:
        return []
    args = ["--first-parent", "--diff-merges=first-parent", "--reverse", "--raw", "--no-abbrev",
            "--no-renames", "--format=" + _SEP + "%H%x00%aI%x00%an <%ae>%x00%s%x00%b" + _END, "HEAD", "--", folder]
    try:
        out = str(repo.git.execute(["git", "-c", "core.quotePath=false", "log", *args],
                                   strip_newline_in_stdout=False))
    except git.GitCommandError as e:
        raise GitError(f"cannot read the history of {folder}: {one_line(e)}") from e
    return [rev for chunk in out.split(_SEP) if (rev := _revision(chunk)) is not None]


def _head(repo: Any) -> str | None:
    import git

    try:
        return str(repo.git.rev_parse("--verify", "-q", "HEAD^{commit}")).strip() or None
    except git.GitCommandError:
        return None


def _revision(chunk: str) -> Revision | None:
    header, _, rest = chunk.partition(_END)
    parts = header.split("\x00")
    if len(parts) != 5:
        return None
    files: list[FileChange] = []
    for row in rest.splitlines():
        if not row.startswith(":"):
            continue
        meta, _, path = row.partition("\t")
        fields = meta.split()
        if len(fields) < 5:
            continue
        blob = None if fields[4].startswith("D") or set(fields[3]) == {"0"} else fields[3]
        files.append(FileChange(path, blob))
    sha, at, author, subject, body = parts
    return Revision(sha, datetime.fromisoformat(at), author, _why(subject, body), tuple(files))


def _why(subject: str, body: str) -> str:
    """The subject; for a merge (`Merge pull request #12 from …`), with the first line of its body, where
    the pull request's title or the reason stands."""
    first = next((line.strip() for line in body.splitlines() if line.strip()), "")
    return f"{subject}: {first}" if subject.startswith("Merge ") and first else subject


def read_blobs(repo: Any, shas: Iterable[str]) -> dict[str, bytes]:
    """The contents of many blobs through ONE `git cat-file --batch` process."""
    import subprocess

    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return {}
    try:
        done = subprocess.run(["git", "cat-file", "--batch"], cwd=repo.working_tree_dir, capture_output=True,
                              input="".join(f"{sha}\n" for sha in wanted).encode(), timeout=300, check=True)
    except (OSError, subprocess.SubprocessError) as e:
        raise GitError(f"cannot read file contents from git: {one_line(e)}") from e
    return _batch_output(done.stdout)


def _batch_output(data: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        fields = data[pos:end].split()
        pos = end + 1
        if len(fields) != 3:  # "<sha> missing": nothing follows
            continue
        size = int(fields[2])
        out[fields[0].decode()] = data[pos:pos + size]
        pos += size + 1
    return out
