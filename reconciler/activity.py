"""EDGE: the git side of the activity log — the `reconciler/activity` branch, and who is acting.

Every apply, pause, resume, import and execute merge appends one commit to the branch
`reconciler/activity` of the repository holding the root. Its objects (blob, tree,
commit) are written straight into the object database and the branch moves with one update-ref
(the old tip as a compare-and-swap), so the work tree, the index and the checked-out branch are
never touched, and a fleet's apply writes all its records with one git process. Its message carries the
trailers `Environment:`, `Revision:`, `Outcome:`, `Actor:` and `Ticket:` so that plain
`git log reconciler/activity` reads as the log; its tree keeps one `<env>.log` file per
environment, one line per record, so the branch also reads as files.
"""

from __future__ import annotations

import getpass
import logging
import os
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.errors import GitError

log = logging.getLogger(__name__)

BRANCH = "reconciler/activity"
REF = f"refs/heads/{BRANCH}"
NO_GIT_NOTE = "no git record was written (not a git repository)"
TRAILERS = ("Environment", "Revision", "Outcome", "Actor", "Ticket")
ATTEMPTS = 8
_FALLBACK_COMMITTER = ("reconciler", "reconciler@localhost")
_CI_ACTOR_VARS = ("RECONCILER_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "CIRCLE_USERNAME",
                  "BITBUCKET_STEP_TRIGGERER_UUID", "BUILD_REQUESTEDFOR", "USER")
_IDENT = re.compile(r"^(?P<name>.*?)\s*<(?P<email>[^<>]*)>\s*$")


@dataclass(frozen=True)
class Entry:
    """One record to write on the activity branch."""

    environment: str
    revision: str | None
    outcome: str
    actor: str
    ticket: str | None
    subject: str
    body: str
    record_id: str | None = None
    """The id a run kept the record under (`.reconciler/pending/`), so it is never written twice."""


@dataclass(frozen=True, kw_only=True)
class ActivityRecord(Entry):
    """One commit of the activity branch, read back: the record, with its commit and time."""

    sha: str
    at: datetime

    @property
    def data(self) -> dict[str, Any]:
        return {"sha": self.sha, "at": self.at.isoformat(), "environment": self.environment,
                "revision": self.revision, "outcome": self.outcome, "actor": self.actor, "ticket": self.ticket,
                "subject": self.subject, "body": self.body}


# --- who is acting ---------------------------------------------------------------------------


def actor(root: Path) -> str:
    """The CI actor in CI; else RECONCILER_ACTOR; else git's `user.name <user.email>`; else the login."""
    env = os.environ
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_ACTOR"):
        return env["GITHUB_ACTOR"]
    if _truthy(env.get("CI")):
        for name in _CI_ACTOR_VARS:
            if env.get(name):
                return env[name]
    if env.get("RECONCILER_ACTOR"):
        return env["RECONCILER_ACTOR"]
    ident = _git_identity(root)
    if ident:
        return ident
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}


def _git_identity(root: Path) -> str | None:
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


# --- the repository --------------------------------------------------------------------------


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


# --- writing ---------------------------------------------------------------------------------


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
    for attempt in range(ATTEMPTS):
        try:
            old = _tip(repo)
            shas = _chain(repo, old, entries)
            _move_branch(repo, shas[-1], old)
            return shas
        except (git.GitCommandError, _Moved) as e:  # most often a concurrent record moved the tip: build on it
            last = e
            time.sleep(random.uniform(0, 0.05 * (attempt + 1)))
    raise GitError(f"cannot record on the branch {BRANCH}: {one_line(last) if last else 'unknown failure'}")


class _Moved(Exception):
    """Another writer holds the branch's lock or moved its tip since it was read."""


STALE_LOCK_S = 5.0
"""A branch lock file older than this was left by a killed writer (a write takes milliseconds)."""


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


def compose_message(*, environment: str, revision: str | None, outcome: str, actor: str, ticket: str | None,
                    subject: str, body: str) -> str:
    """Subject, blank line, body, blank line, trailers (Ticket only when there is one)."""
    trailers = {"Environment": environment, "Revision": revision or "none", "Outcome": outcome, "Actor": actor}
    if ticket:
        trailers["Ticket"] = ticket
    parts = [_single(subject) or f"{outcome} {environment}"]
    if body.strip():
        parts.append(body.strip("\n"))
    parts.append("\n".join(f"{key}: {_single(value)}" for key, value in trailers.items()))
    return "\n\n".join(parts) + "\n"


def _single(text: str) -> str:
    return " ".join(str(text).split())


def _log_line(entry: Entry) -> str:
    """`<env>.log`'s line of a record: time, outcome, revision, actor, ticket, subject, and its id."""
    from datetime import UTC

    stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
    fields = [stamp, entry.outcome, (entry.revision or "none")[:12], entry.actor, entry.ticket or "-", entry.subject]
    return "\t".join([*(_single(f) for f in fields), *([entry.record_id] if entry.record_id else [])]) + "\n"


