"""Snapshots of what a reviewer reads for a term rollover: `term roll 202810 --like 202710` on the example
repository, planned at a fixed instant against live applied from the commit before, as text and Markdown.

The files under tests/snapshots/ were read by eye once; a change to them is a change to what registrars
read, and is reviewed as such. `RECONCILER_UPDATE_SNAPSHOTS=1` rewrites them.
"""

from __future__ import annotations

import os
import re
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import reconciler.engine as engine_clock

SNAPSHOTS = Path(__file__).parent / "snapshots"
AT = datetime(2026, 11, 25, 12, 5, tzinfo=ZoneInfo("America/Chicago"))  # a Wednesday noon: no window open
SHA = re.compile(r"\b[0-9a-f]{7,40}\b")  # a commit (short or long); term codes here are 6 digits


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture
def rolled(cli, repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(engine_clock, "now", lambda: AT)
    monkeypatch.delenv("CI", raising=False)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "The example repository")
    applied = cli("--root", str(repo), "apply", "--yes")
    assert applied.code == 0, applied.out + applied.err
    roll = cli("--root", str(repo), "term", "roll", "202810", "--like", "202710")
    assert roll.code == 0, roll.err
    git(repo, "commit", "-qam", "Roll Fall 2027 into every environment (REG-42)")
    return repo


def check(name: str, text: str) -> None:
    text = SHA.sub("<sha>", text)  # a commit's sha changes with the clock; the words do not
    path = SNAPSHOTS / name
    if os.environ.get("RECONCILER_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} is missing; write it with RECONCILER_UPDATE_SNAPSHOTS=1 and read it"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("fmt", "name"), [pytest.param("text", "rollover-plan.txt", id="text"),
                                           pytest.param("markdown", "rollover-plan.md", id="markdown")])
def test_rollover_plan(cli, rolled: Path, fmt: str, name: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(rolled), "plan", "--at", AT.isoformat(), "--format", fmt)
    assert result.code == 0, result.err
    check(name, result.out)
