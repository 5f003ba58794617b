"""The pause and resume use cases: an unplanned outage: write a window that starts now, commit, apply.

The window goes into ENV's own maintenance.yaml (made when missing), comments and layout kept.
An open-ended pause is written with the far end `OPEN_END` and a comment saying so; `resume`
sets its end to the moment of the resume. A pause window is one whose id starts
with `pause-`; one active now is "open". The commit holds only that file; the apply is the
ordinary one (`cli/apply.run_apply`), at the same instant, so the paused schedules go off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.engine.selection import instant
from reconciler.errors import ConfigError, GitError, UsageError
from reconciler.model import SCHEDULES, EnvironmentSpec, Kind

if TYPE_CHECKING:
    from reconciler.engine import Engine

PREFIX = "pause-"
OPEN_END = "2099-12-31T23:59"
OPEN_COMMENT = "open: `reconciler resume` sets the end"


def pause(engine: Engine, env: str, *, reason: str, ticket: str | None = None, until: str | None = None,
          at_text: str | None = None) -> int:
    """Write a window that starts now into ENV's maintenance.yaml, commit it, record, apply."""
    from reconciler.core.rollover import Changes, Edit, Flow

    if not reason.strip():
        raise UsageError("--reason must say why merges are paused")
    target = prepare(engine, env, "pause", at_text)
    if target.open is not None:
        raise UsageError(f"{env}: pause {target.open['id']} is already open; `reconciler resume {env}` ends it")
    end = OPEN_END
    if until is not None:
        end_at = instant("--until", until, target.tz)
        if end_at <= target.moment:
            raise UsageError(f"--until {until} is not after now ({local_text(target.moment, target.tz)})")
        end = local_text(end_at, target.tz, seconds=end_at.second != 0)
    window: dict[str, Any] = {"id": new_id(target), "reason": reason.strip()}
    if ticket:
        window["ticket"] = ticket
    window.update({"start": local_text(target.moment, target.tz), "end": end, "pause": Flow(SCHEDULES)})
    changes = Changes()
    index = len(target.windows)
    changes.add(target.rel, Edit("append_item", ("windows",), window))
    if end == OPEN_END:
        changes.add(target.rel, Edit("comment", ("windows", index, "end"), OPEN_COMMENT))
    if not target.exists:
        changes.create[target.rel] = Kind.MAINTENANCE
        for i, inherited in enumerate(target.windows):  # lists replace: keep what _base/ gave this environment
            changes.files[target.rel].insert(i, Edit("append_item", ("windows",), inherited))
    until_text = "until resumed" if end == OPEN_END else f"until {end}"
    done = (f"{env}: pausing nightly and realtime merges from {window['start']} {until_text} "
            f"(window {window['id']} in {target.rel})")
    subject = f"pause {env}: {reason.strip()}"
    body = f"Window {window['id']} in {target.rel}: from {window['start']} {until_text}."
    finish(engine, target, changes, done, (subject, body, ticket), "paused")
    return 0


def resume(engine: Engine, env: str, *, at_text: str | None = None) -> int:
    """End the open pause now: set its window's end (floored to the minute), commit, record, apply."""
    from reconciler.core.rollover import Changes, Edit
    from reconciler.core.timeline import parse_instant

    target = prepare(engine, env, "resume", at_text)
    if target.open is None or target.open_index is None:
        raise UsageError(f"{env}: no pause is open; nothing to resume")
    if not target.exists:
        raise UsageError(f"{env}: the open pause {target.open['id']} comes from _base/; end it there by hand")
    window, index = target.open, target.open_index
    start = parse_instant(str(window["start"]), target.tz, strict=False)
    end = local_text(target.moment, target.tz)
    if parse_instant(end, target.tz, strict=False) <= start:
        end = local_text(target.moment, target.tz, seconds=True)
    changes = Changes()
    if parse_instant(end, target.tz, strict=False) <= start:
        # resumed the instant it began: the pause never held, so its window goes
        changes.add(target.rel, Edit("remove_item", ("windows", index)))
        done = f"{env}: removing pause {window['id']}, which has not begun to hold"
    else:
        changes.add(target.rel, Edit("drop_comment", ("windows", index, "end")))
        changes.add(target.rel, Edit("set", ("windows", index, "end"), end))
        done = f"{env}: resuming merges: pause {window['id']} ends at {end} (in {target.rel})"
    ticket = window.get("ticket")
    subject = f"resume {env}: {window.get('reason') or window['id']}"
    body = f"Window {window['id']} in {target.rel}: ends at {end}."
    finish(engine, target, changes, done, (subject, body, str(ticket) if ticket else None), "resumed")
    return 0


# --- the steps of both ---------------------------------------------------------------------------


@dataclass
class Target:
    """The environment a pause or resume edits, the moment, and its own maintenance file."""

    spec: EnvironmentSpec
    moment: datetime
    tz: tzinfo
    rel: str
    exists: bool
    windows: list[Mapping[str, Any]]
    """The windows the file holds (or, when it does not exist, the ones _base/ gives)."""
    open: Mapping[str, Any] | None
    open_index: int | None
    tree: Any
    fixed: bool
    """The moment came from --at: the apply must act at it too."""


