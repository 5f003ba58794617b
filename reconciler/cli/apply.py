"""EDGE: `reconciler apply` — plan at now (or load a saved plan), check it, lock, apply."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.cli.options import engine, fleet_options, one_line_text, resolve_root, root_option
from reconciler.errors import ReconcilerError, UsageError


@click.command(
    epilog="Example: reconciler apply staging --yes   |   reconciler apply --plan plan.json",
    short_help="Apply the plan to the live side.",
)
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option("--plan", "plan_file", metavar="FILE", default=None,
              help="Apply this saved plan (from `plan --out`); refused if stale or edited.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed for a protected environment).")
@click.option("--force", is_flag=True, help="Apply even when the safety checks refuse the removals.")
@click.option("--message", metavar="TEXT", default=None, help="A note recorded with the apply in the activity log.",
              callback=one_line_text)
@click.option("--ticket", metavar="ID", default=None, help="The ticket this apply answers to, recorded with it.",
              callback=one_line_text)
@click.option("--guided", is_flag=True,
              help="For a platform this tool cannot write to: print the console steps, record the request, "
                   "then watch live until they are done.")
@click.option("--no-wait", is_flag=True, help="With --guided: print and record the request, then exit 2.")
@click.option("--wait-timeout", metavar="D", default="30m", show_default=True,
              help="With --guided: how long to watch live for the steps (e.g. 30m, 2h).")
@fleet_options
@root_option
def command(envs: tuple[str, ...], plan_file: str | None, yes: bool, force: bool, message: str | None,
            ticket: str | None, guided: bool, no_wait: bool, wait_timeout: str, parallel: int | None,
            shard: tuple[int, int] | None, root: str | None) -> int:
    """Apply the changes that take the live side of ENV (default: every environment) to its YAML."""
    if shard and plan_file:
        raise UsageError("--shard selects environments to plan; a saved plan (--plan) already names them")
    if guided:
        return run_guided(resolve_root(root), envs, no_wait=no_wait, wait_timeout=wait_timeout, ticket=ticket,
                          message=message, plan_file=plan_file)
    if no_wait:
        raise UsageError("--no-wait goes with --guided")
    return run_apply(resolve_root(root), envs, plan_file=plan_file, yes=yes, force=force, message=message,
                     ticket=ticket, parallel=parallel, shard=shard)


def run_apply(root: Path, envs: Sequence[str], *, plan_file: str | None = None, yes: bool = False,
              force: bool = False, message: str | None = None, ticket: str | None = None,
              parallel: int | None = None, shard: tuple[int, int] | None = None) -> int:
    """Plan at now and apply, or apply a saved plan."""
    return engine(root).apply(envs, plan_file=plan_file, yes=yes, force=force, message=message, ticket=ticket,
                              parallel=parallel, shard=shard)


def run_guided(root: Path, envs: Sequence[str], *, no_wait: bool, wait_timeout: str, ticket: str | None,
               message: str | None, plan_file: str | None = None) -> int:
    """apply --guided: the console steps, the request recorded, then live watched until they are done."""
    from reconciler.core.clock import parse_duration
    from reconciler.engine.guided import Guide

    if plan_file:
        raise UsageError("--guided plans at now; it does not take a saved plan (--plan)")
    try:
        timeout = parse_duration(wait_timeout).total_seconds()
    except ReconcilerError as e:
        raise UsageError(f"--wait-timeout: {e}") from e
    guide = Guide(wait=not no_wait, timeout_s=timeout, ticket=ticket, message=message)
    return engine(root).guided(envs, guide)
