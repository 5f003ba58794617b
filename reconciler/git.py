"""EDGE: every git read and write (pre-commit's `git.py`); the only module that imports GitPython or runs git.

The work tree: the revision it stands at, `environments/` as it stood at another revision, and the
commit of a YAML edit (pause, resume) made only on a clean tree and holding only the edit's files.
The history of `environments/`: the commits that touched it and the blobs they changed, for
`reconciler log`. The activity branch `reconciler/activity`: its records written straight into the
object database and the branch moved without touching the work tree, the index or HEAD, and read
back (from `origin/reconciler/activity` when a fresh clone has no local branch); its push, which replays
this run's records on the remote's when another run pushed first. What a record says and how its message
and `<env>.log` line read is `reconciler.activity`'s.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import re
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from reconciler.activity import (
    BRANCH,
    REF,
    ActivityRecord,
    Entry,
    compose_message,
    file_stem,
    log_line,
    parse_record,
)
from reconciler.errors import GitError

log = logging.getLogger(__name__)

T = TypeVar("T")
TIMEOUT_S = 30
_SEP = "\x1e"
_END = "\x1f"


def _git(root: Path, *args: str, timeout: float = TIMEOUT_S) -> bytes | None:
    """stdout of `git ARGS` run in `root`, or None when git fails or is missing."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def open_repo(root: Path, *, writing: bool = False) -> Any | None:
    """The GitPython Repo holding `root`, or None when `root` is not in a git work tree. `writing`: new
    objects are written in-process as loose objects (gitdb), not by a `git hash-object` per object."""
    import git

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    except git.GitError as e:
        raise GitError(f"{root}: cannot open its git repository: {one_line(e)}") from e
    if repo.bare:
        return None
    if writing:
        from types import MethodType

        from gitdb import LooseObjectDB  # type: ignore[import-untyped]

        # GitCmdObjectDB is a LooseObjectDB that sends each write to a git process; its parent's store
        # writes the same loose object itself (the sha computed, the file zlib-compressed, renamed in)
        repo.odb.store = MethodType(LooseObjectDB.store, repo.odb)  # type: ignore[method-assign]
    return repo


def one_line(error: BaseException) -> str:
    text = getattr(error, "stderr", None) or str(error)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__).removeprefix("stderr: ").strip("'")


def identity(root: Path) -> str | None:
    """git's author: GIT_AUTHOR_NAME/EMAIL, else `user.name <user.email>` of the repository's config."""
    name = os.environ.get("GIT_AUTHOR_NAME")
    email = os.environ.get("GIT_AUTHOR_EMAIL")
    if not (name and email):
        repo = open_repo(root)
        if repo is not None:
            try:
                # the config reader parses the files in-process: no git process for a name
                reader = repo.config_reader()
                name = name or reader.get_value("user", "name", default="") or None
                email = email or reader.get_value("user", "email", default="") or None
            except Exception:  # an unreadable config is no identity, not a failure
                log.debug("cannot read git config of %s", root, exc_info=True)
    if not name:
        return None
    return f"{name} <{email}>" if email else str(name)


# --- the work tree ---------------------------------------------------------------------------

_CONFLICT_CODES = {"DD", "AU", "UD", "UA", "DU", "AA", "UU"}


DIRTY = "-dirty"


def revision(root: Path) -> str | None:
    """`git rev-parse HEAD` of the root, with `-dirty` when `environments/` has uncommitted changes (what
    is applied then is not what HEAD says); None when it is not a git repository."""
    out = _git(root, "rev-parse", "HEAD", timeout=10)
    head = (out or b"").decode().strip() or None
    if head is None:
        return None
    status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", "environments", timeout=30)
    return head + DIRTY if status else head


def with_tree_at(root: Path, rev: str, use: Callable[[Path], T]) -> T | None:
    """`use(folder)` on a temporary folder holding `environments/` as it stood at `rev` (the root may be
    a subfolder of the repository); None when git cannot say."""
    place = _top_and_prefix(root)
    if place is None:
        return None
    top, prefix = place
    # run at the top: from a subfolder, git archive would also cut the tree down to that subfolder's path
    archive = _git(top, "archive", "--format=tar", f"{rev.removesuffix(DIRTY)}:{prefix}environments")
    if archive is None:
        return None
    with tempfile.TemporaryDirectory(prefix="reconciler-rev-") as tmp:
        target = Path(tmp) / "environments"
        target.mkdir()
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
        return use(Path(tmp))


