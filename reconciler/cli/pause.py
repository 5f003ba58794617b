"""EDGE: `reconciler pause ENV --reason R` — an unplanned outage: write a window that starts now, commit, apply.

The window goes into ENV's own maintenance.yaml (made when missing), comments and layout kept.
An open-ended pause is written with the far end `OPEN_END` and a comment saying so; `resume`
(cli/resume.py) sets its end to the moment of the resume. A pause window is one whose id starts
with `pause-`; one active now is "open". The commit holds only that file; the apply is the
ordinary one (`cli/apply.run_apply`), at the same instant, so the paused schedules go off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import click

from reconciler.cli.options import emit, instant, note, resolve_root, root_option
from reconciler.errors import ConfigError, GitError, UsageError
from reconciler.model import SCHEDULES, EnvironmentSpec, Kind

PREFIX = "pause-"
OPEN_END = "2099-12-31T23:59"
OPEN_COMMENT = "open: `reconciler resume` sets the end"


def now() -> datetime:
    """The moment of the pause (a function, so tests can fix it)."""
    return datetime.now(UTC)


@click.command(
    epilog='Example: reconciler pause production --reason "Banner is down" --ticket SUP-1300',
    short_help="Pause merges now (an unplanned outage): write a window, commit, apply.",
)
@click.argument("env", metavar="ENV")
@click.option("--reason", required=True, metavar="R", help="Why merges are paused (goes to the activity log).")
@click.option("--ticket", default=None, metavar="T", help="The support ticket, e.g. SUP-1300.")
@click.option("--until", "until", default=None, metavar="T",
              help="When the pause ends (ISO 8601; default: open until `reconciler resume`).")
@click.option("--at", "at_text", default=None, hidden=True, help="Act as if now were T (for tests and rehearsals).")
@root_option
def command(env: str, reason: str, ticket: str | None, until: str | None, at_text: str | None,
            root: str | None) -> int:
    """Pause ENV's nightly and real-time merges from now: a maintenance window in its YAML."""
    return run_pause(resolve_root(root), env, reason=reason, ticket=ticket, until=until, at_text=at_text)


def run_pause(root: Path, env: str, *, reason: str, ticket: str | None = None, until: str | None = None,
              at_text: str | None = None) -> int:
    from reconciler.core.rollover import Changes, Edit, Flow

    if not reason.strip():
        raise UsageError("--reason must say why merges are paused")
    target = prepare(root, env, "pause", at_text)
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
    finish(root, target, changes, done, (subject, body, ticket), "paused")
    return 0


# --- shared with resume ---------------------------------------------------------------------------


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


def prepare(root: Path, env: str, action: str, at_text: str | None) -> Target:
    """Every check that comes before writing: environment, YAML, work tree, open pause."""
    from reconciler import gitwork
    from reconciler.cli.plan import refuse_on_errors
    from reconciler.core.rollover import Flow
    from reconciler.core.timeline import Timeline, get_zone
    from reconciler.edit import read_plain
    from reconciler.repo import load_repository

    repo = load_repository(root)
    repo.select([env])
    tree = gitwork.require_clean(root, f"{action} {env}")
    spec = repo.envs.get(env)
    if spec is None:
        raise ConfigError(f"{env}: its environment.yaml does not load (see `reconciler validate {env}`)")
    tz = get_zone(spec.timezone)
    moment = instant("--at", at_text, tz) if at_text else now()
    refuse_on_errors(root, [env], moment, repo, before=f"{action} {env}")
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


def finish(root: Path, target: Target, changes: Any, done: str, message: tuple[str, str, str | None],
           outcome: str) -> None:
    """Write and check (saying `done`), commit (inside git), record, apply. `message`: subject, body, ticket."""
    from reconciler import edit, gitwork

    env = target.spec.name
    subject, body, ticket = message
    texts = edit.render(root, changes)
    old = edit.write_texts(root, texts)
    _check_written(root, env, target, old)
    emit(done)
    files = [root / rel for rel in texts]
    if target.tree is not None:
        trailers = "\n".join(f"{k}: {v}" for k, v in (("Environment", env), ("Ticket", ticket)) if v)
        try:
            sha = gitwork.commit_files(target.tree, files, f"{subject}\n\n{body}\n\n{trailers}\n")
        except GitError:
            gitwork.unstage(target.tree, files)
            edit.restore(root, old)
            raise
        emit(f"committed {sha[:12]}: {subject}")
    else:
        emit("no commit was written (not a git repository)")
    _record(root, target, outcome, subject, body, ticket)
    from reconciler.cli.apply import run_apply

    # with --at the apply acts at that same instant: the pause's window is active then
    run_apply(root, [env], yes=True, message=subject, ticket=ticket, moment=target.moment if target.fixed else None)


def _check_written(root: Path, env: str, target: Target, old: Mapping[str, bytes | None]) -> None:
    from reconciler import edit
    from reconciler.cli.validate import collect_problems

    edit.keep_if_valid(root, old, lambda: collect_problems(root, [env], at=target.moment)[0])


def _record(root: Path, target: Target, outcome: str, subject: str, body: str, ticket: str | None) -> None:
    """The pause or resume itself on both activity logs (the apply that follows records itself)."""
    from reconciler import activity
    from reconciler.cli.plan import git_revision
    from reconciler.connectors import get_connector

    actor = activity.actor(root)
    revision = git_revision(root)
    entry = {"kind": "pause" if outcome == "paused" else "resume", "outcome": outcome,
             "at": target.moment.isoformat(), "actor": actor, "revision": revision, "message": subject}
    if ticket:
        entry["ticket"] = ticket
    try:
        get_connector(target.spec, root).append_activity(entry)
    except Exception as e:  # the YAML is committed; the apply below still converges live
        note(f"{target.spec.name}: could not record the {entry['kind']} on the live activity log: {e}")
    try:
        activity.record(root, environment=target.spec.name, revision=revision, outcome=outcome, actor=actor,
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

