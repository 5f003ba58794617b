"""The apply use case: plan at the moment (or load a saved plan), check it, and per environment
take the lease, apply, record, release (DESIGN §3 Safety)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.connectors.base import LEASE_TTL_S, lease_holder
from reconciler.errors import ApplyFailed, PlanError, ReconcilerError, SafetyError, StalePlanError, UsageError
from reconciler.model import EnvironmentSpec

if TYPE_CHECKING:
    from reconciler.engine import Engine

DEFAULT_PARALLEL = 4
"""Environments applied at once without --parallel (each under its own lease)."""


def apply(engine: Engine, envs: Sequence[str], *, plan_file: str | None = None, yes: bool = False,
          force: bool = False, message: str | None = None, ticket: str | None = None,
          parallel: int | None = None, shard: tuple[int, int] | None = None,
          moment: datetime | None = None) -> int:
    """Plan at `moment` (default: now) and apply, or apply a saved plan."""
    from reconciler.core.apply import build_plan, plan_id_of, safety_problems
    from reconciler.core.render import plan_text

    out = engine.out
    moment = moment or engine.now()
    revision = engine.revision()
    if plan_file is None:
        chosen = engine.select(envs, None, shard=shard, follow_links=True, moment=moment)
        specs = chosen.specs
        lives = engine.read_lives(specs, parallel)
        plan = build_plan(specs, lives, moment, revision)
        plan_id = plan_id_of(plan.checksum)
        unprotected_refusal(specs, yes)
        if not plan.is_empty and not yes and out.ask("Apply these changes?", plan_text(plan, out.color)) is False:
            out.note("nothing applied")
            return 1
    else:
        plan, plan_id, specs, lives = _saved(engine, envs, plan_file, revision, moment)
    by_name = {spec.name: spec for spec in specs}
    refusals = [r for env in plan.environments for r in safety_problems(env, by_name[env.name],
                                                                        lives[env.name], moment)]
    if refusals and not force:
        for reason in refusals[1:]:
            out.note(reason)
        raise SafetyError(f"{refusals[0]} (refused; rerun with --force if this is meant)")
    _apply_all(engine, plan, by_name, plan_id, revision, moment, message, ticket, parallel)
    return 0


def unprotected_refusal(specs: Sequence[EnvironmentSpec], yes: bool) -> None:
    protected = [s.name for s in specs if s.config.get("protected")]
    if protected and not yes:
        raise UsageError(
            f"{', '.join(protected)} is protected: apply with --yes, or apply a saved plan (`plan --out`, "
            "`apply --plan`)"
        )


def _saved(engine: Engine, envs: Sequence[str], plan_file: str, revision: str | None, moment: datetime) -> Any:
    from reconciler.core.apply import load_saved
    from reconciler.core.plan import Plan, fingerprint
    from reconciler.core.timeline import Timeline

    try:
        data = json.loads(Path(plan_file).read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"--plan {plan_file}: cannot read it: {e.strerror or e}") from e
    except ValueError as e:
        raise PlanError(f"--plan {plan_file}: not JSON ({e})") from e
    plan, plan_id = load_saved(data)
    names = [env.name for env in plan.environments]
    missing = [n for n in envs if n not in names]
    if missing:
        raise UsageError(f"--plan {plan_file} does not plan {', '.join(missing)} (it plans: {', '.join(names)})")
    specs = engine.select(list(envs) or names, None, follow_links=True).specs  # a named one brings its linked
    chosen = [n for n in names if n in {spec.name for spec in specs}]
    specs = [spec for spec in specs if spec.name in chosen]
    lives = engine.read_lives(specs, None)
    for env in plan.environments:
        if env.name not in chosen:
            continue
        if env.revision != revision:
            raise StalePlanError(
                f"{env.name}: the saved plan is stale: it was made at revision {env.revision or 'none'}, "
                f"the repository is at {revision or 'none'}; make a new plan"
            )
        if env.live_fingerprint != fingerprint(lives[env.name]):
            raise StalePlanError(f"{env.name}: the saved plan is stale: the live side changed since; make a new plan")
    for spec in specs:
        crossed = Timeline.from_spec(spec).transitions_between(plan.at, moment)
        if crossed:
            first = crossed[0]
            raise StalePlanError(
                f"{spec.name}: the saved plan is stale: {first.event.value} {first.id} at "
                f"{first.local_at.isoformat()} lies between the plan's time and now; make a new plan"
            )
    kept = Plan(plan.at, tuple(env for env in plan.environments if env.name in chosen))
    return kept, plan_id, specs, lives


def _apply_all(engine: Engine, plan: Any, specs: dict[str, EnvironmentSpec], plan_id: str, revision: str | None,
               moment: datetime, message: str | None, ticket: str | None = None, parallel: int | None = None) -> None:
    """Apply each environment's changes (several at once with `parallel`), then report in the plan's order."""
    from concurrent.futures import ThreadPoolExecutor

    from reconciler import activity

    out = engine.out
    actor = activity.actor(engine.root)
    git_log = GitRecorder(engine, revision, actor, ticket, message)
    run = _EnvApply(engine, specs, plan_id, revision, moment, message, ticket, actor)
    failed: list[str] = []
    errors: list[tuple[str, ReconcilerError]] = []
    workers = max(1, min(parallel or DEFAULT_PARALLEL, len(plan.environments) or 1))
    try:
        with out.progress("applying", len(plan.environments)) as advance, ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(run, env) for env in plan.environments]
            for env, future in zip(plan.environments, futures, strict=True):
                try:
                    outcome = future.result()
                except ReconcilerError as e:  # e.g. a lease held elsewhere: the others still finish
                    errors.append((env.name, e))
                    continue
                finally:
                    advance()
                _report(out, env, outcome, git_log)
                if outcome.failed:
                    failed.append(env.name)
    finally:
        git_log.flush()  # whatever was applied is recorded, even when something above raised
    if errors and not failed:
        for _, other in errors[1:]:
            out.note(f"error: {other}")
        raise errors[0][1]
    for name, error in errors:
        out.note(f"error: {error}")
        failed.append(name)
    if failed:
        total = len(plan.environments)
        which = ", ".join(failed)
        raise ApplyFailed(
            f"apply failed for {which} ({len(failed)} of {total} environment{'s' if total != 1 else ''}; "
            "see the report above); run apply again to converge"
        )


def _report(out: Any, env: Any, outcome: _Outcome, git_log: GitRecorder) -> None:
    for line in outcome.lines:
        out.emit(line)
    for line in outcome.notes:
        out.note(line)
    if outcome.summary:
        git_log.apply(env, "failed" if outcome.failed else "applied", outcome.summary)


class _Outcome:
    """What one environment's apply printed and whether it failed (printed later, in the plan's order)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.notes: list[str] = []
        self.summary = ""
        self.failed = False