def prepare(engine: Engine, env: str, action: str, at_text: str | None) -> Target:
    """Every check that comes before writing: environment, YAML, work tree, open pause."""
    from reconciler import git
    from reconciler.core.rollover import Flow
    from reconciler.core.timeline import Timeline, get_zone
    from reconciler.edit import read_plain
    from reconciler.engine.selection import refuse_on_errors
    from reconciler.repo import load_repository

    root = engine.root
    repo = load_repository(root)
    repo.select([env])
    tree = git.require_clean(root, f"{action} {env}")
    spec = repo.envs.get(env)
    if spec is None:
        raise ConfigError(f"{env}: its environment.yaml does not load (see `reconciler validate {env}`)")
    tz = get_zone(spec.timezone)
    moment = instant("--at", at_text, tz) if at_text else engine.now()
    refuse_on_errors(root, [env], moment, repo, before=f"{action} {env}", note=engine.out.note)
    rel = f"environments/{env}/{Kind.MAINTENANCE.filename}"
    own = read_plain(root, rel, Kind.MAINTENANCE)
    if own.data is not None:
        windows = list(own.data.get("windows") or [])
    else:
        inherited = (spec.data(Kind.MAINTENANCE) or {}).get("windows") or []
        windows = [{k: Flow(v) if isinstance(v, list | tuple) else v for k, v in w.items()} for w in inherited]
    active = {o.window.id for o in Timeline.from_spec(spec).active_windows(moment)}
    found = [(i, w) for i, w in enumerate(windows) if str(w.get("id", "")).startswith(PREFIX) and w["id"] in active]
    index, window = found[-1] if found else (None, None)
    return Target(spec, moment, tz, rel, own.data is not None, windows, window, index, tree, at_text is not None)


def finish(engine: Engine, target: Target, changes: Any, done: str, message: tuple[str, str, str | None],
           outcome: str) -> None:
    """Write and check (saying `done`), commit (inside git), record, apply. `message`: subject, body, ticket."""
    from reconciler import edit, git

    root, out = engine.root, engine.out
    env = target.spec.name
    subject, body, ticket = message
    texts = edit.render(root, changes)
    old = edit.write_texts(root, texts)
    _check_written(root, env, target, old)
    out.emit(done)
    files = [root / rel for rel in texts]
    if target.tree is not None:
        trailers = "\n".join(f"{k}: {v}" for k, v in (("Environment", env), ("Ticket", ticket)) if v)
        try:
            sha = git.commit_files(target.tree, files, f"{subject}\n\n{body}\n\n{trailers}\n")
        except GitError:
            git.unstage(target.tree, files)
            edit.restore(root, old)
            raise
        out.emit(f"committed {sha[:12]}: {subject}")
    else:
        out.emit("no commit was written (not a git repository)")
    _record(engine, target, outcome, subject, body, ticket)
    try:
        # with --at the apply acts at that same instant: the pause's window is active then
        engine.apply([env], yes=True, message=subject, ticket=ticket, moment=target.moment if target.fixed else None)
    finally:
        if target.tree is not None:
            out.note(push_reminder(root, env))


def push_reminder(root: Path, env: str) -> str:
    """The commit is local: a scheduled reconcile applies from the forge's main, without it."""
    from reconciler import git

    branch = git.current_branch(root)
    push = f"git push origin {branch}" if branch else "git push"
    return (f"{env}: push this commit ({push}, or merge it through a pull request) before the next scheduled "
            "reconcile: a run from a checkout without it undoes this change")


def _check_written(root: Path, env: str, target: Target, old: Mapping[str, bytes | None]) -> None:
    from reconciler import edit
    from reconciler.engine.selection import collect_problems

    edit.keep_if_valid(root, old, lambda: collect_problems(root, [env], at=target.moment)[0])


def _record(engine: Engine, target: Target, outcome: str, subject: str, body: str, ticket: str | None) -> None:
    """The pause or resume itself on both activity logs (the apply that follows records itself)."""
    from reconciler import activity, git

    root, note = engine.root, engine.out.note
    actor = activity.actor(root)
    revision = engine.revision()
    entry = {"kind": "pause" if outcome == "paused" else "resume", "outcome": outcome,
             "at": target.moment.isoformat(), "actor": actor, "revision": revision, "message": subject}
    if ticket:
        entry["ticket"] = ticket
    try:
        engine.connect(target.spec, root, writing=True).append_activity(entry)
    except Exception as e:  # the YAML is committed; the apply below still converges live
        note(f"{target.spec.name}: could not record the {entry['kind']} on the live activity log: {e}")
    try:
        git.record(root, environment=target.spec.name, revision=revision, outcome=outcome, actor=actor,
                   ticket=ticket, subject=subject, body=body)
    except GitError as e:
        note(f"{target.spec.name}: no git record was written: {e}")


def new_id(target: Target) -> str:
    """pause-YYYYMMDD-HHMM (local), with -2, -3… when a window already has it."""
    base = PREFIX + target.moment.astimezone(target.tz).strftime("%Y%m%d-%H%M")
    taken = {str(w.get("id")) for w in target.windows}
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def local_text(moment: datetime, tz: tzinfo, *, seconds: bool = False) -> str:
    """YYYY-MM-DDTHH:MM (or with :SS) wall-clock time in tz; minutes are floored, never rounded up."""
    local = moment.astimezone(tz)
    return local.strftime("%Y-%m-%dT%H:%M:%S" if seconds else "%Y-%m-%dT%H:%M")

