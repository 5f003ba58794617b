"""EDGE: `reconciler resume ENV` — end the open pause now: set its window's end, commit, apply.

The counterpart of cli/pause.py (which holds the shared steps). The end is now, floored to the
minute (with seconds when the pause began in this same minute), so the window is over at the
instant the apply plans for and the schedules come back on.
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import resolve_root, root_option
from reconciler.errors import UsageError


@click.command(
    epilog="Example: reconciler resume production",
    short_help="End the open pause now: close its window, commit, apply.",
)
@click.argument("env", metavar="ENV")
@click.option("--at", "at_text", default=None, hidden=True, help="Act as if now were T (for tests and rehearsals).")
@root_option
def command(env: str, at_text: str | None, root: str | None) -> int:
    """Resume ENV's merges: the open pause window ends now."""
    return run_resume(resolve_root(root), env, at_text=at_text)


def run_resume(root: Path, env: str, *, at_text: str | None = None) -> int:
    from reconciler.cli.pause import finish, local_text, prepare
    from reconciler.core.rollover import Changes, Edit
    from reconciler.core.timeline import parse_instant

    target = prepare(root, env, "resume", at_text)
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
    finish(root, target, changes, done, (subject, body, str(ticket) if ticket else None), "resumed")
    return 0
