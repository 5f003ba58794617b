"""EDGE: `reconciler init` — writes the working example repository into a new folder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import click

from reconciler import __version__
from reconciler.cli.options import note
from reconciler.errors import UsageError
from reconciler.resources import example_dirs

GITIGNORE = "# reconciler's local state: the embedded store and its lock\n.reconciler/\n"
_PIN = re.compile(r"sis-reconciler==[0-9A-Za-z.+!-]+")
"""How a workflow installs the tool: the distribution `sis-reconciler` (PyPI's `reconciler` is another
project), pinned to the version that wrote the repository."""


@click.command(
    epilog="Example: reconciler init demo && reconciler --root demo validate",
    short_help="Write a working example repository.",
)
@click.argument("directory", default=".", metavar="[DIR]")
def command(directory: str) -> int:
    """Write a working example repository (environments, schemas, workflows) into DIR.

    DIR must be empty or not exist yet; nothing is ever overwritten.
    """
    return run_init(Path(directory))


def run_init(target: Path) -> int:
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        raise UsageError(f"{target}: the folder is not empty; init writes only into a new or empty folder")
    sources = {dest: src for dest, src in example_dirs().items() if src.is_dir()}
    target.mkdir(parents=True, exist_ok=True)
    for dest, src in sources.items():
        shutil.copytree(src, target / dest, ignore=shutil.ignore_patterns("__pycache__"))
    (target / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    _pin_workflows(target / ".github" / "workflows")
    names = sorted(p.name for p in (target / "environments").iterdir() if p.is_dir() and p.name != "_base")
    note(f"wrote an example repository to {target}: environments {', '.join(names)}")
    note(f"next: reconciler --root {target} validate")
    return 0


def _pin_workflows(folder: Path) -> None:
    """Each workflow installs exactly this version of the tool."""
    for path in sorted(folder.glob("*.yml")):
        text = path.read_text(encoding="utf-8")
        path.write_text(_PIN.sub(f"sis-reconciler=={__version__}", text), encoding="utf-8")
