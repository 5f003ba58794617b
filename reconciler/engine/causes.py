"""Why each change is made, gathered from git for the pure planner (DESIGN §3 "Every change says why").

Flow: plan and apply → **CauseReader.build_plan / plan_one** → `core.apply.plan_one(…, causes)`. Git is
asked only when a plan has a change no window explains, and then once per run: the history of
`environments/` (engine/log.py's walk: one `git log`, one `git cat-file`), the activity branch (only for an
environment whose live keeps no `applied` record), and one `git rev-list` per revision live was applied
from.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.core.causes import Causes, CommitCause, applied_at
from reconciler.errors import GitError
from reconciler.model import EnvironmentSpec

if TYPE_CHECKING:
    from reconciler.core.plan import EnvPlan, Plan
    from reconciler.engine.log import Entry


@dataclass
class CauseReader:
    """One run's reads of git, shared by its environments (and threads)."""

    root: Path
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _read: bool = False
    _repo: Any = None
    _entries: list[Entry] = field(default_factory=list)
    _records: dict[str, tuple[str | None, datetime]] | None = None
    _since: dict[str, set[str] | None] = field(default_factory=dict)

    def plan_one(self, spec: EnvironmentSpec, live: Mapping[str, Any], at: datetime,
                 revision: str | None) -> EnvPlan:
        """The environment's plan with every change's cause: planned once, and again with what git says
        only when a change is left that no window explains."""
        from reconciler.core.apply import plan_one

        env_plan = plan_one(spec, live, at, revision)
        if all(c.because for c in env_plan.changes):
            return env_plan
        with self._lock:
            causes = self._causes(spec.name, live)
        return plan_one(spec, live, at, revision, causes)

    def build_plan(self, specs: Sequence[EnvironmentSpec], lives: Mapping[str, Mapping[str, Any]], at: datetime,
                   revision: str | None, *, warnings: Mapping[str, Sequence[str]] | None = None) -> Plan:
        """`core.apply.build_plan` with every change's cause; git is read only for the environments that
        need it, and only those are planned twice."""
        from reconciler.core.apply import build_plan

        plan = build_plan(specs, lives, at, revision, warnings=warnings)
        unexplained = {env.name for env in plan.environments if not all(c.because for c in env.changes)}
        if not unexplained:
            return plan
        with self._lock:
            causes = {spec.name: self._causes(spec.name, lives.get(spec.name) or {}) for spec in specs
                      if spec.name in unexplained}
        again = build_plan([spec for spec in specs if spec.name in unexplained], lives, at, revision,
                           warnings=warnings, causes=causes)
        redone = {env.name: env for env in again.environments}
        return replace(plan, environments=tuple(redone.get(env.name, env) for env in plan.environments))

    def _causes(self, env: str, live: Mapping[str, Any]) -> Causes:
        self._open()
        if self._repo is None:
            return Causes(applied_at(live))
        revision, since = _applied(live)
        if revision is None and since is None:
            revision, since = self._recorded(env)
        shas = self._commits_since(revision) if revision else None
        if revision and shas is None:
            return Causes(since)  # the applied revision is not in this checkout: git cannot say
        commits = tuple(CommitCause(e.sha, e.message, e.who, e.changes) for e in self._entries
                        if e.environment == env and not e.unreadable and _after(e, shas, since))
        return Causes(since, commits)

    def _open(self) -> None:
        if self._read:
            return
        self._read = True
        from reconciler import git
        from reconciler.engine.log import commit_entries

        repo = git.open_repo(self.root)
        if repo is None or git.revision(self.root) is None:
            return
        try:
            self._entries = commit_entries(self.root, repo)
        except GitError:
            return
        self._repo = repo

    def _recorded(self, env: str) -> tuple[str | None, datetime | None]:
        if self._records is None:
            from reconciler import git

            self._records = {r.environment: (r.revision, r.at) for r in git.read_records(self.root)
                             if r.outcome == "applied"}
        revision, at = self._records.get(env, (None, None))
        return revision, at

    def _commits_since(self, revision: str) -> set[str] | None:
        if revision not in self._since:
            from reconciler import git

            self._since[revision] = git.commits_since(self._repo, revision)
        return self._since[revision]


def _after(entry: Entry, shas: set[str] | None, since: datetime | None) -> bool:
    """Made since the applied revision; by time when the apply named none (made outside git); every commit
    when nothing was applied."""
    if shas is not None:
        return entry.sha in shas
    return since is None or entry.at > since


def _applied(live: Mapping[str, Any]) -> tuple[str | None, datetime | None]:
    applied = live.get("applied")
    revision = applied.get("revision") if isinstance(applied, Mapping) else None
    return (revision if isinstance(revision, str) and revision else None), applied_at(live)
