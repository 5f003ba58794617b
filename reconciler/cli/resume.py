"""EDGE: `reconciler resume ENV` — end the open pause now: set its window's end, commit, apply.

The counterpart of cli/pause.py (which holds the shared steps). The end is now, floored to the
minute (with seconds when the pause began in this same minute), so the window is over at the
instant the apply plans for and the schedules come back on.
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import engine, resolve_root, root_option


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
    return engine(root).resume(env, at_text=at_text)