def _refuse_checked_out(repo: Any) -> None:
    head = repo.head  # read from .git/HEAD in-process
    if not head.is_detached and head.reference.path == REF:
        raise GitError(f"the branch {BRANCH} is checked out; switch to another branch so it can be written")


def _tip(repo: Any) -> str | None:
    import git

    try:
        return str(git.SymbolicReference.dereference_recursive(repo, REF))
    except (ValueError, OSError):  # no such branch yet
        return None


def _chain(repo: Any, old: str | None, entries: Sequence[Entry]) -> list[str]:
    """Objects only, all written in-process (GitPython's object database): per entry a blob for
    `<env>.log`, a tree beside the other environments' files, and a commit on the one before."""
    import git

    files = _tree_entries(repo, old)
    texts: dict[str, str] = {}
    parent = repo.commit(old) if old else None
    committer = _committer(repo)
    shas: list[str] = []
    for entry in entries:
        name = f"{_file_stem(entry.environment)}.log"
        if name not in texts:
            texts[name] = _blob_text(repo, files.get(name))
        texts[name] += _log_line(entry)
        files[name] = ("100644", _store(repo, b"blob", texts[name].encode()))
        listing = b"".join(f"{mode} {path}".encode() + b"\0" + sha for path, (mode, sha) in sorted(files.items()))
        tree = git.Tree(repo, _store(repo, b"tree", listing))
        message = compose_message(environment=entry.environment, revision=entry.revision, outcome=entry.outcome,
                                  actor=entry.actor, ticket=entry.ticket, subject=entry.subject, body=entry.body)
        parent = git.Commit.create_from_tree(
            repo, tree, message, parent_commits=[parent] if parent else [], head=False,
            author=_author(entry.actor), committer=committer,
            author_date=_date_from_env("GIT_AUTHOR_DATE"), commit_date=_date_from_env("GIT_COMMITTER_DATE"),
        )
        shas.append(parent.hexsha)
    return shas


def _store(repo: Any, kind: bytes, data: bytes) -> bytes:
    from io import BytesIO

    from gitdb import IStream  # type: ignore[import-untyped]

    return bytes(repo.odb.store(IStream(kind, len(data), BytesIO(data))).binsha)


def _file_stem(environment: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", environment) or "_"


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


# --- reading ---------------------------------------------------------------------------------

_SEP = "\x1e"


def read_records(root: Path, *, environment: str | None = None, since: datetime | None = None) -> list[ActivityRecord]:
    """The activity branch's records, oldest first; [] when there is no branch or no repository."""
    import git

    repo = open_repo(root)
    if repo is None or _tip(repo) is None:
        return []
    args = ["--format=" + _SEP + "%H%x00%aI%x00%B", REF]
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


def parse_record(sha: str, at: str, message: str) -> ActivityRecord | None:
    """One commit message back into a record; None when it carries no Environment trailer."""
    paragraphs = message.strip("\n").split("\n\n")
    trailers: dict[str, str] = {}
    if len(paragraphs) > 1 or ":" in paragraphs[-1]:
        for row in paragraphs[-1].splitlines():
            key, sep, value = row.partition(":")
            if sep and key.strip() in TRAILERS:
                trailers[key.strip()] = value.strip()
    if "Environment" not in trailers:
        return None
    subject = paragraphs[0].splitlines()[0] if paragraphs and paragraphs[0] else ""
    body = "\n\n".join(paragraphs[1:-1]) if len(paragraphs) > 2 else ""
    revision = trailers.get("Revision")
    return ActivityRecord(
        sha=sha, at=datetime.fromisoformat(at), environment=trailers["Environment"],
        revision=None if revision in (None, "none") else revision, outcome=trailers.get("Outcome", ""),
        actor=trailers.get("Actor", ""), ticket=trailers.get("Ticket"), subject=subject, body=body,
    )


def has_applied(repo: Any, environment: str) -> bool:
    """Whether the branch holds an apply of `environment` that reached live (its `<env>.log` says so)."""
    return any(line.split("\t")[1:2] == ["applied"] for line in _env_log(repo, environment))


def record_ids(repo: Any, environment: str) -> set[str]:
    """The ids of the records of `environment` the branch holds (the 7th column of its `<env>.log`)."""
    return {fields[6] for line in _env_log(repo, environment) if len(fields := line.split("\t")) > 6}


def _env_log(repo: Any, environment: str) -> list[str]:
    tip = _tip(repo)
    text = _blob_text(repo, _tree_entries(repo, tip).get(f"{_file_stem(environment)}.log")) if tip else ""
    return text.splitlines()
