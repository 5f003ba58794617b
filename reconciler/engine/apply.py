"""The apply use case (DESIGN §3 Safety): per environment, one pipeline, in this order —

    lease → read live → check it against the live-state schema → settle what a killed run left →
    plan (or check the saved plan again, under the lease) → safety → apply, guarded by the
    fingerprint → the git record, before the next environment starts → release.

Environments are independent: each ends in an `EnvResult` (applied, no changes, failed, refused,
fault), printed in the plan's order; the command fails at the end if any did not succeed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.connectors.base import LEASE_TTL_S, lease_holder
from reconciler.core.plan import EnvPlan, Plan
from reconciler.errors import ApplyFailed, ConnectorError, PlanError, ReconcilerError, SafetyError, UsageError
from reconciler.model import EnvironmentSpec

if TYPE_CHECKING:
    from reconciler.activity import Entry
    from reconciler.engine import Engine
    from reconciler.engine.causes import CauseReader
    from reconciler.engine.records import Recorder

DEFAULT_PARALLEL = 4
"""Environments applied at once without --parallel (each under its own lease)."""


@dataclass
class EnvResult:
    """How one environment's apply ended, and what it has to say (printed in the plan's order)."""

    name: str
    outcome: str = "no changes"
    """applied | no changes | failed | refused | fault"""
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reason: str = ""
    error: ReconcilerError | None = None
    """What stopped it before anything was applied (a fault or a refusal)."""
    record: Path | None = None
    """Its activity record, kept as done; written to the branch in the plan's order."""

    @property
    def ok(self) -> bool:
        return self.outcome in ("applied", "no changes")


@dataclass(frozen=True)
class Run:
    """What every environment's pipeline of one apply shares."""

    engine: Engine
    moment: datetime
    revision: str | None
    actor: str
    force: bool
    message: str | None
    ticket: str | None
    records: Recorder
    saved: Plan | None = None
    saved_id: str | None = None
    in_ci: bool = False
    known_revisions: dict[str, bool | None] = field(default_factory=dict)
    """Whether this checkout holds each revision live was applied from, asked of git once per revision."""
    causes: CauseReader | None = None
    """Why each change is made, read from git once for the whole run."""

    @property
    def holder(self) -> str:
        return lease_holder(self.actor)


def apply(engine: Engine, envs: Sequence[str], *, plan_file: str | None = None, yes: bool = False,
          force: bool = False, message: str | None = None, ticket: str | None = None,
          parallel: int | None = None, shard: tuple[int, int] | None = None,
          moment: datetime | None = None) -> int:
    """Apply each selected environment (or a saved plan's), each through the pipeline; 0, or ApplyFailed."""
    from reconciler import activity
    from reconciler.engine.causes import CauseReader
    from reconciler.engine.records import Recorder

    moment = moment or engine.now()
    saved, saved_id = _load_saved(plan_file) if plan_file else (None, None)
    specs = _specs(engine, envs, saved, plan_file, shard, moment)
    if saved is None:
        if not engine.out.interactive:  # at a terminal, the plan is shown and the person asked instead
            unprotected_refusal(specs, yes)
        shown = _confirmed(engine, specs, moment, yes, parallel)
        if shown is False:
            engine.out.note("nothing applied")
            return 1
        saved = shown if isinstance(shown, Plan) else None
    revision = engine.revision()
    if revision is not None and revision.endswith("-dirty"):
        engine.out.note(f"warning: environments/ has uncommitted changes; the apply is recorded as revision "
                        f"{revision[:12]}-dirty (commit first, so the activity log can name what was applied)")
    if activity.in_ci():
        _warn_embedded_in_ci(engine, specs)
    with Recorder(engine.root, engine.out.note) as records:
        records.flush()
        run = Run(engine, moment, revision, activity.actor(engine.root), force, message, ticket, records,
                  saved, saved_id, activity.in_ci(), causes=CauseReader(engine.root))
        results = _apply_each(run, specs, parallel)
    return _finish(engine, results)


