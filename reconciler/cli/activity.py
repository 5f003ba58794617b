"""EDGE: `reconciler activity push [REMOTE]` — put this run's records on the remote's activity branch
(engine/activity.py): replayed on the remote's records when another run pushed first, never forced."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import emit, engine, resolve_root, root_option


@click.group(
    "activity",
    epilog="Example: reconciler activity push origin",
    short_help="Push the activity branch, replaying this run's records if needed.",
)
def command() -> None:
    """The activity branch `reconciler/activity`, where every apply, pause, resume, import and merge is recorded."""


@command.command("push", epilog="Example: reconciler activity push   (in CI, after apply)",
                 short_help="Push reconciler/activity; replay this run's records if another run pushed first.")
@click.argument("remote", required=False, default="origin", metavar="[REMOTE]")
@root_option
def push_command(remote: str, root: str | None) -> int:
    """Push the branch reconciler/activity to REMOTE (default: origin).

    When another run pushed first, this run's records are replayed on top of the remote's (a record the
    remote holds already is not written twice) and the push is tried again. It is never forced.
    """
    return run_push(resolve_root(root), remote)


def run_push(root: Path, remote: str) -> int:
    result = engine(root).push_activity(remote)
    if not result.records:
        emit(f"nothing to push: {result.reason}")
        return 0
    plural = "s" if result.records != 1 else ""
    line = f"pushed {result.records} record{plural} of reconciler/activity to {remote}"
    if result.replayed:
        line += " (replayed on the records another run pushed first)"
    if result.skipped:
        line += f"; {result.skipped} the remote held already, not written twice"
    emit(line)
    return 0
