"""The drift use case: live changes made outside git since the last apply.

The baseline is what the last apply left behind: the effective desired state of the YAML at
the applied revision (read from git; the current YAML when the revision is unknown or the same)
at the time of that apply (`applied.at`), restricted to the parts the YAML manages. So a pull
request merged but not yet applied is not drift: it is what `plan` shows. Everything that moved
away from it in live (DeepDiff, list order ignored) is drift, fields the model does not know
included. Read-only parts (activity, applied, available_terms, update request statuses) are
left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.model import EnvironmentSpec

if TYPE_CHECKING:
    from reconciler.engine import Engine

FORMAT_VERSION = 1
IGNORED_PARTS = ("activity", "applied", "available_terms")
CLOSED_REQUESTS = ("Completed", "Cancelled", "Unable to Complete")


def drift(engine: Engine, envs: Sequence[str], *, parallel: int | None = None,
          shard: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """Each selected environment's drift: {"name", "applied", "drift": [{"path", "before", "after"}],
    "warnings"}, or {"name", "error", "drift": []} where live could not be read."""
    chosen = engine.select(envs, None, shard=shard)
    specs = chosen.specs
    lives, faults = engine.read_all(specs, parallel)
    readable = [spec for spec in specs if spec.name in lives]
    applied_specs = specs_at_applied_revisions(engine, readable, lives)
    return [environment_drift(applied_specs.get(spec.name, spec), lives[spec.name], current=spec, now=chosen.at)
            if spec.name in lives else {"name": spec.name, "error": str(faults[spec.name]), "drift": []}
            for spec in specs]


def specs_at_applied_revisions(
    engine: Engine, specs: Sequence[EnvironmentSpec], lives: Mapping[str, Mapping[str, Any]]
) -> dict[str, EnvironmentSpec]:
    """Each environment as its YAML stood at the revision of its last apply, where that revision is
    another one than HEAD and git has it; the others are left out (their current spec is the baseline)."""

    head = engine.revision()
    wanted: dict[str, list[str]] = {}
    for spec in specs:
        applied = lives[spec.name].get("applied")
        revision = applied.get("revision") if isinstance(applied, Mapping) else None
        if head and isinstance(revision, str) and revision and revision != head:
            wanted.setdefault(revision, []).append(spec.name)
    _refuse_shallow(engine, wanted, head)
    found: dict[str, EnvironmentSpec] = {}
    for revision, names in wanted.items():
        then = engine.repository(revision)
        found.update({name: then.envs[name] for name in names if then is not None and name in then.envs})
    return found


def _refuse_shallow(engine: Engine, revisions: Iterable[str], head: str | None) -> None:
    """A shallow clone may lack an applied revision other than HEAD's commit: its YAML would then be
    taken for the current one and a merged change reported as drift. Refused, with the way out."""
    from reconciler import git

    commit = (head or "").removesuffix(git.DIRTY)
    if any(revision.removesuffix(git.DIRTY) != commit for revision in revisions):
        git.refuse_shallow(engine.root, "drift cannot read the YAML live was applied from")


def environment_drift(spec: EnvironmentSpec, live: Mapping[str, Any], *,
                      current: EnvironmentSpec | None = None, now: datetime | None = None) -> dict[str, Any]:
    """{"name", "applied", "drift": [{"path", "before", "after"}], "warnings"} for one environment.

    `spec` is the YAML at the applied revision; `current`, when it is another, the YAML now: a live
    value that the YAML now also holds (a console edit adopted by `import` and merged) is not drift.
    `warnings` name what the live side cannot show (a read-only platform's unreadable kinds), which no
    drift is looked for in; read from the YAML now at `now` (default: the apply's time, else now)."""
    applied = live.get("applied")
    if not isinstance(applied, Mapping) or not applied.get("at"):
        return {"name": spec.name, "applied": None, "drift": [], "warnings": unmanaged(current or spec, now)}
    at = datetime.fromisoformat(str(applied["at"]))
    before = baseline(spec, live, at)
    moved = diff(before, comparable_live(live, before))
    if current is not None and current is not spec and moved:
        now_desired = baseline(current, live, at)
        still = {d["path"] for d in diff(now_desired, comparable_live(live, now_desired))}
        moved = [d for d in moved if d["path"] in still]
    return {"name": spec.name, "applied": dict(applied), "drift": moved,
            "warnings": unmanaged(current or spec, now or at)}


def unmanaged(spec: EnvironmentSpec, at: datetime | None) -> list[str]:
    """What `spec`'s live side cannot show (plan's "not readable from this platform" warning), or []."""
    from datetime import UTC

    from reconciler.core.desired import desired_state
    from reconciler.core.platform_map import readable_paths, restrict
    from reconciler.core.timeline import Timeline, effective

    if readable_paths(spec) is None:
        return []
    moment = at or datetime.now(UTC)
    return list(restrict(spec, effective(desired_state(spec), Timeline.windows_of(spec), moment).state)[1])


def baseline(spec: EnvironmentSpec, live: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """The effective desired state at `at`, without what the plan would have blocked."""
    from reconciler.core.apply import plan_one
    from reconciler.core.desired import desired_state
    from reconciler.core.platform_map import restrict
    from reconciler.core.timeline import Timeline, effective, thaw

    state = thaw(restrict(spec, effective(desired_state(spec), Timeline.windows_of(spec), at).state)[0])
    for blocked in plan_one(spec, live, at, None).blocked:
        target: Any = state
        for key in blocked.path.split("."):
            target = target.get(key) if isinstance(target, Mapping) else None
        if isinstance(target, list) and blocked.value in target:
            target.remove(blocked.value)
    return state


def comparable_live(live: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    """Live restricted to the parts of the baseline, without read-only fields."""
    out: dict[str, Any] = {}
    for part in before:
        if part in IGNORED_PARTS or part not in live:
            continue
        value = live[part]
        if part == "update_requests" and isinstance(value, Mapping):
            known = before.get(part) or {}
            value = {
                rid: {k: v for k, v in (item or {}).items() if k != "status"}
                for rid, item in value.items()
                if rid in known or (item or {}).get("status") not in CLOSED_REQUESTS
            }
        out[part] = value
    return out


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every leaf that moved from `before` to `after`, as dotted paths, sorted."""
    from deepdiff import DeepDiff

    found = DeepDiff(dict(before), dict(after), ignore_order=True, view="tree")
    out: list[dict[str, Any]] = []
    for report, levels in found.items():
        for level in levels:
            parts = level.path(output_format="list")
            old, new = _plain(level.t1), _plain(level.t2)
            if report.startswith("iterable_item") and parts and isinstance(parts[-1], int):
                parts = parts[:-1]
            out.append({"path": ".".join(str(p) for p in parts), "before": old, "after": new})
    out.sort(key=lambda d: (d["path"], json.dumps(d["before"], sort_keys=True, default=str),
                            json.dumps(d["after"], sort_keys=True, default=str)))
    return out


def _plain(value: Any) -> Any:
    """DeepDiff's NotPresent (and the like) becomes None."""
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return None
