"""`status` names every open window with why, its ticket and when it ends (issue 14, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PATCH = """  - id: sis-patch
    reason: Banner security patch
    ticket: SUP-2001
    start: 2026-12-06T02:00
    end: 2026-12-06T06:00
"""
AT = "2026-12-06T05:00"  # inside sis-patch (to 06:00) and weekly-hosted-updates (04:00-09:00)


@pytest.fixture
def two_open(repo: Path) -> Path:
    path = repo / "environments" / "production" / "maintenance.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("windows:\n", "windows:\n" + PATCH, 1), encoding="utf-8")
    return repo


def test_json_lists_every_open_window_with_reason_ticket_and_end(cli, two_open: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(two_open), "status", "production", "--at", AT, "--format", "json")
    assert result.code == 0, result.err
    env = json.loads(result.out)["environments"][0]
    assert env["windows"] == [
        {"id": "sis-patch", "reason": "Banner security patch", "ticket": "SUP-2001", "pause": ["nightly", "realtime"],
         "started": "2026-12-06T02:00:00-06:00", "ends": "2026-12-06T06:00:00-06:00"},
        {"id": "weekly-hosted-updates", "reason": "hosting provider weekly update", "ticket": None,
         "pause": ["nightly", "realtime"], "started": "2026-12-06T04:00:00-06:00",
         "ends": "2026-12-06T09:00:00-06:00"},
    ]


def test_text_gives_each_window_its_own_end_in_the_zone_without_microseconds(cli, two_open: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(two_open), "status", "production", "--at", AT)
    assert result.code == 0, result.err
    assert "  windows:      sis-patch (Banner security patch; SUP-2001), until 2026-12-06 06:00 -06:00" in result.lines
    assert ("                weekly-hosted-updates (hosting provider weekly update), until 2026-12-06 09:00 -06:00"
            in result.lines)
    assert "." not in "".join(line for line in result.lines if "until" in line).replace("Banner security", "")


def test_no_open_window_is_said(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "status", "production", "--at", "2026-12-08T12:00", "--format", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["environments"][0]["windows"] == []