class _EnvApply:
    """Applies one environment's changes under its lease; safe to run for several environments at once."""

    def __init__(self, engine: Engine, specs: dict[str, EnvironmentSpec], plan_id: str, revision: str | None,
                 moment: datetime, message: str | None, ticket: str | None, actor: str) -> None:
        self.engine, self.specs, self.plan_id, self.revision = engine, specs, plan_id, revision
        self.moment, self.message, self.ticket, self.actor = moment, message, ticket, actor
        self.holder = lease_holder(actor)

    def __call__(self, env: Any) -> _Outcome:
        outcome = _Outcome()
        if env.is_empty:
            outcome.lines.append(f"{env.name}: no changes")
            return outcome
        connector = self.engine.connect(self.specs[env.name], self.engine.root)
        record = self.record(env)
        with connector.lock(self.holder, LEASE_TTL_S):
            try:
                connector.apply_changes(list(env.changes), record=record)
            except Exception as e:
                reason = _report_failure(connector, env, record, e, outcome.notes)
                outcome.failed, outcome.summary = True, f"failed: {reason}"
                return outcome
        count = len(env.changes)
        done = f"applied {count} change{'s' if count != 1 else ''} ({self.plan_id})"
        outcome.lines.append(f"{env.name}: {done}")
        outcome.summary = done
        return outcome

    def record(self, env: Any) -> dict[str, Any]:
        record: dict[str, Any] = {"revision": self.revision, "plan_id": self.plan_id, "at": self.moment.isoformat(),
                                  "actor": self.actor, "live_fingerprint": env.live_fingerprint}
        reasons = "; ".join(dict.fromkeys(c.because for c in env.changes if c.because))
        if self.message or reasons:  # a window's apply names the window and its ticket on the activity log
            record["message"] = "; ".join(m for m in (self.message, reasons) if m)
        if self.ticket:
            record["ticket"] = self.ticket
        return record


class GitRecorder:
    """Records each environment's apply on the `reconciler/activity` branch; notes once when there is no git."""

    def __init__(self, engine: Engine, revision: str | None, actor: str, ticket: str | None,
                 message: str | None) -> None:
        self.root, self.out = engine.root, engine.out
        self.revision, self.actor, self.ticket, self.message = revision, actor, ticket, message
        self.noted = False
        self.pending: list[Any] = []

    def apply(self, env: Any, outcome: str, summary: str) -> None:
        """Queue the record of one environment's apply (`flush` writes the queue with one git process)."""
        from reconciler.activity import Entry
        from reconciler.core.render import change_line

        lines = "\n".join(change_line(c) for c in env.changes)
        body = f"{self.message}\n\n{lines}" if self.message else lines
        self.pending.append(Entry(env.name, self.revision, outcome, self.actor, self.ticket,
                                  f"apply {env.name}: {summary}", body))

    def record(self, env: str, outcome: str, subject: str, body: str) -> None:
        from reconciler.activity import Entry

        self.pending.append(Entry(env, self.revision, outcome, self.actor, self.ticket, subject, body))
        self.flush()

    def flush(self) -> None:
        from reconciler import activity
        from reconciler.errors import GitError

        entries, self.pending = self.pending, []
        if not entries:
            return
        try:
            shas = activity.record_many(self.root, entries)
        except GitError as e:  # the live side is changed either way; say that git did not record it
            self.out.note(f"{', '.join(e.environment for e in entries)}: no git record was written: {e}")
            return
        if shas is None and not self.noted:
            self.noted = True
            self.out.note(activity.NO_GIT_NOTE)


def _report_failure(connector: Any, env: Any, record: dict[str, Any], error: Exception, notes: list[str]) -> str:
    """Say which changes were applied, which failed and which were not attempted (into `notes`);
    record it on the live activity log; return the reason."""
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
