"""EDGE: `reconciler log` — the history of `environments/` as setting changes, with the activity branch.

git (one `git log --raw` and one `git cat-file --batch`, through `reconciler.git`) gives
every revision's changed files; each changed blob is parsed once with the strict loader,
merged over `_base/` as `load_repository` does, flattened and diffed by `core.history`
against the environment's last readable state. A revision whose YAML does not parse is shown
as unreadable and skipped. The records of the `reconciler/activity` branch are interleaved
by time; everything is printed newest first, like `git log`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import click

from reconciler.cli.options import emit, format_option, resolve_root, root_option
from reconciler.core.history import SettingChange, diff_flat, flatten_kind, names_setting, touches
from reconciler.errors import GitError, UsageError
from reconciler.model import BASE_FOLDER, FILE_KINDS, Kind

_CHANGE_LINE_PATH = re.compile(r"^[+~!-]\s+([^\s:]+)")


@click.command(
    epilog="Example: reconciler log production --setting schedule.realtime --since 2026-11-01",
    short_help="The activity log from git: what changed, who, why.",
)
@click.argument("env", required=False, metavar="[ENV]")
@click.option("--setting", metavar="PATH", default=None,
              help="Follow one setting across history, e.g. schedule.realtime or merges.sections.terms.")
@click.option("--since", metavar="T", default=None, help="Only entries at or after this ISO 8601 time (UTC without "
              "an offset).")
@format_option("text", "json")
@root_option
def command(env: str | None, setting: str | None, since: str | None, fmt: str, root: str | None) -> int:
    """Show what changed in the settings of ENV (default: every environment), who changed it and why."""
    return run_log(resolve_root(root), env, setting=setting, since=since, fmt=fmt)


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


def run_log(root: Path, env: str | None, *, setting: str | None = None, since: str | None = None,
            fmt: str = "text") -> int:
    from reconciler import git

    moment = _since(since)
    repo = git.open_repo(root)
    if repo is None:
        raise GitError(f"{root} is not in a git repository; `reconciler log` reads the history of environments/ "
                       "from git")
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
    entries = [e for _, e in sorted(enumerate(chosen), key=lambda p: (p[1].at, p[0]), reverse=True)]
    if fmt == "json":
        emit(json.dumps([e.data for e in entries], indent=2, ensure_ascii=False, default=str))
    else:
        emit("\n".join(_text(e, brief=setting is None) for e in entries) if entries else "no entries")
    return 0


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    from reconciler.cli.options import instant

    return instant("--since", text, "UTC")


def _folders(root: Path) -> set[str]:
    env_root = root / "environments"
    return {p.name for p in env_root.iterdir() if p.is_dir() and p.name != BASE_FOLDER} if env_root.is_dir() else set()


def _check_env(env: str, known: set[str]) -> None:
    from reconciler.repo import check_env_name

    check_env_name(env)
    if env not in known:
        have = ", ".join(sorted(known)) or "none"
        raise UsageError(f"no environment {env!r} in environments/ or its history (have: {have})")


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


# --- rendering ---------------------------------------------------------------------------------


SUMMARY_OVER = 12


def _text(entry: Entry, brief: bool = True) -> str:
    at = entry.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    tags = ", ".join(t for t in (entry.outcome, entry.ticket) if t)
    head = f"{at}  {entry.kind} {entry.sha[:12]}  {entry.environment}  by {entry.who}"
    lines = [head + (f"  [{tags}]" if tags else ""), f"    {entry.message}"]
    if entry.unreadable:
        lines.append(f"    {entry.unreadable}")
    if brief and len(entry.changes) > SUMMARY_OVER and all(c.before is None for c in entry.changes):
        # an environment's first revision declares everything; one line says so
        lines.append(f"    + {len(entry.changes)} settings declared (see --setting PATH or --format json)")
    else:
        lines += [f"    {change_text(c)}" for c in entry.changes]
    shown = entry.details[:SUMMARY_OVER] if brief else entry.details
    lines += [f"    {line}" for line in shown]
    if len(shown) < len(entry.details):
        lines.append(f"    … and {len(entry.details) - len(shown)} more (see --format json)")
    return "\n".join(lines) + "\n"


def change_text(change: SettingChange) -> str:
    if change.is_set and change.before is not None and change.after is not None:
        moved = [f"+{v}" for v in change.added] + [f"-{v}" for v in change.removed]
        return f"~ {change.path}: {' '.join(moved)}"
    if change.before is None:
        return f"+ {change.path}: {_show(change.after)}"
    if change.after is None:
        return f"- {change.path} (was {_show(change.before)})"
    return f"~ {change.path}: {_show(change.before)} → {_show(change.after)}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence | Mapping):
        return json.dumps(value, ensure_ascii=False, default=str)
    return json.dumps(value, default=str)
