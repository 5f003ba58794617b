"""EDGE: `reconciler promote SRC DST` — give DST the term scopes and phases SRC has (merged over _base/).

Written in DST's own files (made when missing), comments kept, left uncommitted for a pull
request; the result must validate, or nothing stays written. Decisions: `core.rollover.promote`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli.options import emit, note, resolve_root, root_option
from reconciler.errors import UsageError
from reconciler.model import BASE_FOLDER, Kind

if TYPE_CHECKING:
    from reconciler.core.rollover import Side, YamlFile
    from reconciler.repo import Repository


@click.command(
    epilog="Example: reconciler promote sandbox staging && git diff environments/staging",
    short_help="Copy term scopes and phases from one environment to another.",
)
@click.argument("src", metavar="SRC")
@click.argument("dst", metavar="DST")
@root_option
def command(src: str, dst: str, root: str | None) -> int:
    """Copy the term scopes (merges.<type>.terms) and phases of SRC into DST's YAML."""
    return run_promote(resolve_root(root), src, dst)


def run_promote(root: Path, src: str, dst: str) -> int:
    from reconciler.core import rollover
    from reconciler.engine.editing import refuse_errors, report, write_checked
    from reconciler.repo import load_repository

    if src == dst:
        raise UsageError(f"promote {src} {dst}: SRC and DST are the same environment")
    repo = load_repository(root)
    repo.select([src, dst])
    refuse_errors(root, repo, note)
    changes = rollover.promote(_side(root, repo, src), _side(root, repo, dst))
    written = write_checked(root, changes)
    if not written:
        emit(f"promote {src} -> {dst}: {dst} already has {src}'s term scopes and phases; nothing written")
        return 0
    emit(f"promote {src} -> {dst}:")
    report(changes, written, emit)
    return 0


def _side(root: Path, repo: Repository, name: str) -> Side:
    from reconciler.core.rollover import Side
    from reconciler.edit import read_plain

    spec = repo.envs[name]
    kinds = (Kind.MERGE_SETTINGS, Kind.PHASES, Kind.TERMS)
    merged = {kind: data for kind in kinds if (data := spec.data(kind)) is not None}
    own = {kind: read_plain(root, f"environments/{name}/{kind.filename}", kind) for kind in kinds}
    terms_source: YamlFile | None = own[Kind.TERMS]
    if own[Kind.TERMS].data is None:
        base = read_plain(root, f"environments/{BASE_FOLDER}/{Kind.TERMS.filename}", Kind.TERMS)
        terms_source = base if base.data is not None else None
    return Side(name, merged, own, terms_source)
