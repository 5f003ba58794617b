"""EDGE: `reconciler pause ENV --reason R` — an unplanned outage: a window, a commit, an apply (engine/pause.py)."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import engine, one_line_text, resolve_root, root_option


@click.command(
    epilog='Example: reconciler pause production --reason "Banner is down" --ticket SUP-1300',
    short_help="Pause merges now (an unplanned outage): write a window, commit, apply.",
)
@click.argument("env", metavar="ENV")
@click.option("--reason", required=True, metavar="R", help="Why merges are paused (goes to the activity log).",
              callback=one_line_text)
@click.option("--ticket", default=None, metavar="T", help="The support ticket, e.g. SUP-1300.",
              callback=one_line_text)
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
    return engine(root).pause(env, reason=reason, ticket=ticket, until=until, at_text=at_text)