def _warn_embedded_in_ci(engine: Engine, specs: Sequence[EnvironmentSpec]) -> None:
    from reconciler.connectors import connector_name

    embedded = [spec.name for spec in specs if connector_name(spec) == "embedded"]
    if embedded:
        engine.out.note(f"warning: {', '.join(embedded)}: live is the embedded store (.reconciler/live.sqlite), "
                        "which is not kept between CI runs: each run starts from an empty store; set live: in "
                        "environment.yaml to the platform (docs/connectors.md)")


def unprotected_refusal(specs: Sequence[EnvironmentSpec], yes: bool) -> None:
    protected = [s.name for s in specs if s.config.get("protected")]
    if protected and not yes:
        raise UsageError(
            f"{', '.join(protected)} is protected: apply with --yes, or apply a saved plan (`plan --out`, "
            "`apply --plan`)"
        )


# --- before the pipelines ------------------------------------------------------------------------


def _load_saved(plan_file: str) -> tuple[Plan, str]:
    from reconciler.core.apply import load_saved

    try:
        data = json.loads(Path(plan_file).read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"--plan {plan_file}: cannot read it: {e.strerror or e}") from e
    except ValueError as e:
        raise PlanError(f"--plan {plan_file}: not JSON ({e})") from e
    return load_saved(data)


def _specs(engine: Engine, envs: Sequence[str], saved: Plan | None, plan_file: str | None,
           shard: tuple[int, int] | None, moment: datetime) -> list[EnvironmentSpec]:
    if saved is None:
        return engine.select(envs, None, shard=shard, follow_links=True, moment=moment).specs
    names = [env.name for env in saved.environments]
    missing = [n for n in envs if n not in names]
    if missing:
        raise UsageError(f"--plan {plan_file} does not plan {', '.join(missing)} (it plans: {', '.join(names)})")
    specs = engine.select(list(envs) or names, None, follow_links=True, moment=moment).specs
    return [spec for spec in specs if spec.name in names]  # a named one brings its linked, if planned


def _confirmed(engine: Engine, specs: Sequence[EnvironmentSpec], moment: datetime, yes: bool,
               parallel: int | None) -> Plan | bool:
    """At a terminal without --yes: show the plan and ask; the plan shown is then applied as a saved one
    (refused if live moved meanwhile). False when the person said no; True when nobody was asked."""
    from reconciler.core.render import plan_text
    from reconciler.core.words import Words
    from reconciler.engine.causes import CauseReader

    if yes or not engine.out.interactive:
        return True
    lives, _ = engine.read_all(specs, parallel, writing=True)
    read = [s for s in specs if s.name in lives]
    plan = CauseReader(engine.root).build_plan(read, lives, moment, engine.revision())
    if plan.is_empty:
        return True
    shown = plan_text(plan, engine.out.color, Words.of(read))
    return plan if engine.out.ask("Apply these changes?", shown) else False


def _apply_each(run: Run, specs: Sequence[EnvironmentSpec], parallel: int | None) -> list[EnvResult]:
    out = run.engine.out
    workers = max(1, min(parallel or DEFAULT_PARALLEL, len(specs) or 1))
    results: list[EnvResult] = []
    settled = _already_settled(run, specs, parallel)
    with out.progress("applying", len(specs)) as advance, ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_pipeline, run, spec) if spec.name not in settled else _done(settled[spec.name])
                   for spec in specs]
        for future in futures:
            result = future.result()
            for line in result.lines:
                out.emit(line)
            for line in result.notes:
                out.note(line)
            if result.record is not None:
                run.records.write([result.record])
            results.append(result)
            advance()
    return results


