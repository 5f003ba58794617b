"""EDGE: `reconciler drift` — live changes made outside git since the last apply (engine/drift.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
    from reconciler.core.words import TermNames, Words


@click.command(
    epilog="Example: reconciler drift production --format json",
    short_help="Show live changes made outside git since the last apply.",
)
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@format_option("text", "json")
@fleet_options
@root_option
def command(envs: tuple[str, ...], fmt: str, parallel: int | None, shard: tuple[int, int] | None,
            root: str | None) -> int:
    """Show what changed in the live side of ENV (default: every environment) since the last apply.

    Exits 2 when there is drift, 0 when there is none.
    """
    return run_drift(resolve_root(root), envs, fmt=fmt, parallel=parallel, shard=shard)


def run_drift(root: Path, envs: Sequence[str], *, fmt: str = "text", parallel: int | None = None,
              shard: tuple[int, int] | None = None) -> int:
    from reconciler.engine.drift import FORMAT_VERSION

    run = engine(root)
    results = run.drift(envs, parallel=parallel, shard=shard)
    if fmt == "json":
        emit(json.dumps({"format_version": FORMAT_VERSION, "environments": results}, indent=2, default=str))
    else:
        emit(_text(results, words(run)))
    faults = {r["name"]: r["error"] for r in results if "error" in r}
    refuse_faults(faults, "read")
    return 2 if any(r["drift"] for r in results) else 0


def _text(results: Sequence[Mapping[str, Any]], said: Words) -> str:
    lines: list[str] = []
    for result in results:
        name = result["name"]
        since = _when(result["applied"].get("at"), name, said) if result.get("applied") else ""
        if "error" in result:
            lines.append(f"{name}: not read: {result['error']}")
        elif result["applied"] is None:
            lines.append(f"{name}: never applied; nothing to compare")
        elif not result["drift"]:
            lines.append(f"{name}: no drift since the apply of {since}")
        else:
            count = len(result["drift"])
            lines.append(f"{name}: {count} change{'s' if count != 1 else ''} outside git since the apply of "
                         f"{since}")
            lines += [f"  {_line(item, said.names(name))}" for item in result["drift"]]
        lines += [f"  warning: {w}" for w in result.get("warnings") or ()]
    return "\n".join(lines) + "\n"


def _when(iso: Any, env: str, said: Words) -> str:
    """The apply's instant in the one format, in the environment's zone; live's record as it is otherwise."""
    try:
        return said.time(env, datetime.fromisoformat(str(iso)))
    except ValueError:
        return str(iso)


def _line(item: Mapping[str, Any], names: TermNames) -> str:
    """A drifted setting in the plan's words and symbols (+ appeared in live, - gone from it, ~ changed)."""
    from reconciler.core.plan import Action, Change
    from reconciler.core.render import change_line

    path, before, after = str(item["path"]), item["before"], item["after"]
    if before is None:
        return change_line(Change(Action.ADD, path, value=after), names)
    if after is None:
        return change_line(Change(Action.REMOVE, path, value=before), names)
    return change_line(Change(Action.CHANGE, path, before=before, after=after), names)
