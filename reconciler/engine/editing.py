"""The YAML edits that go to a pull request (term roll and expire here; promote): refused while the repository
does not validate, kept only if the result validates, reported file by file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.engine.selection import fleet_instant
from reconciler.errors import UsageError
from reconciler.model import BASE_FOLDER, Kind

if TYPE_CHECKING:
    from reconciler.core.rollover import Changes, YamlFile
    from reconciler.engine import Engine
    from reconciler.repo import Repository

ROLLOVER_KINDS = (Kind.TERMS, Kind.MERGE_SETTINGS, Kind.PHASES)


def refuse_errors(root: Path, repo: Repository, note: Callable[[str], None]) -> None:
    """Refuse to edit a repository that does not validate."""
    from reconciler.engine.selection import refuse_on_errors

    refuse_on_errors(root, [], None, repo, before="editing it", note=note)


def write_checked(root: Path, changes: Changes) -> list[str]:
    """Write the changes; if the result does not validate, put every file back and refuse."""
    from reconciler import edit
    from reconciler.engine.selection import collect_problems

    texts = edit.render(root, changes)
    if not texts:
        return []
    old = edit.write_texts(root, texts)
    edit.keep_if_valid(root, old, lambda: collect_problems(root, [])[0])
    return list(texts)


def report(changes: Changes, written: Sequence[str], emit: Callable[[str], None]) -> None:
    for rel in written:
        for edit in changes.files.get(rel, []):
            if edit.note:
                emit(f"  {rel}: {edit.note}")
    count = len(written)
    emit(f"{count} file{'s' if count != 1 else ''} changed, not committed; review with `git diff`, "
         "then open a pull request")


def roll(engine: Engine, new: str, *, like: str | None = None, name: str | None = None, start: str | None = None,
         end: str | None = None) -> int:
    """Add term NEW to Terms, and to every merge scope and phase set that holds OLD (`like`)."""
    from reconciler.core import rollover
    from reconciler.repo import load_repository

    root, emit = engine.root, engine.out.emit
    repo = load_repository(root)
    refuse_errors(root, repo, engine.out.note)
    files = rollover_files(root, repo)
    term = rollover.new_term(files, new, like, name, _day("--start", start), _day("--end", end))
    changes = rollover.roll(files, term)
    written = write_checked(root, changes)
    emit(f"term roll {term.code} ({term.name}, {term.start}..{term.end}, like {term.like}):")
    report(changes, written, emit)
    return 0


def expire(engine: Engine, *, at_text: str | None = None) -> int:
    """Remove from every merge scope every term whose last day is before T (default: now)."""
    from reconciler.core import rollover
    from reconciler.repo import load_repository

    root, emit = engine.root, engine.out.emit
    repo = load_repository(root)
    refuse_errors(root, repo, engine.out.note)
    files = rollover_files(root, repo)
    ended = ended_by_file(repo, at_text, engine.now())
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


def ended_by_file(repo: Repository, at_text: str | None, moment: datetime) -> dict[str, set[str]]:
    """MergeSettings file → the terms ended for the environments reading it (at T, in each one's zone)."""
    from reconciler.core import rollover
    from reconciler.core.timeline import get_zone

    base = f"environments/{BASE_FOLDER}/{Kind.MERGE_SETTINGS.filename}"
    found: dict[str, set[str]] = {base: set()}
    at = fleet_instant("--at", at_text, list(repo.envs.values())) if at_text else moment
    for name, spec in repo.envs.items():
        zone = get_zone(spec.timezone)
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
