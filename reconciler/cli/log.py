"""EDGE: `reconciler log` — the activity log from git: what changed, who, why (engine/log.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import click

from reconciler.cli.options import emit, engine, format_option, resolve_root, root_option
from reconciler.cli.options import words as options_words
from reconciler.core.history import SettingChange
from reconciler.core.words import NO_WORDS, TermNames, Words, local_time, term_label
from reconciler.engine.log import Entry

SUMMARY_OVER = 12
"""A change list longer than this is cut in the text output (json has it all)."""


@click.command(
    epilog="Example: reconciler log production --setting schedule.realtime --since 2026-11-01",
    short_help="The activity log from git: what changed, who, why.",
)
@click.argument("env", required=False, metavar="[ENV]")
@click.option("--setting", metavar="PATH", default=None,
              help="Follow one setting across history, e.g. schedule.realtime or merges.sections.terms.")
@click.option("--since", metavar="T", default=None, help="Only entries at or after this ISO 8601 time (without an "
              "offset: the environment's time zone).")
@format_option("text", "json")
@root_option
def command(env: str | None, setting: str | None, since: str | None, fmt: str, root: str | None) -> int:
    """Show what changed in the settings of ENV (default: every environment), who changed it and why."""
    return run_log(resolve_root(root), env, setting=setting, since=since, fmt=fmt)


def run_log(root: Path, env: str | None, *, setting: str | None = None, since: str | None = None,
            fmt: str = "text") -> int:
    run = engine(root)
    entries = run.log(env, setting=setting, since=since)
    if fmt == "json":
        emit(json.dumps([e.data for e in entries], indent=2, ensure_ascii=False, default=str))
    else:
        words = options_words(run)
        emit("\n".join(_text(e, brief=setting is None, words=words) for e in entries) if entries else "no entries")
    return 0


def _text(entry: Entry, brief: bool = True, words: Words = NO_WORDS) -> str:
    at = words.time(entry.environment, entry.at) if entry.environment in words.zones else local_time(entry.at, UTC)
    names = words.names(entry.environment)
    tags = ", ".join(t for t in (entry.outcome, entry.ticket) if t)
    head = f"{at}  {entry.kind} {entry.sha[:12]}  {entry.environment}  by {entry.who}"
    lines = [head + (f"  [{tags}]" if tags else ""), f"    {entry.message}"]
    if entry.unreadable:
        lines.append(f"    {entry.unreadable}")
    if brief and len(entry.changes) > SUMMARY_OVER and all(c.before is None for c in entry.changes):
        # an environment's first revision declares everything; one line says so
        lines.append(f"    + {len(entry.changes)} settings declared (see --setting PATH or --format json)")
    else:
        lines += [f"    {change_text(c, names)}" for c in entry.changes]
    shown = entry.details[:SUMMARY_OVER] if brief else entry.details
    lines += [f"    {line}" for line in shown]
    if len(shown) < len(entry.details):
        lines.append(f"    … and {len(entry.details) - len(shown)} more (see --format json)")
    return "\n".join(lines) + "\n"


def change_text(change: SettingChange, names: TermNames | None = None) -> str:
    def shown(value: Any) -> str:
        return term_label(value, names or {}) if change.path.endswith(".terms") else str(value)

    if change.is_set and change.before is not None and change.after is not None:
        moved = [f"+{shown(v)}" for v in change.added] + [f"-{shown(v)}" for v in change.removed]
        return f"~ {change.path}: {' '.join(moved)}"
    if change.before is None:
        return f"+ {change.path}: {_show(change.after)}"
    if change.after is None:
        return f"- {change.path} (was {_show(change.before)})"
    return f"~ {change.path}: {_show(change.before)} → {_show(change.after)}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence | Mapping):
        return json.dumps(value, ensure_ascii=False, default=str)
    return json.dumps(value, default=str)
