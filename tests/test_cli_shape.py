"""The CLI's shape: `--help` stays light, every command has help with an example, core stays pure."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import COMMANDS

PACKAGE = Path(__file__).resolve().parents[1] / "reconciler"
HEAVY = ("httpx", "git", "deepdiff", "uvicorn", "starlette", "ruamel", "jsonschema", "rich", "icalendar", "yaml")
EDGE_IMPORTS = ("sqlite3", "subprocess", "httpx", "git", "click", "uvicorn", "starlette", "ruamel", "reconciler.cli",
                "reconciler.connectors", "reconciler.repo", "reconciler.cache", "reconciler.activity")


def test_help_imports_no_heavy_library_and_no_command_module() -> None:
    code = (
        "import sys\nfrom reconciler.cli import run\nrun(['--help'])\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith('reconciler.cli.') or m.split('.')[0] in "
        f"{HEAVY!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = out.split("LOADED", 1)[1].strip()
    assert loaded in ("['reconciler.cli.options']", "[]"), loaded
    for name in ("validate", "plan", "apply"):
        assert name in out


@pytest.mark.parametrize("name", [n for n, (module, _) in COMMANDS.items() if __import__("importlib").util.find_spec(
    module) is not None])
def test_every_command_has_help_with_an_example(name: str, cli) -> None:
    result = cli(name, "--help")
    assert result.code == 0
    assert "Example" in result.out, f"`reconciler {name} --help` shows no example"


def test_core_never_imports_an_edge() -> None:
    """STYLE: core is pure — no I/O libraries, no clock-reading edges, no CLI."""
    for path in sorted((PACKAGE / "core").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not any(name == edge or name.startswith(edge + ".") for edge in EDGE_IMPORTS), (
                    f"{path.name} imports {name}"
                )
