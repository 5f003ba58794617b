"""EDGE: `reconciler term roll NEW` / `term expire` — edit the YAML of every environment for a rollover.

The edits are left uncommitted, ready for a pull request; the decisions are `core.rollover`'s,
the comment-keeping writes `reconciler.edit`'s. The result must validate, or nothing stays written.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli.options import emit, instant, note, resolve_root, root_option
from reconciler.engine.editing import refuse_errors, report, write_checked
from reconciler.errors import UsageError
from reconciler.model import BASE_FOLDER, Kind

if TYPE_CHECKING:
    from reconciler.core.rollover import YamlFile
    from reconciler.repo import Repository

ROLLOVER_KINDS = (Kind.TERMS, Kind.MERGE_SETTINGS, Kind.PHASES)


def now() -> datetime:
    """The moment of `term expire` (a function, so tests can fix it)."""
    return datetime.now(UTC)


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
    from reconciler.core import rollover
    from reconciler.repo import load_repository

    repo = load_repository(root)
    refuse_errors(root, repo, note)
    files = rollover_files(root, repo)
    term = rollover.new_term(files, new, like, name, _day("--start", start), _day("--end", end))
    changes = rollover.roll(files, term)
    written = write_checked(root, changes)
    emit(f"term roll {term.code} ({term.name}, {term.start}..{term.end}, like {term.like}):")
    report(changes, written, emit)
    return 0


def run_expire(root: Path, *, at_text: str | None = None) -> int:
    from reconciler.core import rollover
    from reconciler.repo import load_repository

    repo = load_repository(root)
    refuse_errors(root, repo, note)
    files = rollover_files(root, repo)
    ended = ended_by_file(repo, at_text)
    changes = rollover.expire(files, ended)
    written = write_checked(root, changes)
    if not written:
        emit("term expire: no merge scope holds an ended term; nothing written")
        return 0
    emit("term expire:")
    report(changes, written, emit)
    return 0


def rollover_files(root: Path, repo: Repository) -> list[YamlFile]:
    """Every Terms, MergeSettings and Phases file, `_base/` first."""
    from reconciler.edit import read_plain

    found = []
    for folder in (BASE_FOLDER, *repo.folders):
        for kind in ROLLOVER_KINDS:
            rel = f"environments/{folder}/{kind.filename}"
            if (root / rel).is_file():
                found.append(read_plain(root, rel, kind))
    return found


def ended_by_file(repo: Repository, at_text: str | None) -> dict[str, set[str]]:
    """MergeSettings file → the terms ended for the environments reading it (at T, in each one's zone)."""
    from reconciler.core import rollover
    from reconciler.core.timeline import get_zone

    base = f"environments/{BASE_FOLDER}/{Kind.MERGE_SETTINGS.filename}"
    found: dict[str, set[str]] = {base: set()}
    moment = now()
    for name, spec in repo.envs.items():
        zone = get_zone(spec.timezone)
        at = instant("--at", at_text, zone) if at_text else moment
        terms = (spec.data(Kind.TERMS) or {}).get("terms") or []
        gone = rollover.ended(terms, at.astimezone(zone).date())
        found[f"environments/{name}/{Kind.MERGE_SETTINGS.filename}"] = gone
        found[base] |= gone
    return found


def _day(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError as e:
        raise UsageError(f"{option} {text}: not a date (YYYY-MM-DD)") from e
