"""EDGE: `reconciler validate` — schemas, then policy rules, every problem in one run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import click

from reconciler.cli.options import emit, fleet_options, format_option, note, resolve_root, root_option
from reconciler.model import Problem, Severity

LIVE_NOT_CONFIGURED = 3
"""`--require-live`'s exit code when every selected environment is on the embedded store: not an error (1)
and not "changes" (2), so a CI job can stop early, successfully, and say why."""


@click.command(
    epilog="Example: reconciler validate production staging --strict   |   "
           "reconciler validate --format github --require-live   (in CI)",
    short_help="Check the YAML against the schemas and the policy rules.",
)
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--require-live", is_flag=True,
              help="Exit 3 when every selected environment is on the embedded store (live.connector: embedded, "
                   "the default), a local file that a CI runner does not keep: CI then has nothing to apply.")
@click.option("--list", "listing", type=click.Choice(["writable", "read-only"]), default=None,
              help="Print instead the selected environments (one a line) that `apply` writes to (writable), or "
                   "whose connector cannot write, applied by a person with `apply --guided` (read-only); "
                   "problems go to stderr.")
@format_option("text", "json", "github")
@fleet_options
@root_option
def command(envs: tuple[str, ...], strict: bool, require_live: bool, listing: str | None, fmt: str,
            parallel: int | None, shard: tuple[int, int] | None, root: str | None) -> int:
    """Check the YAML of ENV (default: every environment): JSON Schemas, then the policy rules.

    Each problem is printed as FILE:LINE:COL: SEVERITY[RULE]: message (`--format github`: as a GitHub
    workflow command, `::error file=…,line=…,col=…,title=RULE::message`, shown inline on the pull
    request). Exits 1 on any error; with --require-live, 3 when no selected environment's live side is
    configured (and no error). `--list writable|read-only` prints the environments `apply` writes to, or
    those only `apply --guided` can apply (a read-only connector), instead of the problems (then on stderr).
    """
    return run_validate(resolve_root(root), envs, strict=strict, fmt=fmt, shard=shard, require_live=require_live,
                        listing=listing)


def run_validate(root: Path, envs: Sequence[str], *, strict: bool = False, fmt: str = "text",
                 shard: tuple[int, int] | None = None, at: datetime | None = None, require_live: bool = False,
                 listing: str | None = None) -> int:
    from reconciler.engine.validation import path_prefix, validate

    found = validate(root, envs, shard=shard, at=at)
    problems = [_as_error(p) for p in found.problems] if strict else found.problems
    if listing is not None:
        for problem in problems:
            note(str(problem))
    elif fmt == "json":
        emit(json.dumps([p.data for p in problems], indent=2))
    elif fmt == "github":
        prefix = path_prefix(root)
        for problem in problems:
            emit(problem.github(prefix))
    else:
        for problem in problems:
            emit(str(problem))
    errors = sum(p.severity is Severity.ERROR for p in problems)
    warnings = len(problems) - errors
    note(_summary(found.selected, errors, warnings))
    if errors:
        return 1
    if require_live and not found.live_configured:
        note(_not_configured(found.embedded))
        return LIVE_NOT_CONFIGURED
    if listing is not None:
        read_only = set(found.read_only)
        for name in found.selected:
            if (name in read_only) is (listing == "read-only"):
                emit(name)
    return 0


def _as_error(problem: Problem) -> Problem:
    return Problem(problem.file, problem.line, problem.column, Severity.ERROR, problem.rule, problem.message)


def _summary(selected: Sequence[str], errors: int, warnings: int) -> str:
    count = f"{len(selected)} environment{'s' if len(selected) != 1 else ''}"
    if not errors and not warnings:
        return f"{count} valid"
    return f"{count}: {errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"


def _not_configured(embedded: Sequence[str]) -> str:
    if not embedded:
        return "live is not configured: no environment is selected"
    which = f"{embedded[0]} is" if len(embedded) == 1 else f"{', '.join(embedded)} are"
    return (f"live is not configured: {which} on the embedded store (live.connector: embedded, the default), a "
            "local file that a CI runner starts empty and throws away; set live.connector (http, with url, "
            "token_env and read_token_env) in environment.yaml and add the tokens as secrets: see "
            "'Set up on GitHub' in the README")
