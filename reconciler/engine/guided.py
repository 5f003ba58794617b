"""The guided apply use case (DESIGN §5 "Guided apply"): for a platform this tool cannot write to.

Per environment: read live (read-only), plan, print the console steps and the Activity comment, record
`Outcome: requested` on the activity branch; then read live every `interval_s` (with progress on stderr),
bounded by `timeout_s`, until every step's changes are seen, and record `Outcome: applied` (verified). A
step still not seen at the deadline fails the run naming it. Without waiting, the run exits 2 once the
request is recorded; a later guided apply that finds live already as asked records the request verified.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.core.console_steps import Step, activity_comment, console_steps, numbered
from reconciler.core.plan import Change, EnvPlan
from reconciler.errors import ApplyFailed, ReconcilerError
from reconciler.model import EnvironmentSpec

if TYPE_CHECKING:
    from reconciler.engine import Engine

POLL_S = 15.0
DEFAULT_TIMEOUT_S = 30 * 60.0
REQUESTED, APPLIED = "requested", "applied"


@dataclass(frozen=True)
class Guide:
    """How one guided apply runs."""

    wait: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S
    interval_s: float = POLL_S
    ticket: str | None = None
    message: str | None = None
    sleep: Callable[[float], None] = time.sleep


def guided(engine: Engine, envs: Sequence[str], guide: Guide, *, moment: datetime | None = None) -> int:
    """0 when every environment is verified (or had nothing to do), 2 when a request was left for a person
    (no wait); ApplyFailed when a step was not seen in time or live could not be read."""
    from reconciler import activity

    moment = moment or engine.now()
    specs = engine.select(envs, None, moment=moment).specs
    revision, actor = engine.revision(), activity.actor(engine.root)
    failed: list[str] = []
    waiting = False
    for spec in specs:
        try:
            outcome = _one(engine, spec, guide, moment, revision, actor)
        except ReconcilerError as e:
            engine.out.note(f"error: {e}")
            outcome = "failed"
        failed += [spec.name] if outcome == "failed" else []
        waiting = waiting or outcome == REQUESTED
    if failed:
        raise ApplyFailed(f"guided apply not verified for {', '.join(failed)}; see the steps above")
    return 2 if waiting else 0


def _one(engine: Engine, spec: EnvironmentSpec, guide: Guide, moment: datetime, revision: str | None,
         actor: str) -> str:
    env_plan = _plan(engine, spec, moment, revision)
    if env_plan.is_empty:
        _verify_earlier(engine, spec.name, revision, actor, guide.ticket)
        engine.out.emit(f"{spec.name}: no changes")
        return "no changes"
    steps = console_steps(env_plan, spec, activity_comment(env_plan, revision, guide.ticket))
    engine.out.emit(f"{spec.name}: {len(env_plan.changes)} change(s) to make in the admin console:")
    for line in numbered(steps):
        engine.out.emit(f"  {line}")
    earlier = _open_request(engine, spec.name, steps)
    if earlier is None:
        _record(engine, spec.name, revision, actor, guide.ticket, REQUESTED, steps, guide.message)
    else:  # the scheduled workflow asks every 15 minutes: the same request is recorded once
        engine.out.note(f"{spec.name}: these steps were requested in {earlier[:12]}; not recorded again")
    if not guide.wait:
        engine.out.note(f"{spec.name}: recorded as requested; run `reconciler apply --guided {spec.name}` once done "
                        "to verify it")
        return REQUESTED
    unseen = _watch(engine, spec, steps, guide, moment, revision)
    if unseen:
        engine.out.note(f"{spec.name}: still not seen after {guide.timeout_s:g}s: "
                        + "; ".join(f"step {n} ({text})" for n, text in unseen))
        return "failed"
    _record(engine, spec.name, revision, actor, guide.ticket, APPLIED, steps, guide.message)
    engine.out.emit(f"{spec.name}: every step seen in live; recorded as applied (verified)")
    return APPLIED


def _plan(engine: Engine, spec: EnvironmentSpec, moment: datetime, revision: str | None) -> EnvPlan:
    from reconciler.core.apply import plan_one
    from reconciler.engine.reading import check_live

    live = engine.connect(spec, engine.root, writing=False).read()
    check_live(spec.name, live)
    return plan_one(spec, live, moment, revision)


def _key(change: Change) -> tuple[Any, ...]:
    return change.action, change.path, repr(change.value), repr(change.after)


def _watch(engine: Engine, spec: EnvironmentSpec, steps: Sequence[Step], guide: Guide, moment: datetime,
           revision: str | None) -> list[tuple[int, str]]:
    """The steps (number, first line) not seen in live by the deadline; [] once all are."""
    deadline = time.monotonic() + guide.timeout_s
    unseen = _unseen(steps, {_key(c) for s in steps for c in s.changes})
    while unseen:
        left = deadline - time.monotonic()
        if left <= 0:
            return unseen
        guide.sleep(min(guide.interval_s, left))
        try:
            pending = {_key(c) for c in _plan(engine, spec, moment, revision).changes}
        except ReconcilerError as e:  # a read that failed this time: asked again at the next poll
            engine.out.note(f"{spec.name}: could not read live ({e}); trying again")
            continue
        unseen = _unseen(steps, pending)
        total = sum(1 for s in steps if s.changes)
        engine.out.note(f"{spec.name}: {total - len(unseen)} of {total} console steps seen; "
                        f"{max(0.0, deadline - time.monotonic()):.0f}s left")
    return []


def _unseen(steps: Sequence[Step], pending: set[tuple[Any, ...]]) -> list[tuple[int, str]]:
    return [(n, step.text.splitlines()[0]) for n, step in enumerate(steps, 1)
            if any(_key(c) in pending for c in step.changes)]


def _record(engine: Engine, env: str, revision: str | None, actor: str, ticket: str | None, outcome: str,
            steps: Sequence[Step], message: str | None) -> None:
    from reconciler.activity import Entry
    from reconciler.engine.records import Recorder

    what = "console steps requested (guided)" if outcome == REQUESTED else "console steps seen in live (verified)"
    body = "\n".join([*([message, ""] if message else []), *numbered(steps)])
    with Recorder(engine.root, engine.out.note) as records:
        records.flush()
        records.done(None, Entry(env, revision, outcome, actor, ticket, f"apply {env}: {what}", body))


def _open_request(engine: Engine, env: str, steps: Sequence[Step]) -> str | None:
    """The sha of the environment's last record when it is a request for these very steps, else None."""
    from reconciler import git

    records = git.read_records(engine.root, environment=env)
    if not records or records[-1].outcome != REQUESTED:
        return None
    last = records[-1]
    return last.sha if last.body.rstrip("\n").endswith("\n".join(numbered(steps))) else None


def _verify_earlier(engine: Engine, env: str, revision: str | None, actor: str, ticket: str | None) -> None:
    """An earlier guided apply's request that live now shows done is recorded verified."""
    from reconciler import git

    records = git.read_records(engine.root, environment=env)
    if not records or records[-1].outcome != REQUESTED:
        return
    earlier = records[-1]
    from reconciler.activity import Entry
    from reconciler.engine.records import Recorder

    body = f"The steps requested in {earlier.sha[:12]} are seen in live.\n\n{earlier.body}"
    with Recorder(engine.root, engine.out.note) as kept:
        kept.flush()
        kept.done(None, Entry(env, revision, APPLIED, actor, ticket or earlier.ticket,
                              f"apply {env}: console steps seen in live (verified)", body))
    engine.out.emit(f"{env}: the requested console steps are done; recorded as applied (verified)")
