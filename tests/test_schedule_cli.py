"""`reconciler schedule` from the command line: JSON across DST, text, ICS, bad times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_json_weekly_window_changes_offset_across_the_fall_back(repo: Path, cli) -> None:
    result = cli("--root", str(repo), "schedule", "production", "--from", "2026-10-25", "--to", "2026-11-15",
                 "--format", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["format_version"] == 1
    assert doc["from"] == "2026-10-25T00:00:00-05:00"
    assert doc["to"] == "2026-11-15T00:00:00-06:00"
    starts = [
        t["at"] for t in doc["transitions"] if t["event"] == "window-start" and t["id"] == "weekly-hosted-updates"
    ]
    assert starts == ["2026-10-25T04:00:00-05:00", "2026-11-01T04:00:00-06:00", "2026-11-08T04:00:00-06:00"]
    first = doc["transitions"][0]
    assert first["effect"] == {"schedule.nightly": False, "schedule.realtime": False}
    instants = [t["at"] for t in doc["transitions"]]
    from datetime import datetime

    assert [datetime.fromisoformat(i) for i in instants] == sorted(datetime.fromisoformat(i) for i in instants)


def test_text_lists_the_one_off_window_with_its_ticket_id(repo: Path, cli) -> None:
    result = cli("--root", str(repo), "schedule", "--from", "2026-12-05", "--to", "2026-12-07")
    assert result.code == 0
    lines = [line for line in result.lines if "banner-upgrade-2026-12" in line]
    assert len(lines) == 2
    assert lines[0].startswith("Sat 2026-12-05 20:00 -06:00  production   window-start")


def test_ics_is_a_calendar_with_timezone_and_events(repo: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    from icalendar import Calendar

    from reconciler.cli import run

    code = run(["--root", str(repo), "schedule", "production", "--from", "2026-12-01", "--to", "2026-12-08",
                "--format", "ics"])
    assert code == 0
    calendar = Calendar.from_ical(capsysbinary.readouterr().out)
    events = [c for c in calendar.walk("VEVENT")]
    summaries = " ".join(str(e["SUMMARY"]) for e in events)
    assert "Banner 9.4 upgrade" in summaries and "phase final-review" in summaries
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["America/Chicago"]
    assert len({str(e["UID"]) for e in events}) == len(events)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(["--from", "2027-03-14T02:30"], "does not exist", id="gap"),
        pytest.param(["--from", "2026-11-01T01:30"], "America/Chicago", id="fold"),
        pytest.param(["--from", "tomorrow"], "--from", id="garbage"),
        pytest.param(["--from", "2026-12-10", "--to", "2026-12-01"], "is not after", id="backwards"),
    ],
)
def test_bad_times_are_one_line_errors(repo: Path, cli, args: list[str], words: str) -> None:
    result = cli("--root", str(repo), "schedule", "production", *args)
    assert result.code == 1
    assert words in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_offset_makes_an_ambiguous_time_acceptable(repo: Path, cli) -> None:
    result = cli("--root", str(repo), "schedule", "production", "--from", "2026-11-01T01:30-06:00",
                 "--to", "2026-11-02", "--format", "json")
    assert result.code == 0
    assert json.loads(result.out)["from"] == "2026-11-01T01:30:00-06:00"


FORTNIGHTLY = """apiVersion: reconciler/v1
kind: MaintenanceWindows
windows:
  - id: fortnightly
    reason: every other Sunday
    every: FREQ=WEEKLY;INTERVAL=2;BYDAY=SU;COUNT=3
    start: {start}
    duration: 2h
"""


def test_a_counted_rule_takes_a_dated_start(repo: Path, cli) -> None:
    (repo / "environments" / "staging" / "maintenance.yaml").write_text(FORTNIGHTLY.format(start="2026-11-29T04:00"))
    assert cli("--root", str(repo), "validate", "staging").code == 0
    result = cli("--root", str(repo), "schedule", "staging", "--from", "2026-11-25T00:00", "--to", "2027-03-01T00:00",
                 "--format", "json")
    starts = [t["at"] for t in json.loads(result.out)["transitions"] if t["event"] == "window-start"]
    assert starts == ["2026-11-29T04:00:00-06:00", "2026-12-13T04:00:00-06:00", "2026-12-27T04:00:00-06:00"]


def test_a_counted_rule_without_a_date_is_refused_at_its_line(repo: Path, cli) -> None:
    (repo / "environments" / "staging" / "maintenance.yaml").write_text(FORTNIGHTLY.format(start='"04:00"'))
    result = cli("--root", str(repo), "validate", "staging")
    assert result.code == 1
    assert "environments/staging/maintenance.yaml:" in result.out and "needs a dated start" in result.out


def test_ics_stamps_the_engines_now_and_an_empty_range_is_still_a_calendar(  # type: ignore[no-untyped-def]
        repo: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from icalendar import Calendar

    import reconciler.engine as engine_clock
    from reconciler.cli import run

    made = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    monkeypatch.setattr(engine_clock, "now", lambda: made)
    assert run(["--root", str(repo), "schedule", "production", "--from", "2026-12-01", "--to", "2026-12-08",
                "--format", "ics"]) == 0
    events = Calendar.from_ical(capsysbinary.readouterr().out).events
    assert events and {e.decoded("dtstamp") for e in events} == {made}
    # a Tuesday hour with no boundary, no window, in no phase or term
    assert run(["--root", str(repo), "schedule", "production", "--from", "2031-06-03T10:00",
                "--to", "2031-06-03T11:00", "--format", "ics"]) == 0
    out = capsysbinary.readouterr().out
    empty = Calendar.from_ical(out)
    assert out.startswith(b"BEGIN:VCALENDAR") and empty.events == [] and str(empty["version"]) == "2.0"
    assert str(empty["prodid"]) == "-//reconciler//schedule//EN"
