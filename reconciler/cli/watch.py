"""EDGE: `reconciler watch` — reconciles continuously, acting at each window boundary on time (engine/watch.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.cli.options import engine, resolve_root, root_option
from reconciler.engine.watch import DEFAULT_INTERVAL_S


@click.command(
    epilog="Example: reconciler watch production --interval 120",
    short_help="Reconcile continuously, acting at each window boundary on time.",
)
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_INTERVAL_S,
              show_default=True, metavar="SECONDS",
              help="Apply at least this often, putting back what moved in live (a drift check).")
@click.option("--max-cycles", type=click.IntRange(min=1), default=None, hidden=True,
              help="Stop after this many cycles (for tests).")
@root_option
def command(envs: tuple[str, ...], interval: float, max_cycles: int | None, root: str | None) -> int:
    """Apply ENV (default: every environment) at each transition of its timeline and every interval.

    Logs one line per apply to stderr. Stops on SIGTERM or Ctrl-C after the apply in flight.
    """
    return run_watch(resolve_root(root), envs, interval=interval, max_cycles=max_cycles)


def run_watch(root: Path, envs: Sequence[str], *, interval: float = DEFAULT_INTERVAL_S,
              max_cycles: int | None = None) -> int:
    return engine(root).watch(envs, interval=interval, max_cycles=max_cycles)
