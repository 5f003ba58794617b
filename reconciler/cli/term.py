"""EDGE: `reconciler term roll NEW` / `term expire` — edit the YAML of every environment for a rollover.

The edits are left uncommitted, ready for a pull request (engine/editing.py; the decisions are
`core.rollover`'s, the comment-keeping writes `reconciler.edit`'s). The result must validate, or
nothing stays written.
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import engine, resolve_root, root_option


@click.group(
    "term",
    epilog="Example: reconciler term roll 202810 --like 202710   |   reconciler term expire",
    short_help="Roll a new term into every environment, or expire ended ones.",
)
def command() -> None:
    """Term rollover: edit the YAML of every environment (left uncommitted, for a pull request)."""


@command.command("roll", epilog="Example: reconciler term roll 202810 --like 202710 && git diff",
                 short_help="Add a new term wherever an old one is.")
@click.argument("new", metavar="NEW")
@click.option("--like", "like", metavar="OLD", default=None,
              help="The term NEW follows (default: the latest term by start date).")
@click.option("--name", "name", metavar="N", default=None, help="NEW's name (default: OLD's with its year + 1).")
@click.option("--start", "start", metavar="D", default=None, help="NEW's first day (default: OLD's a year later).")
@click.option("--end", "end", metavar="D", default=None, help="NEW's last day (default: OLD's a year later).")
@root_option
def roll_command(new: str, like: str | None, name: str | None, start: str | None, end: str | None,
                 root: str | None) -> int:
    """Add term NEW to Terms, and to every merge scope and phase set that holds OLD."""
    return run_roll(resolve_root(root), new, like=like, name=name, start=start, end=end)


@command.command("expire", epilog="Example: reconciler term expire && git diff",
                 short_help="Take ended terms out of every merge scope.")
@click.option("--at", "at_text", metavar="T", default=None,
              help="Expire the terms that ended before this time (ISO 8601; default: now).")
@root_option
def expire_command(at_text: str | None, root: str | None) -> int:
    """Remove from every merge scope every term whose last day is before T."""
    return run_expire(resolve_root(root), at_text=at_text)


def run_roll(root: Path, new: str, *, like: str | None = None, name: str | None = None, start: str | None = None,
             end: str | None = None) -> int:
    from reconciler.engine.editing import roll

    return roll(engine(root), new, like=like, name=name, start=start, end=end)


def run_expire(root: Path, *, at_text: str | None = None) -> int:
    from reconciler.engine.editing import expire

    return expire(engine(root), at_text=at_text)