def _already_settled(run: Run, specs: Sequence[EnvironmentSpec], parallel: int | None) -> dict[str, EnvResult]:
    """The environments a first look finds with nothing to do and nothing an earlier run left unsettled:
    a no-change apply takes no lease and writes nothing. Only where a whole fleet is read at once
    (`batched_read`): over a platform where each read is a request, the pipeline's own read is the one.
    Every other environment goes through the whole pipeline, which reads and plans again under its lease."""
    from reconciler.core.apply import plan_one

    if run.saved is not None:
        return {}
    specs = [spec for spec in specs if _reads_in_batches(run, spec)]
    lives, _ = run.engine.read_all(specs, parallel, writing=True)
    unsettled = run.records.unsettled()
    found = {}
    for spec in specs:
        live = lives.get(spec.name)
        if live is not None and spec.name not in unsettled and plan_one(spec, live, run.moment, run.revision).is_empty:
            found[spec.name] = EnvResult(spec.name, lines=[f"{spec.name}: no changes"])
    return found


def _reads_in_batches(run: Run, spec: EnvironmentSpec) -> bool:
    try:
        return "batched_read" in getattr(run.engine.connect(spec, run.engine.root, writing=True), "capabilities", ())
    except ReconcilerError:  # no token, unknown connector: the pipeline reports it
        return False


def _done(result: EnvResult) -> Future[EnvResult]:
    future: Future[EnvResult] = Future()
    future.set_result(result)
    return future


def _finish(engine: Engine, results: Sequence[EnvResult]) -> int:
    bad = [r for r in results if not r.ok]
    if not bad:
        return 0
    if len(results) == 1 and bad[0].error is not None:
        raise bad[0].error
    for result in bad:
        if result.outcome != "failed":  # a failed apply has said what it did above
            engine.out.note(f"error: {result.reason}")
    total = len(results)
    raise ApplyFailed(
        f"apply failed for {', '.join(r.name for r in bad)} ({len(bad)} of {total} "
        f"environment{'s' if total != 1 else ''}; see the report above); run apply again to converge"
    )


# --- the pipeline of one environment -------------------------------------------------------------


def _pipeline(run: Run, spec: EnvironmentSpec) -> EnvResult:
    result = EnvResult(spec.name)
    try:
        connector = run.engine.connect(spec, run.engine.root, writing=True)
        refuse_read_only(spec, connector)
        with connector.lock(run.holder, LEASE_TTL_S) as lease:
            if getattr(lease, "took_over", None):
                result.notes.append(f"{spec.name}: took over the lease of {lease.took_over}, which no longer runs")
            _under_lease(run, spec, connector, result)
    except ReconcilerError as e:
        if result.outcome == "no changes":
            result.outcome, result.error = "fault", e
        result.reason = result.reason or str(e)
    return result


def refuse_read_only(spec: EnvironmentSpec, connector: Any) -> None:
    """A connector that cannot write (the platform's read API) is applied by a person: say how."""
    if "write" not in getattr(connector, "capabilities", ("write",)):
        name = getattr(connector, "name", "connector")
        raise ConnectorError(f"{spec.name}: connector {name} cannot write to the platform; use "
                             f"`reconciler apply --guided {spec.name}` (prints the console steps, then checks "
                             "live until they are done)")


def _under_lease(run: Run, spec: EnvironmentSpec, connector: Any, result: EnvResult) -> None:
    from reconciler.engine.reading import check_live

    live = connector.read()
    check_live(spec.name, live)
    run.records.resolve(spec.name, live)
    env_plan, plan_id = _plan_for(run, spec, live)
    if env_plan.is_empty:
        result.lines.append(f"{spec.name}: no changes")
        return
    refusals = _refusals(run, spec, env_plan, live)
    elsewhere = _applied_elsewhere(run, spec, live)
    if elsewhere and (run.force or not run.in_ci):
        result.notes.append(f"warning: {elsewhere}")
    elif elsewhere:
        refusals.insert(0, f"{elsewhere} (in CI)")
    if refusals and not run.force:
        result.outcome = "refused"
        result.reason = f"{refusals[0]} (refused; rerun with --force if this is meant)"
        result.error = SafetyError(result.reason)
        result.notes += refusals[1:]
        return
    _apply_plan(run, connector, env_plan, plan_id, result, _ticket(run, spec, env_plan))
    if result.outcome == "applied":
        from reconciler.core.lateness import late_boundaries

        result.lines += [f"{spec.name}: {line}" for line in late_boundaries(spec, env_plan, live, run.moment)]


