"""EDGE: `reconciler plan` — validate, read live per environment, print the changes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.cli.options import (
    emit,
    engine,
    fleet_options,
    format_option,
    note,
    refuse_faults,
    resolve_root,
    root_option,
    use_color,
    words,
)
from reconciler.errors import UsageError


@click.command(
    epilog="Example: reconciler plan production --at 2026-12-05T22:00 --out plan.json --detailed-exitcode",
    short_help="Show the changes that take live to the YAML.",
)
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option("--at", "at_text", metavar="T", default=None,
              help="Plan for this instant (ISO 8601; without an offset, the environment's time zone). Default: now.")
@click.option("--out", "out", metavar="FILE", default=None,
              help="Also write the plan as JSON (with its id and checksum) for `apply --plan`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when there are none.")
@click.option("--base", "base", metavar="REF", default=None,
              help="On a pull request: an environment whose live: settings differ from REF's (e.g. origin/main) "
                   "is planned against REF's YAML, without reading live or any of its tokens.")
@format_option("text", "json", "markdown")
@fleet_options
@root_option
def command(envs: tuple[str, ...], at_text: str | None, out: str | None, detailed_exitcode: bool, base: str | None,
            fmt: str, parallel: int | None, shard: tuple[int, int] | None, root: str | None) -> int:
    """Show the changes that take the live side of ENV (default: every environment) to its YAML."""
    return run_plan(resolve_root(root), envs, at_text=at_text, out=out, detailed_exitcode=detailed_exitcode,
                    fmt=fmt, parallel=parallel, shard=shard, base=base)


def run_plan(root: Path, envs: Sequence[str], *, at_text: str | None = None, out: str | None = None,
             detailed_exitcode: bool = False, fmt: str = "text", parallel: int | None = None,
             shard: tuple[int, int] | None = None, base: str | None = None) -> int:
    from reconciler.core.apply import saved_data
    from reconciler.core.render import plan_json, plan_markdown, plan_text

    run = engine(root)
    plan, faults = run.plan(envs, at_text=at_text, shard=shard, parallel=parallel, base=base)
    if fmt == "json":
        emit(plan_json(plan))
    elif fmt == "markdown":
        emit(plan_markdown(plan, words(run)))
    else:
        emit(plan_text(plan, use_color(), words(run)))
    if out:
        try:
            Path(out).write_text(json.dumps(saved_data(plan), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        except OSError as e:
            raise UsageError(f"--out {out}: cannot write the plan: {e.strerror or e}") from e
        note(f"plan written to {out}")
    refuse_faults(faults)
    return 2 if detailed_exitcode and not plan.is_empty else 0