def _top_and_prefix(root: Path) -> tuple[Path, str] | None:
    """The work tree's top-level folder and the root's path below it (`settings/`, or `` at the top)."""
    out = _git(root, "rev-parse", "--show-toplevel", "--show-prefix", timeout=10)
    lines = (out or b"").decode().split("\n")
    if out is None or not lines[0].strip():
        return None
    return Path(lines[0].strip()), lines[1].strip() if len(lines) > 1 else ""


def is_shallow(root: Path) -> bool:
    """Whether the repository holding `root` is a shallow clone (its history is cut off)."""
    return (_git(root, "rev-parse", "--is-shallow-repository", timeout=10) or b"").strip() == b"true"


def refuse_shallow(root: Path, what: str) -> None:
    """A GitError with the way out when the history is shallow: `what` says what it cannot tell then."""
    if is_shallow(root):
        raise GitError(f"this clone's history is shallow, so {what}: run `git fetch --unshallow` "
                       "(GitHub Actions: actions/checkout with fetch-depth: 0)")


# Around a YAML edit that is committed at once (pause, resume): before it, `require_clean` refuses a
# work tree with a merge in progress or a conflict, or with uncommitted changes the edit would be
# mixed with; after it, `commit_files` commits only the files the edit wrote (`git commit --only`),
# so nothing else of the user's is swept in. Untracked files outside `environments/` (the embedded
# store, editor files) are not the edit's business and are ignored.


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


# --- the history of environments/ ------------------------------------------------------------
# One `git log --first-parent --raw` lists the commits that touched the folder and the blobs they
# changed; one `git cat-file --batch` reads those blobs. `cli/log.py` parses them with the strict
# loader and diffs consecutive states (core/history.py).


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


# --- the activity branch ---------------------------------------------------------------------
# Each record's objects (blob, tree, commit) are written straight into the object database and the
# branch moves with one compare-and-swap on its old tip, so the work tree, the index and the
# checked-out branch are never touched, and a fleet's apply writes all its records with one git process.

ATTEMPTS = 8
STALE_LOCK_S = 5.0
"""A branch lock file older than this was left by a killed writer (a write takes milliseconds)."""
_FALLBACK_COMMITTER = ("reconciler", "reconciler@localhost")
_IDENT = re.compile(r"^(?P<name>.*?)\s*<(?P<email>[^<>]*)>\s*$")


def record(root: Path, *, environment: str, revision: str | None, outcome: str, actor: str, ticket: str | None,
           subject: str, body: str) -> str | None:
    """Append one commit to `reconciler/activity`; its sha, or None when root is not in a git repository."""
    shas = record_many(root, [Entry(environment, revision, outcome, actor, ticket, subject, body)])
    return None if shas is None else shas[0]


def record_many(root: Path, entries: Sequence[Entry]) -> list[str] | None:
    """Append one commit per entry, in order, and move the branch once (compare-and-swap on the old tip,
    rebuilt on the new one if another writer moved it); the shas, or None outside a git repository."""
    repo = open_repo(root, writing=True)
    if repo is None:
        return None
    try:
        return append(repo, entries)
    finally:
        repo.close()


def append(repo: Any, entries: Sequence[Entry]) -> list[str]:
    """`record_many` on a repository the caller keeps open (one per run: GitPython's readers are processes)."""
    import git

    if not entries:
        return []
    _refuse_checked_out(repo)
    last: Exception | None = None
    # a lock a killed writer left goes stale after STALE_LOCK_S: outwait it rather than give up on the record
    deadline = time.monotonic() + STALE_LOCK_S + 1.0
    attempt = 0
    while attempt < ATTEMPTS or time.monotonic() < deadline:
        attempt += 1
        try:
            old = _tip(repo)
            # the branch's first write starts from a remote-tracking tip, so its later push is a fast-forward
            shas = _chain(repo, old or _remote_tip(repo), entries)
            _move_branch(repo, shas[-1], old)
            return shas
        except (git.GitCommandError, _Moved) as e:  # most often a concurrent record moved the tip: build on it
            last = e
            time.sleep(min(0.25, random.uniform(0, 0.05 * attempt)))
    raise GitError(f"cannot record on the branch {BRANCH}: {one_line(last) if last else 'unknown failure'}")