def _plan_for(run: Run, spec: EnvironmentSpec, live: Mapping[str, Any]) -> tuple[EnvPlan, str]:
    """The plan to apply: made now from the YAML, or the saved one, checked again under the lease."""
    from reconciler.core.apply import plan_id_of, plan_one
    from reconciler.core.stale import saved_plan_problem
    from reconciler.core.timeline import Timeline

    if run.saved is None:
        fresh = (run.causes.plan_one(spec, live, run.moment, run.revision) if run.causes is not None
                 else plan_one(spec, live, run.moment, run.revision))
        return fresh, plan_id_of(Plan(run.moment, (fresh,)).checksum)
    saved = next(env for env in run.saved.environments if env.name == spec.name)
    replanned = plan_one(spec, live, run.saved.at, run.revision)  # compared without `because` (core/stale.py)
    crossed = Timeline.from_spec(spec).transitions_between(run.saved.at, run.moment)
    problem = saved_plan_problem(saved, run.saved.at, replanned, run.revision, crossed)
    if problem is not None:
        raise problem
    return saved, run.saved_id or plan_id_of(run.saved.checksum)


def _refusals(run: Run, spec: EnvironmentSpec, env_plan: EnvPlan, live: Mapping[str, Any]) -> list[str]:
    from reconciler.core.apply import safety_problems

    return safety_problems(env_plan, spec, live, run.moment, applied_before=_applied_before(run, spec, live))


def _applied_elsewhere(run: Run, spec: EnvironmentSpec, live: Mapping[str, Any]) -> str | None:
    """Live was applied from a revision this checkout lacks (a pause from a laptop, not pushed): applying
    from here would undo it (DESIGN §3 "Where live was applied from")."""
    applied = live.get("applied")
    revision = applied.get("revision") if isinstance(applied, Mapping) else None
    if not isinstance(revision, str) or not revision or run.revision is None or revision == run.revision:
        return None
    if revision not in run.known_revisions:
        from reconciler import git

        run.known_revisions[revision] = git.has_revision(run.engine.root, revision)
    held = run.known_revisions[revision]
    if held:
        return None
    if held is None:
        return (f"{spec.name}: this shallow clone cannot tell whether it holds revision {revision[:12]}, which "
                "live was applied from: fetch the whole history (`git fetch --unshallow`; GitHub Actions: "
                "actions/checkout with fetch-depth: 0)")
    return (f"{spec.name}: live was applied from revision {revision[:12]}, which this checkout does not have "
            "(applied from another clone and not pushed yet?): applying from here would undo it; fetch and "
            "merge it first")


def _applied_before(run: Run, spec: EnvironmentSpec, live: Mapping[str, Any]) -> bool:
    """Known from live's own record, else from the activity branch (only asked when live has none)."""
    from reconciler.core.plan import live_item_count

    if live.get("applied") or live_item_count(live):
        return bool(live.get("applied"))
    return run.records.has_applied(spec.name)


def _ticket(run: Run, spec: EnvironmentSpec, env_plan: EnvPlan) -> str | None:
    """--ticket, else the tickets of the windows this apply acts for."""
    from reconciler.core.causes import window_ticket
    from reconciler.core.timeline import Timeline

    return run.ticket or window_ticket(Timeline.windows_of(spec).windows, env_plan)


def _apply_plan(run: Run, connector: Any, env_plan: EnvPlan, plan_id: str, result: EnvResult,
                ticket: str | None) -> None:
    record = _live_record(run, env_plan, plan_id, ticket)
    count = len(env_plan.changes)
    done = f"applied {count} change{'s' if count != 1 else ''} ({plan_id})"
    applied = _entry(run, env_plan, "applied", done, ticket)
    kept = run.records.intend(applied, record)  # the record of success, kept before it is attempted
    try:
        connector.apply_changes(list(env_plan.changes), record=record)
    except ReconcilerError as e:
        if _nothing_applied(e):
            run.records.forget(kept)
            raise
        _failed(run, connector, env_plan, record, e, kept, result, ticket)
        return
    except Exception as e:  # a programming error: recorded as failed, then shown as unexpected
        _failed(run, connector, env_plan, record, e, kept, result, ticket)
        run.records.write([kept])
        raise
    result.record = run.records.done(kept, applied, write=False)
    result.outcome = "applied"
    result.lines.append(f"{env_plan.name}: {done}")


