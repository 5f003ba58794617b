"""EDGE: `reconciler merge ENV --term T` — an execute merge: pull one term from the SIS now (engine/merge.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.cli.options import engine, resolve_root, root_option
from reconciler.model import MERGE_TYPES


@click.command(
    epilog="Example: reconciler merge production --term 202720 --types sections,relationships",
    short_help="Execute a merge of one term now, in the SIS's order.",
)
@click.argument("env", metavar="ENV")
@click.option("--term", "term", required=True, metavar="T", help="The term to pull from the SIS.")
@click.option("--types", "types", default=",".join(MERGE_TYPES), show_default=True, metavar="LIST",
              help="Merge types, comma-separated (run in the SIS's order whatever order they are given in).")
@click.option("--send-updates/--no-send-updates", default=None,
              help="Also post the platform's updates to the SIS, or only pull. Default: as each merge type's "
                   "send_updates in the YAML says (and the saved state of TERM's phase on now).")
@click.option("--at", "at_text", default=None, hidden=True, help="Act as if now were T (for tests and rehearsals).")
@root_option
def command(env: str, term: str, types: str, send_updates: bool | None, at_text: str | None,
            root: str | None) -> int:
    """Pull TERM from the SIS into ENV now (courses, sections, relationships; PeopleSoft: sections first)."""
    wanted = [t.strip() for t in types.split(",") if t.strip()]
    return run_merge(resolve_root(root), env, term=term, types=wanted, send_updates=send_updates, at_text=at_text)


def run_merge(root: Path, env: str, *, term: str, types: Sequence[str] = MERGE_TYPES,
              send_updates: bool | None = None, at_text: str | None = None) -> int:
    return engine(root).merge(env, term=term, types=types, send_updates=send_updates, at_text=at_text)
