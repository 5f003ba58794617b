"""Shared fixtures: a copy of the example repository per test, an isolated cache, the CLI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.resources import example_dirs

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test writes to $HOME: the cache and git identity live in a temporary folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Registrar")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "registrar@example.edu")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Registrar")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "registrar@example.edu")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    yield


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh copy of the example repository (environments and schemas)."""
    root = tmp_path / "repo"
    root.mkdir()
    for dest, src in example_dirs().items():
        if src.is_dir():
            shutil.copytree(src, root / dest)
    return root


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.out.splitlines() if line]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run the CLI in-process as a user would, returning exit code, stdout and stderr."""
    from reconciler.cli import run

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke
