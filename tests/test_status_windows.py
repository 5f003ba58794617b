"""`status` names every open window with why, its ticket and when it ends (issue 14, item 4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import reconciler.engine as engine_clock

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
    assert ("  windows:      sis-patch (Banner security patch; SUP-2001), until Sun 2026-12-06 06:00 -06:00"
            in result.lines)
    assert ("                weekly-hosted-updates (hosting provider weekly update), until Sun 2026-12-06 09:00 -06:00"
            in result.lines)
    assert "." not in "".join(line for line in result.lines if "until" in line).replace("Banner security", "")


def test_no_open_window_is_said(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "status", "production", "--at", "2026-12-08T12:00", "--format", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["environments"][0]["windows"] == []


def test_text_names_terms_with_codes_and_says_times_in_the_one_format(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    """The current phase's term and a term's transition by name and code; the next transition in local_time."""
    result = cli("--root", str(repo), "status", "staging", "--at", "2026-12-08T12:00")
    assert result.code == 0, result.err
    assert "  phases:       Spring 2027 (202720): final-review" in result.lines
    assert "  next:         Sat 2026-12-19 00:00 -06:00 term-end Fall 2026 (202710)" in result.lines


def test_text_says_the_apply_time_in_the_zone_without_microseconds(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as patch:  # applied at 09:45:12.345678 UTC, 03:45 in Chicago
        patch.setattr(engine_clock, "now", lambda: datetime(2026, 12, 6, 9, 45, 12, 345678, tzinfo=UTC))
        assert cli("--root", str(repo), "apply", "staging", "--yes").code == 0
    result = cli("--root", str(repo), "status", "staging", "--at", "2026-12-08T12:00")
    assert "  applied:      revision none at Sun 2026-12-06 03:45 -06:00" in result.lines

