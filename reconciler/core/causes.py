"""CORE: why each change of a plan is made (DESIGN §3 "Every change says why").

Flow: the engine gathers, per environment, when live was last applied and the commits to its YAML since
the applied revision (`Causes`, from git) → `core.apply.plan_one` → **explain**: a change no window
explains is credited to the commits that changed its setting; with none, it reverts a change made outside
git. Pure: the commits come in as values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from reconciler.core.history import SettingChange, touches
from reconciler.core.plan import Change, EnvPlan
from reconciler.core.windows import Window

OUTSIDE_GIT = "reverting a change made outside git"


@dataclass(frozen=True)
class CommitCause:
    """One commit of `environments/` since the applied revision, with the settings it changed."""

    sha: str
    subject: str
    author: str
    changes: tuple[SettingChange, ...]

    @property
    def label(self) -> str:
        name = self.author.split(" <", 1)[0]
        return f'commit {self.sha[:7]} "{self.subject}" by {name}'

    def explains(self, change: Change) -> bool:
        return any(_explains(setting, change) for setting in self.changes)


@dataclass(frozen=True)
class Causes:
    """What the engine knows of one environment's history: `since`, when live was last applied (None: never,
    or unknown); `commits`, oldest first, since the applied revision (None: git cannot say)."""

    since: datetime | None = None
    commits: tuple[CommitCause, ...] | None = None


def applied_at(live: Mapping[str, Any]) -> datetime | None:
    """When live says it was last applied (its `applied.at`), or None."""
    applied = live.get("applied")
    text = applied.get("at") if isinstance(applied, Mapping) else None
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def window_ticket(windows: Sequence[Window], env_plan: EnvPlan) -> str | None:
    """The tickets of the windows this plan's changes are made for (a window's apply carries them as its
    `Ticket:`), or None."""
    causes = {part for change in env_plan.changes if change.because for part in change.because.split("; ")}
    tickets = [w.ticket for w in windows if w.ticket and {w.label, f"{w.label} ended"} & causes]
    return ", ".join(dict.fromkeys(tickets)) or None


def explain(env_plan: EnvPlan, commits: Sequence[CommitCause] | None) -> EnvPlan:
    """Every change without a `because` credited to its commits, else to a change made outside git; as it
    is when git cannot say (`commits` None)."""
    if commits is None or all(c.because for c in env_plan.changes):
        return env_plan
    return replace(env_plan, changes=tuple(c if c.because else _credited(c, commits) for c in env_plan.changes))


def _credited(change: Change, commits: Sequence[CommitCause]) -> Change:
    labels = [commit.label for commit in commits if commit.explains(change)]
    return replace(change, because="; ".join(dict.fromkeys(labels)) or OUTSIDE_GIT)


_YAML_TO_LIVE = (("merge_settings.saved_states.", "merge_states."), ("merge_settings.", ""))
"""MergeSettings keys the history names under the kind, which live holds at the top (or as merge_states)."""


def _live_path(setting: SettingChange) -> SettingChange:
    for yaml, live in _YAML_TO_LIVE:
        if setting.path.startswith(yaml):
            return replace(setting, path=live + setting.path.removeprefix(yaml))
    return setting


def _explains(setting: SettingChange, change: Change) -> bool:
    setting = _live_path(setting)
    if not touches(setting, change.path):
        return False
    if setting.is_set and setting.path == change.path and change.value is not None:
        return change.value in (*setting.added, *setting.removed)  # a term scope: this term's commit
    return True
