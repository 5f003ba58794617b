"""The shape of STYLE.md, enforced: the core is pure, a command module imports no other command module,
the engine never imports a command, and only `git.py` imports GitPython or runs git."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reconciler"
EDGES = ("reconciler.cli", "reconciler.engine", "reconciler.connectors", "reconciler.emulator", "reconciler.git",
         "reconciler.activity", "reconciler.repo", "reconciler.edit", "reconciler.cache")
IMPURE = ("sqlite3", "httpx", "git", "click", "subprocess", "uvicorn", "starlette", "socket")
GIT_MODULES = {"git.py"}
SHARED_CLI = {"options", "__init__"}


def imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


CORE = sorted((PACKAGE / "core").glob("*.py"))
CLI = sorted((PACKAGE / "cli").glob("*.py"))


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_the_core_imports_no_edge_and_no_io(path: Path) -> None:
    bad = sorted(n for n in imports(path) if within(n, EDGES) or within(n, IMPURE))
    assert not bad, f"core/{path.name} imports {bad}"


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_the_core_never_reads_the_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert not [c for c in calls if c.endswith(("datetime.now", "date.today", "time.time", "time.monotonic"))]


@pytest.mark.parametrize("path", CLI, ids=lambda p: p.name)
def test_a_command_module_imports_no_other_command_module(path: Path) -> None:
    commands = {n.split(".")[2] for n in imports(path) if n.startswith("reconciler.cli.") and n.count(".") >= 2}
    assert commands <= SHARED_CLI | {path.stem}, f"cli/{path.name} imports reconciler.cli.{commands - SHARED_CLI}"


def test_the_engine_imports_no_command() -> None:
    for path in sorted((PACKAGE / "engine").glob("*.py")):
        assert not [n for n in imports(path) if within(n, ("reconciler.cli",))], path.name


def test_only_the_git_modules_import_gitpython() -> None:
    users = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
             if any(within(n, ("git", "gitdb")) for n in imports(path))}
    assert users <= GIT_MODULES, f"GitPython imported outside the git modules: {sorted(users - GIT_MODULES)}"


def test_only_the_git_modules_run_git() -> None:
    runners = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if '["git",' in text or "['git'," in text:
            runners.add(path.relative_to(PACKAGE).as_posix())
    assert runners <= GIT_MODULES, f"git run outside the git modules: {sorted(runners - GIT_MODULES)}"
