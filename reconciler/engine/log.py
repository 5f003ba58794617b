"""The log use case: the history of `environments/` as setting changes, with the activity branch.

git (one `git log --raw` and one `git cat-file --batch`, through `reconciler.git`) gives
every revision's changed files; each changed blob is parsed once with the strict loader,
merged over `_base/` as `load_repository` does, flattened and diffed by `core.history`
against the environment's last readable state. A revision whose YAML does not parse is shown
as unreadable and skipped. The records of the `reconciler/activity` branch are interleaved
by time; everything is printed newest first, like `git log`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from reconciler.core.history import SettingChange, diff_flat, flatten_kind, names_setting, touches
from reconciler.errors import GitError, UsageError
from reconciler.model import BASE_FOLDER, FILE_KINDS, Kind

if TYPE_CHECKING:
    from reconciler.engine import Engine

_CHANGE_LINE_PATH = re.compile(r"^[+~!-]\s+([^\s:]+)")


@dataclass(frozen=True)
class Entry:
    """One line of the log: a commit's changes to one environment, or one activity record."""

    kind: str
    sha: str
    at: datetime
    who: str
    environment: str
    message: str
    changes: tuple[SettingChange, ...] = ()
    details: tuple[str, ...] = ()
    outcome: str | None = None
    ticket: str | None = None
    unreadable: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "sha": self.sha, "at": self.at.isoformat(),
                               "author" if self.kind == "commit" else "actor": self.who,
                               "environment": self.environment, "message": self.message,
                               "changes": [c.data for c in self.changes]}
        if self.kind == "activity":
            out.update(outcome=self.outcome, ticket=self.ticket, details=list(self.details))
        if self.unreadable:
            out["unreadable"] = self.unreadable
        return out


def log(engine: Engine, env: str | None, *, setting: str | None = None, since: str | None = None) -> list[Entry]:
    """The entries of the activity log, newest first: setting changes from the history of environments/
    and the records of the activity branch, for ENV and --setting if given."""
    from reconciler import git

    root = engine.root
    moment = _since(engine, env, since)
    repo = git.open_repo(root)
    if repo is None:
        raise GitError(f"{root} is not in a git repository; `reconciler log` reads the history of environments/ "
                       "from git")
    git.refuse_shallow(root, "log cannot tell what changed")
    history = _History(root, repo)
    history.run()
    if env is not None:
        _check_env(env, history.environments | _folders(root))
    if setting is not None and not names_setting(setting, history.known_paths()):
        raise UsageError(f"--setting {setting}: names no setting in any revision of environments/ (e.g. "
                         "schedule.realtime, merges.sections.terms, phases.<name>, access.users.<email>, version)")
    records = git.read_records(root, environment=env, since=moment)
    # oldest → newest, commits before the records of the same second (an apply follows its commit)
    chosen = _select([*history.entries, *(_activity_entry(r) for r in records)], env, setting, moment)
    return [e for _, e in sorted(enumerate(chosen), key=lambda p: (p[1].at, p[0]), reverse=True)]


def commit_entries(root: Path, repo: Any) -> list[Entry]:
    """Every commit's setting changes to each environment, oldest first (the walk `log` makes)."""
    history = _History(root, repo)
    history.run()
    return history.entries


def _since(engine: Engine, env: str | None, text: str | None) -> datetime | None:
    """`--since T` like every other time option: without an offset, in the environment's zone (the fleet's,
    refused with the zones named when they differ)."""
    if text is None:
        return None
    from reconciler.engine.selection import fleet_instant

    repo = engine.repository()
    envs = repo.envs if repo is not None else {}
    specs = [envs[env]] if env is not None and env in envs else list(envs.values())
    return fleet_instant("--since", text, specs)


def _folders(root: Path) -> set[str]:
    env_root = root / "environments"
    return {p.name for p in env_root.iterdir() if p.is_dir() and p.name != BASE_FOLDER} if env_root.is_dir() else set()


def _check_env(env: str, known: set[str]) -> None:
    from reconciler.repo import check_env_name, did_you_mean

    check_env_name(env)
    if env not in known:
        raise UsageError(f"no environment {env!r} in environments/ or its history ({did_you_mean(env, sorted(known))})")


def _select(entries: Iterable[Entry], env: str | None, setting: str | None, since: datetime | None) -> list[Entry]:
    out: list[Entry] = []
    for entry in entries:
        if (env and entry.environment != env) or (since and entry.at < since):
            continue
        kept = _only_setting(entry, setting) if setting is not None else entry
        if kept is not None:
            out.append(kept)
    return out


def _only_setting(entry: Entry, setting: str) -> Entry | None:
    if entry.kind == "activity":
        def hit(line: str) -> bool | None:  # None: not a change line (a note saying why: kept)
            m = _CHANGE_LINE_PATH.match(line)
            return touches(SettingChange(entry.environment, m[1], None, None), setting) if m else None

        if not any(hit(line) for line in entry.details):
            return None
        return replace(entry, details=tuple(line for line in entry.details if hit(line) is not False))
    kept = tuple(c for c in entry.changes if touches(c, setting))
    if not kept:
        return None
    return replace(entry, changes=kept)


