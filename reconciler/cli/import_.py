"""EDGE: `reconciler import ENV` — write the live state into the environment's YAML (engine/importing.py)."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import engine, resolve_root, root_option


@click.command(
    "import",
    epilog="Example: reconciler import production && git diff environments/production",
    short_help="Write the live state into the YAML (adopt drift).",
)
@click.argument("env", metavar="ENV")
@root_option
def command(env: str, root: str | None) -> int:
    """Write the live state of ENV into its YAML files, keeping comments and key order."""
    return run_import(resolve_root(root), env)


def run_import(root: Path, env: str) -> int:
    return engine(root).import_env(env)
