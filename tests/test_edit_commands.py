"""The edit pipeline through real commands: `term roll`, `pause`, `resume` and `import` on files written in
another hand (CRLF line ends, a modeline above `---`, compact lists) keep every byte they do not edit."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from contextlib import closing
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import reconciler.engine as engine_clock
from reconciler.connectors.embedded import store_path

MAINT = "environments/production/maintenance.yaml"
TERMS = "environments/_base/terms.yaml"
PHASES = "environments/production/phases.yaml"
BASE_MERGES = "environments/_base/merge-settings.yaml"


def rewrite(path: Path, *, crlf: bool = True, document_start: bool = True, compact: str | None = None) -> bytes:
    """The file as another editor would have left it; `compact`: the list key whose items move to its column."""
    lines = path.read_text().splitlines()
    if document_start:
        lines.insert(1, "---")  # under the modeline
    if compact is not None:
        at = lines.index(f"{compact}:")
        lines[at + 1:] = [line.removeprefix("  ") for line in lines[at + 1:]]
    raw = ("\r\n" if crlf else "\n").join(lines) + ("\r\n" if crlf else "\n")
    path.write_bytes(raw.encode())
    return raw.encode()


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30)
    return done.stdout


def commit_all(root: Path) -> None:
    if not (root / ".git").exists():
        git(root, "init", "-q", "-b", "main")
        git(root, "config", "core.autocrlf", "false")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "files from another editor")


def assert_crlf(raw: bytes) -> None:
    assert b"\n" not in raw.replace(b"\r\n", b""), "a bare LF in a CRLF file"


def test_term_roll_keeps_a_crlf_file_with_a_document_start(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    terms = rewrite(repo / TERMS)
    phases = rewrite(repo / PHASES, compact="phases")
    merges = rewrite(repo / BASE_MERGES, crlf=False)
    result = cli("--root", str(repo), "term", "roll", "202820", "--like", "202720")
    assert result.code == 0, result.err
    after_terms = (repo / TERMS).read_bytes()
    assert after_terms == terms + b'  - {code: "202820", name: Spring 2028, start: 2028-01-11, end: 2028-05-07}\r\n'
    after_phases = (repo / PHASES).read_bytes()
    assert_crlf(after_phases)
    assert after_phases.startswith(phases)
    added = after_phases[len(phases):].decode().split("\r\n")
    assert added[:2] == ["- name: registrar-preview-202820", '  term: "202820"']
    assert all(line.startswith(("- ", "  ")) and not line.startswith("   ") for line in added if line)
    assert (repo / BASE_MERGES).read_bytes() == merges.replace(b'terms: ["202710", "202720"]',
                                                               b'terms: ["202710", "202720", "202820"]')
    assert cli("--root", str(repo), "validate").code == 0


def test_pause_and_resume_keep_a_compact_crlf_maintenance_file(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    before = rewrite(repo / MAINT, compact="windows")
    commit_all(repo)
    paused = cli("--root", str(repo), "pause", "production", "--reason", "Banner is down", "--at", "2026-12-01T10:00")
    assert paused.code == 0, paused.err
    after = (repo / MAINT).read_bytes()
    assert after == before + (
        b"- id: pause-20261201-1000\r\n"
        b"  reason: Banner is down\r\n"
        b"  start: 2026-12-01T10:00\r\n"
        b"  end: 2099-12-31T23:59  # open: `reconciler resume` sets the end\r\n"
        b"  pause: [nightly, realtime]\r\n")
    resumed = cli("--root", str(repo), "resume", "production", "--at", "2026-12-01T12:30")
    assert resumed.code == 0, resumed.err
    assert (repo / MAINT).read_bytes() == after.replace(
        b"2099-12-31T23:59  # open: `reconciler resume` sets the end", b"2026-12-01T12:30")
    assert git(repo, "status", "--porcelain", "--", "environments").strip() == ""
    assert cli("--root", str(repo), "validate", "production").code == 0


def test_import_keeps_a_crlf_file_with_a_document_start(cli, repo: Path,  # type: ignore[no-untyped-def]
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`import` writes through edit.load/edit.dump, so it keeps the same bytes."""
    monkeypatch.setattr(engine_clock, "now", lambda: datetime(2026, 11, 25, 12, 5, tzinfo=ZoneInfo("America/Chicago")))
    assert cli("--root", str(repo), "apply", "--yes").code == 0
    path = repo / "environments/staging/merge-settings.yaml"
    before = rewrite(path)
    with closing(sqlite3.connect(store_path(repo))) as conn, conn:
        doc = json.loads(conn.execute("SELECT doc FROM live WHERE env = ?", ("staging",)).fetchone()[0])
        doc["schedule"]["nightly"] = False
        conn.execute("UPDATE live SET doc = ? WHERE env = ?", (json.dumps(doc, sort_keys=True), "staging"))
    result = cli("--root", str(repo), "import", "staging")
    assert result.code == 0, result.err
    after = path.read_bytes()
    assert_crlf(after)
    assert after.startswith(b"# yaml-language-server: $schema=../../schemas/merge-settings.schema.json\r\n---\r\n")
    realtime = b"a stable copy during the day\r\n"
    assert after == before.replace(realtime, realtime + b"  nightly: false\r\n")
