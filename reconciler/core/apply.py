"""The apply driver's pure part: build a plan at an instant, check it is safe, read a saved one.

Flow: specs + live reads → **build_plan** (effective desired state at `at`) → **safety_problems**
→ a connector applies. No I/O here: live documents and the instant are arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from reconciler.core.causes import Causes, applied_at, explain
from reconciler.core.clock import required, yaml_instant
from reconciler.core.desired import desired_state, managed_parts
from reconciler.core.plan import (
    FORMAT_VERSION,
    Action,
    Blocked,
    Change,
    EnvPlan,
    Plan,
    digest,
    live_item_count,
    live_reads_empty,
    only_schedules,
    plan_environment,
    removals_exceed,
)
from reconciler.core.timeline import Phase, Timeline, effective
from reconciler.errors import ConfigError, PlanError, TimeInputError
from reconciler.model import EnvironmentSpec

SAVED_KEYS = ("plan_id", "checksum")


# --- a failed apply ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyOutcome:
    """How far one environment's apply got when it failed (DESIGN §3 Safety).

    `rolled_back` are changes before the failed one that were made and then undone (a transactional
    connector keeps none of a failed apply). `failed` is None when the connector did not say which
    change failed; then how many were applied is unknown (`known` False), and every change is listed
    as not attempted."""

    applied: tuple[Change, ...]
    failed: Change | None
    not_attempted: tuple[Change, ...]
    reason: str
    known: bool = True
    rolled_back: tuple[Change, ...] = ()

    def record(self) -> dict[str, Any]:
        """The three lists for the activity log."""
        return {
            "outcome": "failed",
            "error": self.reason,
            "applied": [c.data for c in self.applied],
            "failed": [self.failed.data] if self.failed is not None else [],
            "not_attempted": [c.data for c in self.not_attempted],
            **({"rolled_back": [c.data for c in self.rolled_back]} if self.rolled_back else {}),
            **({} if self.known else {"progress_unknown": True}),
        }


def failure_outcome(changes: Sequence[Change], error: BaseException) -> ApplyOutcome:
    """Split `changes` by how far a failed apply got: a PartialApplyError says; anything else does not."""
    failed = getattr(error, "failed", None)
    if isinstance(getattr(error, "applied", None), int) and (failed is None or isinstance(failed, Change)):
        # connectors.base.PartialApplyError, or any exception carrying `applied` and `failed`
        # (duck-typed: core does not import connectors)
        done = max(0, min(int(error.applied), len(changes)))  # type: ignore[attr-defined]
        rest = list(changes[done:])
        reason = str(getattr(error, "cause", None) or error)
        if failed in rest:
            index = rest.index(failed)
            return ApplyOutcome(tuple(changes[:done]), failed, tuple(rest[index + 1:]), reason,
                                rolled_back=tuple(rest[:index]))
        if rest and failed is None:
            return ApplyOutcome(tuple(changes[:done]), rest[0], tuple(rest[1:]), reason)
        return ApplyOutcome(tuple(changes[:done]), failed, tuple(rest), reason)
    return ApplyOutcome((), None, tuple(changes), str(error) or type(error).__name__, known=False)


def plan_one(spec: EnvironmentSpec, live: Mapping[str, Any], at: datetime, revision: str | None,
             causes: Causes | None = None) -> EnvPlan:
    """One environment's plan at `at`: the effective desired state against `live`, each change saying why
    (`causes`: what the engine read from git; without it, only live's own `applied.at` is known)."""
    from reconciler.core.platform_map import restrict

    timeline = Timeline.windows_of(spec)
    eff = effective(desired_state(spec), timeline, at)
    state, unreadable = restrict(spec, eff.state)  # a read-only platform's unreadable kinds stay unmanaged
    known = causes or Causes()
    since = known.since or applied_at(live)
    env_plan = plan_environment(
        spec.name,
        state,
        live,
        because={**resumed_because(timeline, eff.state, live, at, since), **eff.because},
        sis=str(spec.config.get("sis") or "banner"),
        revision=revision,
        managed=managed_parts(spec),
    )
    env_plan = explain(env_plan, known.commits)
    return replace(env_plan, warnings=(*env_plan.warnings, *unreadable)) if unreadable else env_plan


RESUME_LOOKBACK = timedelta(days=31)


def resumed_because(
    timeline: Timeline, state: Mapping[str, Any], live: Mapping[str, Any], at: datetime, since: datetime | None
) -> dict[str, str]:
    """For a schedule that is off in live and on in the effective state: the window whose end turns it
    back on — the latest that paused it to end after the last apply (`since`) and by `at`, so the plan and
    the activity log name it. A window that ended before the last apply is not this run's cause (a commit
    or a console edit is), and with no apply known, no end was crossed since."""
    schedule = state.get("schedule")
    live_schedule = live.get("schedule")
    if not isinstance(schedule, Mapping) or not isinstance(live_schedule, Mapping) or not timeline.windows:
        return {}
    if since is None:
        return {}
    start = max(since, at - RESUME_LOOKBACK)
    ended = [o for o in timeline.occurrences(start, at) if since < o.end <= at]
    out: dict[str, str] = {}
    for name, on in schedule.items():
        path = f"schedule.{name}"
        last = max((o for o in ended if name in o.window.pause), key=lambda o: o.end, default=None)
        if on is True and live_schedule.get(name) is False and last is not None:
            out[path] = f"{last.window.label} ended"
    return out


def build_plan(
    specs: Sequence[EnvironmentSpec], lives: Mapping[str, Mapping[str, Any]], at: datetime, revision: str | None,
    *, warnings: Mapping[str, Sequence[str]] | None = None, causes: Mapping[str, Causes] | None = None,
) -> Plan:
    """Every environment's plan against its live side, each with its `warnings` (by name) if any, and each
    change's cause from `causes` (by name; see plan_one)."""
    notes, known = warnings or {}, causes or {}
    return Plan(at, tuple(_warned(plan_one(spec, lives.get(spec.name) or {}, at, revision, known.get(spec.name)),
                                  notes.get(spec.name))
                          for spec in specs))


def _warned(env_plan: EnvPlan, warnings: Sequence[str] | None) -> EnvPlan:
    return replace(env_plan, warnings=(*env_plan.warnings, *warnings)) if warnings else env_plan


def safety_problems(
    env_plan: EnvPlan,
    spec: EnvironmentSpec,
    live: Mapping[str, Any],
    at: datetime,
    *,
    applied_before: bool = False,
) -> list[str]:
    """Why this environment's plan is refused without --force (DESIGN §3 Safety); empty when safe.

    `applied_before`: the activity branch records an apply to this environment. Live's `applied` record
    says so too, but a deleted store or live row has lost it."""
    reasons: list[str] = []
    safety = spec.config.get("safety") or {}
    too_many = removals_exceed(
        env_plan,
        live,
        int(safety.get("max_removals", 10)),
        float(safety.get("max_removal_ratio", 0.25)),
    )
    if too_many:
        reasons.append(too_many)
    reasons += _active_phase_removals(env_plan, spec, live, at)
    total = live_item_count(live)
    removals = sum(1 for c in env_plan.changes if c.action in (Action.REMOVE, Action.CANCEL))
    if total and removals >= total:
        reasons.append(f"{env_plan.name}: the plan removes every live item ({total})")
    empty = _empty_live_refusal(env_plan, spec, live, applied_before)
    if empty:
        reasons.append(empty)
    return reasons


def _active_phase_removals(
    env_plan: EnvPlan, spec: EnvironmentSpec, live: Mapping[str, Any], at: datetime
) -> list[str]:
    """Term removals from a merge scope while one of the term's phases is active, in the YAML or in live:
    a commit that drops a term and its phase together still finds the phase in live."""
    timeline = Timeline.from_spec(spec)
    in_yaml = timeline.current_phases(at)
    in_live = Timeline(spec.name, timeline.tz, phases=live_phases(live, timeline.tz)).current_phases(at)
    reasons: list[str] = []
    for change in env_plan.changes:
        term = str(change.value)
        is_term = change.path.startswith("merges.") and change.path.endswith(".terms")
        if not is_term or change.action is not Action.REMOVE or term not in {**in_live, **in_yaml}:
            continue
        where = "" if term in in_yaml else " in live"
        phase = in_yaml.get(term) or in_live[term]
        reasons.append(
            f"{env_plan.name}: removing term {term} from {change.path} while its phase {phase!r} is active{where}"
        )
    return reasons


def live_phases(live: Mapping[str, Any], tz: tzinfo) -> tuple[Phase, ...]:
    """Live's phases as timeline values, their dates read as the YAML's are (midnight in the zone `tz`)."""
    phases: list[Phase] = []
    for name, item in sorted((live.get("phases") or {}).items()):
        if not isinstance(item, Mapping):
            continue
        try:
            term, start, end = (required(item, key) for key in ("term", "start", "end"))
            phases.append(Phase(str(name), str(term), yaml_instant(start, tz), yaml_instant(end, tz)))
        except (ConfigError, TimeInputError):
            continue  # the live-state schema check (apply's step 2) refuses such a document before this runs
    return tuple(phases)


def _empty_live_refusal(
    env_plan: EnvPlan, spec: EnvironmentSpec, live: Mapping[str, Any], applied_before: bool
) -> str | None:
    """A plan re-adding what an earlier apply made to a live side whose managed parts read as empty: a
    platform answering with nothing, or a deleted store, is a fault, not a desire. A plan that only sets
    schedules is never refused here: a window's pause and resume must go through whatever live reads."""
    if not env_plan.changes or only_schedules(env_plan):
        return None
    known = "live's applied record" if live.get("applied") else "the activity branch" if applied_before else None
    if known is None or not live_reads_empty(live, managed_parts(spec)):
        return None
    readds = sum(1 for c in env_plan.changes if not c.path.startswith("schedule."))
    return (
        f"{env_plan.name}: the live side reads as empty although {known} shows an earlier apply; the plan "
        f"would re-add {readds} {'item' if readds == 1 else 'items'} (a platform answering with nothing, or a "
        "deleted store, is a fault, not a desire)"
    )


# --- saved plans ------------------------------------------------------------------------------


def plan_id_of(checksum: str) -> str:
    return "plan-" + checksum.split(":", 1)[-1][:12]


def saved_data(plan: Plan) -> dict[str, Any]:
    """What `plan --out` writes: the JSON plan plus its id and checksum."""
    checksum = plan.checksum
    return {**plan.data, "plan_id": plan_id_of(checksum), "checksum": checksum}


def _change(data: Mapping[str, Any]) -> Change:
    action = Action(data["action"])
    if action is Action.CHANGE:
        return Change(action, str(data["path"]), before=data.get("before"), after=data.get("after"),
                      because=data.get("because"))
    return Change(action, str(data["path"]), value=data.get("value"), because=data.get("because"))


def load_saved(data: Any) -> tuple[Plan, str]:
    """A saved plan and its id; refuses one that was edited or is not a plan."""
    if not isinstance(data, Mapping) or any(k not in data for k in (*SAVED_KEYS, "at", "environments")):
        raise PlanError("the saved plan is not a reconciler plan (run `reconciler plan --out FILE`)")
    if data.get("format_version") != FORMAT_VERSION:
        raise PlanError(f"the saved plan has format_version {data.get('format_version')!r}, not {FORMAT_VERSION}")
    body = {k: v for k, v in data.items() if k not in SAVED_KEYS}
    if digest(body) != data["checksum"]:
        raise PlanError("the saved plan was edited after it was made (checksum mismatch); make a new plan")
    try:
        at = datetime.fromisoformat(str(data["at"]))
        envs = tuple(
            EnvPlan(
                str(env["name"]),
                env.get("revision"),
                str(env["live_fingerprint"]),
                tuple(_change(c) for c in env.get("changes") or []),
                tuple(Blocked(str(b["path"]), b.get("value"), str(b["why"])) for b in env.get("blocked") or []),
                tuple(str(w) for w in env.get("warnings") or []),
            )
            for env in data["environments"]
        )
        plan = Plan(at, envs)
    except (KeyError, TypeError, ValueError) as e:
        raise PlanError(f"the saved plan is not a reconciler plan: {e}") from e
    return plan, str(data["plan_id"])