class _Moved(Exception):
    """Another writer holds the branch's lock or moved its tip since it was read."""


def _move_branch(repo: Any, new: str, old: str | None) -> None:
    """Point the branch at `new` if it still points at `old`: git's own protocol, in-process (a lock file
    created exclusively, the tip checked under it, then renamed over the ref), so recording one
    environment costs no git process."""
    path = Path(repo.common_dir) / REF
    lock = path.with_name(path.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(lock)
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError as e:
        raise _Moved(f"{lock} is held by another writer") from e
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            if _tip(repo) != old:
                raise _Moved(f"{BRANCH} moved")
            handle.write(new + "\n")
        os.replace(lock, path)
    finally:
        lock.unlink(missing_ok=True)


def _clear_stale(lock: Path) -> None:
    try:
        if time.time() - lock.stat().st_mtime > STALE_LOCK_S:
            lock.unlink(missing_ok=True)
    except FileNotFoundError:
        pass


def _refuse_checked_out(repo: Any) -> None:
    head = repo.head  # read from .git/HEAD in-process
    if not head.is_detached and head.reference.path == REF:
        raise GitError(f"the branch {BRANCH} is checked out; switch to another branch so it can be written")


def _tip(repo: Any, ref: str = REF) -> str | None:
    import git

    try:
        return str(git.SymbolicReference.dereference_recursive(repo, ref))
    except (ValueError, OSError):  # no such branch yet
        return None


def _read_tip(repo: Any) -> str | None:
    """The tip the activity is read from: the local branch, else a remote-tracking one (a fresh clone has
    only `origin/reconciler/activity`)."""
    return _tip(repo) or _remote_tip(repo)


def _remote_tip(repo: Any) -> str | None:
    """The tip of `refs/remotes/*/reconciler/activity`, origin's first; refs loose or packed, read in-process."""
    import git

    try:
        paths = [ref.path for ref in git.RemoteReference.iter_items(repo)]
    except (ValueError, OSError):
        return None
    prefix, suffix = "refs/remotes/", f"/{BRANCH}"
    names = sorted((p[len(prefix):-len(suffix)] for p in paths if p.startswith(prefix) and p.endswith(suffix)),
                   key=lambda name: (name != "origin", name))
    return next((tip for name in names if (tip := _tip(repo, f"{prefix}{name}{suffix}"))), None)


def _chain(repo: Any, old: str | None, entries: Sequence[Entry]) -> list[str]:
    """Objects only, all written in-process (GitPython's object database): per entry a blob for
    `<env>.log`, a tree beside the other environments' files, and a commit on the one before."""
    files = _tree_entries(repo, old)
    texts: dict[str, str] = {}
    parent = repo.commit(old) if old else None
    committer = _committer(repo)
    shas: list[str] = []
    for entry in entries:
        name = f"{file_stem(entry.environment)}.log"
        if name not in texts:
            texts[name] = _blob_text(repo, files.get(name))
        texts[name] += log_line(entry)
        files[name] = ("100644", _store(repo, b"blob", texts[name].encode()))
        message = compose_message(environment=entry.environment, revision=entry.revision, outcome=entry.outcome,
                                  actor=entry.actor, ticket=entry.ticket, subject=entry.subject, body=entry.body)
        parent = _commit_files(repo, files, message, parent, author=_author(entry.actor),
                               author_date=_date_from_env("GIT_AUTHOR_DATE"), committer=committer)
        shas.append(parent.hexsha)
    return shas


def _commit_files(repo: Any, files: dict[str, tuple[str, bytes]], message: str, parent: Any, *, author: Any,
                  author_date: Any, committer: Any) -> Any:
    """A commit of a tree holding `files` (top-level entries), on `parent` (None: a root commit)."""
    import git

    listing = b"".join(f"{mode} {path}".encode() + b"\0" + sha for path, (mode, sha) in sorted(files.items()))
    tree = git.Tree(repo, _store(repo, b"tree", listing))
    return git.Commit.create_from_tree(
        repo, tree, message, parent_commits=[parent] if parent else [], head=False, author=author,
        committer=committer, author_date=author_date, commit_date=_date_from_env("GIT_COMMITTER_DATE"),
    )


def _store(repo: Any, kind: bytes, data: bytes) -> bytes:
    from gitdb import IStream  # type: ignore[import-untyped]

    return bytes(repo.odb.store(IStream(kind, len(data), io.BytesIO(data))).binsha)


def _tree_entries(repo: Any, commit: str | None) -> dict[str, tuple[str, bytes]]:
    """Top-level entries of the commit's tree: name → (mode, binary sha)."""
    if not commit:
        return {}
    tree = repo.commit(commit).tree
    return {item.name: (f"{item.mode:o}", bytes(item.binsha)) for item in tree}


def _blob_text(repo: Any, entry: tuple[str, bytes] | None) -> str:
    if not entry:
        return ""
    text = bytes(repo.odb.stream(entry[1]).read()).decode("utf-8", errors="replace")
    return text if not text or text.endswith("\n") else text + "\n"


def _author(actor_text: str) -> Any:
    """The actor is the commit's author (dates follow GIT_AUTHOR_DATE when set, as git's do)."""
    import git

    match = _IDENT.match(actor_text)
    name, email = (match["name"], match["email"]) if match else (actor_text, "")
    return git.Actor(name or "unknown", email)


def _date_from_env(name: str) -> Any:
    """The date git would take from `name` (ISO 8601 with a `+00:00` offset included), else now."""
    from datetime import UTC

    text = os.environ.get(name, "").strip()
    if not text:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text  # git's other forms ("<unix> +0000", RFC 2822): GitPython parses those
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _committer(repo: Any) -> Any:
    """git's identity (environment, then config), or `reconciler` when git has none."""
    import git

    if os.environ.get("GIT_COMMITTER_NAME") or _has_config_identity(repo):
        return None  # GitPython reads it from the environment and the config, like git
    return git.Actor(*_FALLBACK_COMMITTER)


def _has_config_identity(repo: Any) -> bool:
    try:
        reader = repo.config_reader()
        return bool(reader.get_value("user", "name", default="") and reader.get_value("user", "email", default=""))
    except Exception:
        return False


def read_records(root: Path, *, environment: str | None = None, since: datetime | None = None) -> list[ActivityRecord]:
    """The activity branch's records, oldest first (the local branch, else a remote-tracking one); [] when
    there is no branch or no repository."""
    import git

    repo = open_repo(root)
    tip = None if repo is None else _read_tip(repo)
    if repo is None or tip is None:
        return []
    args = ["--format=" + _SEP + "%H%x00%aI%x00%B", tip]
    if since is not None:
        args.insert(0, f"--since={since.isoformat()}")
    try:
        out = str(repo.git.log(*args, "--reverse"))
    except git.GitCommandError as e:
        raise GitError(f"cannot read the branch {BRANCH}: {one_line(e)}") from e
    found: list[ActivityRecord] = []
    for chunk in _chunks(out):
        item = parse_record(*chunk)
        if item is None or (environment and item.environment != environment):
            continue
        if since is not None and item.at < since:
            continue
        found.append(item)
    return found


def _chunks(out: str) -> Iterator[tuple[str, str, str]]:
    for chunk in out.split(_SEP):
        parts = chunk.split("\x00", 2)
        if len(parts) == 3:
            yield parts[0].strip(), parts[1].strip(), parts[2]


# --- pushing the activity branch -------------------------------------------------------------
# Two runs that record and push one after the other: the second's push is refused (not a fast-forward).
# Its records are then replayed on the remote's tip, as commits with the same message, author and
# author date, each tree the remote's with the record's `<env>.log` line appended; a line whose record
# id the remote already holds is not written twice. The push is never forced.

NETWORK_TIMEOUT_S = 120


@dataclass(frozen=True)
class Replayed:
    """This run's records re-created on another tip: the new tip, and how many were written or skipped."""

    tip: str
    written: int
    skipped: int


def local_activity_tip(repo: Any) -> str | None:
    """The local branch's tip (None: there is no local branch)."""
    return _tip(repo)


def remote_activity_tip(repo: Any, remote: str) -> str | None:
    """The remote's tip of the branch (None: it has none); a GitError naming the remote when it cannot
    be reached."""
    out = _network(repo, remote, "ls-remote", remote, REF).stdout.decode()
    return next((line.split()[0] for line in out.splitlines() if line.endswith(f"\t{REF}")), None)


def fetch_activity(repo: Any, remote: str) -> str:
    """Fetch the remote's branch (into FETCH_HEAD; a named remote's tracking branch moves along, as git
    does); the tip fetched."""
    _network(repo, remote, "fetch", "--quiet", "--no-tags", remote, REF)
    tip = (_git(_top(repo), "rev-parse", "--verify", "-q", "FETCH_HEAD^{commit}") or b"").decode().strip()
    if not tip:
        raise GitError(f"cannot fetch {BRANCH} from the remote {remote!r}")
    return tip


def commits_between(repo: Any, base: str | None, tip: str) -> int:
    """How many commits `tip`'s history holds that `base`'s does not (all of them without a base)."""
    out = _git(_top(repo), "rev-list", "--count", tip, *([f"^{base}"] if base else []))
    return int((out or b"0").strip() or 0)


def commits_since(repo: Any, base: str) -> set[str] | None:
    """The commits HEAD's history holds that `base`'s does not (`base` may be `<sha>-dirty`), in ONE git
    process; None when git cannot say (an unknown or missing commit, a shallow clone)."""
    out = _git(_top(repo), "rev-list", "HEAD", f"^{base.removesuffix(DIRTY)}", "--")
    return None if out is None else set(out.decode().split())


def holds(repo: Any, ancestor: str, descendant: str) -> bool:
    """Whether `descendant`'s history holds `ancestor`."""
    return _git(_top(repo), "merge-base", "--is-ancestor", ancestor, descendant) is not None


def _top(repo: Any) -> Path:
    return Path(repo.working_tree_dir or repo.git_dir)


def replay_activity(repo: Any, local: str, onto: str) -> Replayed:
    """Re-create the commits of `local` that `onto` lacks, oldest first, on `onto`; the branch is not moved."""
    import git

    shas = repo.git.rev_list("--reverse", "--topo-order", "--no-merges", local, f"^{onto}").split()
    files = _tree_entries(repo, onto)
    texts: dict[str, str] = {}
    parent = repo.commit(onto)
    committer = _committer(repo)
    written = skipped = 0
    for sha in shas:
        commit = repo.commit(sha)
        added = _added_lines(repo, commit)
        for name in added.keys() - texts.keys():
            texts[name] = _blob_text(repo, files.get(name))
        new = {name: [line for line in lines if not _written(texts[name], line)] for name, lines in added.items()}
        if added and not any(new.values()):
            skipped += 1  # the remote holds this record already
            continue
        for name, lines in new.items():
            texts[name] += "".join(lines)
            files[name] = ("100644", _store(repo, b"blob", texts[name].encode()))
        author = git.Actor(commit.author.name, commit.author.email)
        parent = _commit_files(repo, files, commit.message, parent, author=author,
                               author_date=commit.authored_datetime, committer=committer)
        written += 1
    return Replayed(parent.hexsha, written, skipped)


def _added_lines(repo: Any, commit: Any) -> dict[str, list[str]]:
    """The lines a commit appended to each `<env>.log` (its record), against its first parent."""
    parent = commit.parents[0].hexsha if commit.parents else None
    before, after = _tree_entries(repo, parent), _tree_entries(repo, commit.hexsha)
    added: dict[str, list[str]] = {}
    for name, entry in after.items():
        if not name.endswith(".log") or before.get(name) == entry:
            continue
        old, new = _blob_text(repo, before.get(name)), _blob_text(repo, entry)
        if new.startswith(old):
            added[name] = new[len(old):].splitlines(keepends=True)
        else:  # not an append (edited by hand): the lines the parent lacks
            had = set(old.splitlines(keepends=True))
            added[name] = [line for line in new.splitlines(keepends=True) if line not in had]
    return added


def _written(text: str, line: str) -> bool:
    """Whether `text` (an `<env>.log`) holds `line`'s record: its id (7th column), or, without one, the line."""
    fields = line.rstrip("\n").split("\t")
    if len(fields) < 7:
        return line in text.splitlines(keepends=True)
    return any(row.split("\t")[6:7] == [fields[6]] for row in text.splitlines())


def move_activity(repo: Any, new: str, old: str) -> bool:
    """Point the local branch at `new` if it still points at `old`; False when another writer moved it."""
    _refuse_checked_out(repo)
    try:
        _move_branch(repo, new, old)
    except _Moved:
        return False
    return True


def push_activity(repo: Any, remote: str, sha: str) -> bool:
    """Push `sha` to the remote's branch, as a fast-forward only; False when the remote refused it because
    it moved meanwhile (another run pushed), a GitError for anything else."""
    done = _network(repo, remote, "push", "--porcelain", remote, f"{sha}:{REF}", check=False)
    if done.returncode == 0:
        return True
    # --porcelain: one `<flag>\t<from>:<to>\t<summary>` row per ref; `!` a refusal, `[rejected]` ours to retry
    refused = [row for row in done.stdout.decode(errors="replace").splitlines() if row.startswith("!\t")]
    if any("\t[rejected]" in row for row in refused):
        return False
    why = refused[0].split("\t")[-1] if refused else _reason(done.stderr)
    raise GitError(f"the remote {remote!r} refused the push of {BRANCH}: {why}")


def _network(repo: Any, remote: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """`git ARGS` that talks to the remote: never prompts, bounded in time; a GitError naming the remote
    when it cannot be reached."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(["git", *args], cwd=_top(repo), capture_output=True, stdin=subprocess.DEVNULL,
                              env=env, timeout=NETWORK_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as e:
        raise GitError(f"cannot reach the remote {remote!r}: no answer in {NETWORK_TIMEOUT_S} s") from e
    except OSError as e:
        raise GitError(f"cannot run git to reach the remote {remote!r}: {one_line(e)}") from e
    if done.returncode != 0 and (check or not done.stdout.strip()):
        raise GitError(f"cannot reach the remote {remote!r}: {_reason(done.stderr)}")
    return done


def _reason(stderr: bytes) -> str:
    """git's own reason: its first `fatal:` or `error:` line, without the prefix."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal:", "error:"):
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()
    return lines[-1] if lines else "git failed"


def has_applied(repo: Any, environment: str) -> bool:
    """Whether the branch (the local one, else a remote-tracking one) holds an apply of `environment` that
    reached live (its `<env>.log` says so)."""
    return any(line.split("\t")[1:2] == ["applied"] for line in _env_log(repo, environment))


def record_ids(repo: Any, environment: str) -> set[str]:
    """The ids of the records of `environment` the branch holds (the 7th column of its `<env>.log`)."""
    return {fields[6] for line in _env_log(repo, environment) if len(fields := line.split("\t")) > 6}


def _env_log(repo: Any, environment: str) -> list[str]:
    tip = _read_tip(repo)
    text = _blob_text(repo, _tree_entries(repo, tip).get(f"{file_stem(environment)}.log")) if tip else ""
    return text.splitlines()


def commit_of(root: Path, rev: str) -> str | None:
    """The full sha of the commit `rev` names (a branch, tag or sha); None when git cannot say."""
    out = _git(root, "rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}", timeout=10)
    return (out or b"").decode().strip() or None


def has_revision(root: Path, rev: str) -> bool | None:
    """Whether HEAD's history holds `rev` (a `-dirty` one: the commit it was made on); None when git
    cannot say (no HEAD, or a shallow clone that lacks the commit)."""
    if _git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}", timeout=10) is None:
        return None
    commit = rev.removesuffix(DIRTY)
    if _git(root, "cat-file", "-e", f"{commit}^{{commit}}", timeout=10) is None:
        return None if is_shallow(root) else False
    return _git(root, "merge-base", "--is-ancestor", commit, "HEAD", timeout=10) is not None


def current_branch(root: Path) -> str | None:
    """The branch checked out at the root; None when detached or not a repository."""
    out = (_git(root, "symbolic-ref", "--quiet", "--short", "HEAD", timeout=10) or b"").decode().strip()
    return out or None