def _nothing_applied(error: ReconcilerError) -> bool:
    """A refusal before anything was written (live moved, lease lost, the store rolled back): no record,
    the fault is the news."""
    from reconciler.errors import ConflictError, LockError, StoreError

    return isinstance(error, ConflictError | LockError | StoreError)


def _failed(run: Run, connector: Any, env_plan: EnvPlan, record: dict[str, Any], error: BaseException,
            kept: Path, result: EnvResult, ticket: str | None) -> None:
    reason = _report_failure(connector, env_plan, record, error, result.notes)
    result.outcome, result.reason = "failed", f"{env_plan.name}: apply failed: {reason}"
    failed = _entry(run, env_plan, "failed", f"failed: {reason}", ticket)
    result.record = run.records.done(kept, failed, write=False)


def _live_record(run: Run, env_plan: EnvPlan, plan_id: str, ticket: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"revision": run.revision, "plan_id": plan_id, "at": run.moment.isoformat(),
                              "actor": run.actor, "live_fingerprint": env_plan.live_fingerprint}
    reasons = "; ".join(dict.fromkeys(c.because for c in env_plan.changes if c.because))
    if run.message or reasons:  # a window's apply names the window and its ticket on the activity log
        record["message"] = "; ".join(m for m in (run.message, reasons) if m)
    if ticket or run.ticket:
        record["ticket"] = ticket or run.ticket
    return record


def _entry(run: Run, env_plan: EnvPlan, outcome: str, summary: str, ticket: str | None = None) -> Entry:
    from reconciler.activity import Entry
    from reconciler.core.render import change_line

    lines = "\n".join(change_line(c) for c in env_plan.changes)
    body = f"{run.message}\n\n{lines}" if run.message else lines
    return Entry(env_plan.name, run.revision, outcome, run.actor, ticket or run.ticket,
                 f"apply {env_plan.name}: {summary}", body)


def _report_failure(connector: Any, env: EnvPlan, record: dict[str, Any], error: BaseException,
                    notes: list[str]) -> str:
    """Say which changes were applied, which failed and which were not attempted (into `notes`);
    record it on the live activity log; return the reason."""
    import contextlib

    from reconciler.core.apply import failure_outcome
    from reconciler.core.render import change_line

    outcome = failure_outcome(list(env.changes), error)
    with contextlib.suppress(Exception):  # the failure itself is what the user must see
        connector.append_activity({**record, "kind": "apply", **outcome.record()})

    def listed(changes: Sequence[Any]) -> str:
        return "; ".join(change_line(c) for c in changes) or "none"

    notes.append(f"{env.name}: apply failed")
    notes.append(f"applied: {listed(outcome.applied) if outcome.known else 'unknown (the connector did not say)'}")
    failed = change_line(outcome.failed) if outcome.failed is not None else "the apply"
    notes.append(f"failed: {failed} ({outcome.reason})")
    notes.append(f"not attempted: {listed(outcome.not_attempted)}")
    if outcome.rolled_back:
        notes.append(f"rolled back (made, then undone with the failed change): {listed(outcome.rolled_back)}")
    return str(outcome.reason)


class GitRecorder:
    """One record at a time on the activity branch for the use cases other than apply (import, merge)."""

    def __init__(self, engine: Engine, revision: str | None, actor: str, ticket: str | None,
                 message: str | None) -> None:
        self.engine, self.revision, self.actor, self.ticket = engine, revision, actor, ticket

    def record(self, env: str, outcome: str, subject: str, body: str) -> None:
        from reconciler.activity import Entry
        from reconciler.engine.records import Recorder

        with Recorder(self.engine.root, self.engine.out.note) as records:
            records.flush()
            records.done(None, Entry(env, self.revision, outcome, self.actor, self.ticket, subject, body))
