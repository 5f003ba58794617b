"""EDGE: `reconciler status` — per environment: revision applied, in sync or not, active windows,
current phases, next transition, open update requests."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.options import (
    emit,
    engine,
    fleet_options,
    format_option,
    refuse_faults,
    resolve_root,
    root_option,
    words,
)

if TYPE_CHECKING:
    from reconciler.core.words import Words


@click.command(
    epilog="Example: reconciler status production --at 2026-11-29T05:00 --format json",
    short_help="Show what is applied, whether live is in sync, and what comes next.",
)
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option("--at", "at_text", metavar="T", default=None,
              help="The instant to report on (ISO 8601; without an offset, the environment's time zone). "
                   "Default: now.")
@format_option("text", "json")
@fleet_options
@root_option
def command(envs: tuple[str, ...], at_text: str | None, fmt: str, parallel: int | None,
            shard: tuple[int, int] | None, root: str | None) -> int:
    """Show the status of ENV (default: every environment)."""
    return run_status(resolve_root(root), envs, at_text=at_text, fmt=fmt, parallel=parallel, shard=shard)


def run_status(root: Path, envs: Sequence[str], *, at_text: str | None = None, fmt: str = "text",
               parallel: int | None = None, shard: tuple[int, int] | None = None) -> int:
    from reconciler.engine.status import FORMAT_VERSION

    run = engine(root)
    at, results = run.status(envs, at_text=at_text, parallel=parallel, shard=shard)
    if fmt == "json":
        emit(json.dumps({"format_version": FORMAT_VERSION, "at": at.isoformat(), "environments": results},
                        indent=2, default=str))
    else:
        emit(_text(results, words(run)))
    faults = {r["name"]: r["error"] for r in results if "error" in r}
    refuse_faults(faults, "read")
    return 0


def _windows(windows: Sequence[Mapping[str, Any]], when: Callable[[str], str]) -> list[str]:
    """One line per open window: its id, why, its ticket and when it ends."""
    if not windows:
        return ["  windows:      none active"]
    lines = []
    for index, w in enumerate(windows):
        why = "; ".join(str(part) for part in (w["reason"], w["ticket"]) if part)
        label = "  windows:      " if index == 0 else "                "
        lines.append(f"{label}{w['id']}{f' ({why})' if why else ''}, until {when(w['ends'])}")
    return lines


def _text(results: Sequence[Mapping[str, Any]], said: Words) -> str:
    """Status for a person, in the registrar's words: terms by name and code, times in the one format."""
    from reconciler.core.words import term_label

    lines: list[str] = []
    for r in results:
        names = said.names(r["name"])

        def when(iso: str, env: str = r["name"]) -> str:
            try:
                return said.time(env, datetime.fromisoformat(iso))
            except ValueError:  # live's own record, not ISO with an offset: shown as it is
                return iso

        lines.append(f"{r['name']}:")
        if "error" in r:
            lines.append(f"  error:        {r['error']}")
            continue
        if r["applied_at"] is None:
            lines.append("  applied:      never")
        else:
            lines.append(f"  applied:      revision {r['revision'] or 'none'} at {when(str(r['applied_at']))}")
        sync = "in sync" if r["in_sync"] else f"not in sync ({r['changes']} changes pending)"
        if r["drift"]:
            sync += f"; drift: {r['drift']} live change{'s' if r['drift'] != 1 else ''} outside git"
        lines.append(f"  state:        {sync}")
        lines += [f"  warning:      {w}" for w in r.get("warnings") or ()]
        lines += _windows(r["windows"], when)
        phases = ", ".join(f"{term_label(term, names)}: {name}" for term, name in sorted(r["phases"].items()))
        lines.append(f"  phases:       {phases or 'none'}")
        nxt = r["next_transition"]
        lines.append(f"  next:         {when(nxt['at'])} {nxt['event']} {_next_id(nxt, names)}" if nxt
                     else "  next:         none")
        reqs = r["open_update_requests"]
        if reqs:
            lines.append("  requests:     " + ", ".join(f"{q['id']} ({q['status']})" for q in reqs))
        else:
            lines.append("  requests:     none open")
    return "\n".join(lines) + "\n"


def _next_id(nxt: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """A term's transition names the term; a window's or a phase's, its id."""
    from reconciler.core.words import term_label

    return term_label(nxt["id"], names) if str(nxt["event"]).startswith("term-") else str(nxt["id"])