def _activity_entry(record: Any) -> Entry:
    details = tuple(line for line in record.body.splitlines() if line.strip())
    return Entry("activity", record.sha, record.at, record.actor, record.environment, record.subject,
                 details=details, outcome=record.outcome, ticket=record.ticket)


# --- reading the revisions ---------------------------------------------------------------------


@dataclass
class _History:
    """Walks the revisions oldest → newest, keeping each environment's last readable settings."""

    root: Path
    repo: Any
    entries: list[Entry] = field(default_factory=list)
    environments: set[str] = field(default_factory=set)
    state: dict[str, dict[str, str]] = field(default_factory=dict)
    """folder → file name → blob sha, at the current revision."""
    last: dict[str, dict[str, Any]] = field(default_factory=dict)
    """environment → its flat settings at its last readable revision."""
    _seen: set[str] = field(default_factory=set)
    _parsed: dict[tuple[str, Kind], Any] = field(default_factory=dict)
    _flat: dict[tuple[Kind, str | None, str | None], dict[str, Any] | str] = field(default_factory=dict)
    _blobs: dict[str, bytes] = field(default_factory=dict)

    def run(self) -> None:
        from reconciler import git

        prefix = _prefix(self.root, self.repo)
        revisions = git.folder_history(self.repo, prefix)
        wanted = [f.blob for rev in revisions for f in rev.files if f.blob and _place(prefix, f.path)]
        self._blobs = git.read_blobs(self.repo, wanted)
        for rev in revisions:
            self._step(prefix, rev)

    def _step(self, prefix: str, rev: Any) -> None:
        touched: set[str] = set()
        for change in rev.files:
            place = _place(prefix, change.path)
            if place is None:
                continue
            folder, name = place
            files = self.state.setdefault(folder, {})
            if change.blob:
                files[name] = change.blob
            else:
                files.pop(name, None)
            touched.add(folder)
        envs = {f for f in self.state if f != BASE_FOLDER} if BASE_FOLDER in touched else touched - {BASE_FOLDER}
        for env in sorted(envs):
            self._diff(env, rev)

    def _diff(self, env: str, rev: Any) -> None:
        flat, problem = self._settings(env)
        who = rev.author
        if problem is not None:
            self.entries.append(Entry("commit", rev.sha, rev.at, who, env, rev.subject,
                                      unreadable=f"unreadable at {rev.sha[:12]}: {problem}"))
            return
        if self.state.get(env):
            self.environments.add(env)
        self._seen.update(flat)
        changes = diff_flat(env, self.last.get(env, {}), flat)
        self.last[env] = flat
        if changes:
            self.entries.append(Entry("commit", rev.sha, rev.at, who, env, rev.subject, tuple(changes)))

    def _settings(self, env: str) -> tuple[dict[str, Any], str | None]:
        base = self.state.get(BASE_FOLDER, {})
        own = self.state.get(env, {})
        flat: dict[str, Any] = {}
        if not own:  # the folder is gone: every setting it had is removed
            return flat, None
        for kind in Kind:
            name = kind.filename
            key = (kind, base.get(name), own.get(name))
            if key[1:] == (None, None):
                continue
            if key not in self._flat:
                self._flat[key] = self._build(kind, env, *key[1:])
            result = self._flat[key]
            if isinstance(result, str):
                return {}, result
            flat.update(result)
        return flat, None

    def _build(self, kind: Kind, env: str, base: str | None, own: str | None) -> dict[str, Any] | str:
        from reconciler.core import load
        from reconciler.model import Problem

        parsed_base = self._parse(kind, f"environments/{BASE_FOLDER}/{kind.filename}", base) if base else None
        parsed_own = self._parse(kind, f"environments/{env}/{kind.filename}", own) if own else None
        for parsed in (parsed_base, parsed_own):
            if isinstance(parsed, Problem):
                return f"{parsed.file}:{parsed.line}:{parsed.column}: {parsed.message}"
        merged = load.merge(parsed_base, parsed_own) if parsed_own else parsed_base
        return flatten_kind(kind.value, merged.data if merged is not None else None)

    def _parse(self, kind: Kind, rel: str, blob: str) -> Any:
        from reconciler.core import load

        key = (blob, kind)
        if key not in self._parsed:
            raw = self._blobs.get(blob, b"")
            parsed = load.parse_file(raw, rel)
            if not isinstance(parsed, load.Problem):
                parsed = load.check_header(parsed, rel, kind) or parsed
            self._parsed[key] = parsed
        return self._parsed[key]

    def known_paths(self) -> set[str]:
        known: set[str] = set()
        for path in self._seen:
            parts = path.split(".")
            known.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        return known


def _prefix(root: Path, repo: Any) -> str:
    top = Path(repo.working_tree_dir).resolve()
    try:
        rel = root.resolve().relative_to(top)
    except ValueError as e:
        raise GitError(f"{root} is not inside the git work tree {top}") from e
    return (PurePosixPath(rel.as_posix()) / "environments").as_posix().removeprefix("./")


def _place(prefix: str, path: str) -> tuple[str, str] | None:
    """(folder, file name) of an environment file under `prefix`, or None for anything else."""
    if not path.startswith(prefix + "/"):
        return None
    parts = path[len(prefix) + 1:].split("/")
    if len(parts) != 2 or parts[1] not in FILE_KINDS:
        return None
    return parts[0], parts[1]
