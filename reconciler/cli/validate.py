"""EDGE: `reconciler validate` — schemas, then policy rules, every problem in one run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import click

from reconciler.cli.options import emit, fleet_options, format_option, note, resolve_root, root_option
from reconciler.model import Problem, Severity


@click.command(
    epilog="Example: reconciler validate production staging --strict",
    short_help="Check the YAML against the schemas and the policy rules.",
)
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@format_option("text", "json")
@fleet_options
@root_option
def command(envs: tuple[str, ...], strict: bool, fmt: str, parallel: int | None,
            shard: tuple[int, int] | None, root: str | None) -> int:
    """Check the YAML of ENV (default: every environment): JSON Schemas, then the policy rules.

    Each problem is printed as FILE:LINE:COL: SEVERITY[RULE]: message. Exits 1 on any error.
    """
    return run_validate(resolve_root(root), envs, strict=strict, fmt=fmt, shard=shard)


def run_validate(root: Path, envs: Sequence[str], *, strict: bool = False, fmt: str = "text",
                 shard: tuple[int, int] | None = None, at: datetime | None = None) -> int:
    from reconciler.engine.selection import collect_problems

    problems, selected = collect_problems(root, envs, shard=shard, at=at)
    if strict:
        problems = [_as_error(p) for p in problems]
    if fmt == "json":
        emit(json.dumps([p.data for p in problems], indent=2))
    else:
        for problem in problems:
            emit(str(problem))
    errors = sum(p.severity is Severity.ERROR for p in problems)
    warnings = len(problems) - errors
    note(_summary(selected, errors, warnings))
    return 1 if errors else 0


def _as_error(problem: Problem) -> Problem:
    return Problem(problem.file, problem.line, problem.column, Severity.ERROR, problem.rule, problem.message)


def _summary(selected: Sequence[str], errors: int, warnings: int) -> str:
    count = f"{len(selected)} environment{'s' if len(selected) != 1 else ''}"
    if not errors and not warnings:
        return f"{count} valid"
    return f"{count}: {errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
