"""Renderers for `reconciler schedule`: the JSON document, the table, the ICS calendar."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from timeline_data import UPGRADE, WEEKLY, make_spec

from reconciler.core.calendar import schedule_data, schedule_ics, schedule_text
from reconciler.core.timeline import Timeline, Transition

PHASE = {"name": "final-review", "term": "202720", "start": "2026-11-13", "end": "2027-01-11",
         "editable": ["enrollment_cap", "notes"], "editors": ["registrar"]}  # fmt: skip
TERM = {"code": "202710", "name": "Fall 2026", "start": "2026-08-24", "end": "2026-12-18"}
FROM = datetime.fromisoformat("2026-10-25T00:00:00-05:00")
TO = datetime.fromisoformat("2026-11-15T00:00:00-06:00")


def make_timeline(
    name: str = "production",
    windows: list[dict[str, Any]] | None = None,
    timezone: str = "America/Chicago",
    phases: list[dict[str, Any]] | None = None,
    terms: list[dict[str, Any]] | None = None,
) -> Timeline:
    spec = make_spec(windows or [], phases=phases or [], terms=terms or [], timezone=timezone, name=name)
    return Timeline.from_spec(spec)


def fleet_transitions(timelines: list[Timeline], frm: datetime, to: datetime) -> list[Transition]:
    return [t for timeline in timelines for t in timeline.transitions(frm, to)]


# --- JSON -----------------------------------------------------------------------------------


def test_schedule_data_is_the_design_document() -> None:
    timeline = make_timeline(windows=[WEEKLY])
    data = schedule_data(FROM, TO, timeline.transitions(FROM, TO))
    assert list(data) == ["format_version", "from", "to", "transitions"]
    assert data["format_version"] == 1
    assert (data["from"], data["to"]) == ("2026-10-25T00:00:00-05:00", "2026-11-15T00:00:00-06:00")
    assert data["transitions"][2] == {
        "environment": "production",
        "at": "2026-11-01T04:00:00-06:00",
        "event": "window-start",
        "id": "weekly-hosted-updates",
        "effect": {"schedule.nightly": False, "schedule.realtime": False},
    }
    assert [t["at"][:16] for t in data["transitions"]][:2] == [
        "2026-10-25T04:00",
        "2026-10-25T09:00",
    ]
    assert json.loads(json.dumps(data)) == data


def test_schedule_data_orders_a_fleet_by_time_then_environment() -> None:
    chicago = make_timeline("production", windows=[WEEKLY])
    london = make_timeline("staging", windows=[{**WEEKLY, "timezone": "Europe/London"}],
                           timezone="Europe/London")  # fmt: skip
    shuffled = fleet_transitions([chicago, london], FROM, TO)[::-1]
    rows = schedule_data(FROM, TO, shuffled)["transitions"]
    instants = [datetime.fromisoformat(row["at"]) for row in rows]
    assert instants == sorted(instants)
    # 04:00 in Chicago is 09:00 in London that Sunday: one instant, ordered by environment,
    # each shown in its own zone.
    assert [(r["environment"], r["event"], r["at"]) for r in rows[:2]] == [
        ("production", "window-start", "2026-10-25T04:00:00-05:00"),
        ("staging", "window-end", "2026-10-25T09:00:00+00:00"),
    ]


@pytest.mark.parametrize(
    ("tz", "shown"),
    [
        pytest.param(None, "2026-10-25T00:00:00-05:00", id="as-given"),
        pytest.param(UTC, "2026-10-25T05:00:00+00:00", id="in-utc"),
        pytest.param(ZoneInfo("Asia/Tokyo"), "2026-10-25T14:00:00+09:00", id="in-tokyo"),
    ],
)
def test_schedule_data_shows_from_and_to_in_a_zone(tz: Any, shown: str) -> None:
    assert schedule_data(FROM, TO, [], tz=tz)["from"] == shown


def test_schedule_data_refuses_naive_bounds() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        schedule_data(datetime(2026, 10, 25), TO, [])


# --- text -----------------------------------------------------------------------------------


def test_schedule_text_is_one_line_per_transition() -> None:
    timeline = make_timeline(windows=[WEEKLY], phases=[PHASE])
    text = schedule_text(FROM, TO, timeline.transitions(FROM, TO))
    lines = text.splitlines()
    assert (
        lines[0] == "Transitions from Sun 2026-10-25 00:00 -05:00 to Sun 2026-11-15 00:00 -06:00:"
    )
    assert lines[2].split() == ["WHEN", "ENVIRONMENT", "EVENT", "ID", "EFFECT"]
    rows = lines[3:]
    assert len(rows) == 7
    assert rows[2].split() == [
        "Sun", "2026-11-01", "04:00", "-06:00", "production", "window-start",
        "weekly-hosted-updates", "schedule.nightly=false,", "schedule.realtime=false",
    ]  # fmt: skip
    assert rows[-1].split()[4:] == ["production", "phase-start", "final-review",
                                    "term=202720,", "phase=final-review"]  # fmt: skip
    assert len({row.index("production") for row in rows}) == 1  # columns line up
    assert text.endswith("\n")


def test_schedule_text_says_when_nothing_happens() -> None:
    assert schedule_text(FROM, TO, []) == (
        "No transitions from Sun 2026-10-25 00:00 -05:00 to Sun 2026-11-15 00:00 -06:00.\n"
    )


# --- ICS ------------------------------------------------------------------------------------


def parse(ics: bytes) -> Calendar:
    return Calendar.from_ical(ics)


def test_ics_has_one_event_per_occurrence_phase_and_term() -> None:
    timeline = make_timeline(windows=[WEEKLY, UPGRADE], phases=[PHASE], terms=[TERM])
    frm = datetime.fromisoformat("2026-11-25T00:00-06:00")
    to = datetime.fromisoformat("2026-12-15T00:00-06:00")
    calendar = parse(schedule_ics([timeline], frm, to))
    events = calendar.events
    kinds = sorted(str(e["categories"].cats[0]) for e in events)
    assert kinds == ["phase", "term"] + ["window"] * 4  # Sundays 29 Nov, 6 and 13 Dec + upgrade
    upgrade = next(e for e in events if "banner-upgrade" in str(e["uid"]))
    assert upgrade.decoded("dtstart") == datetime.fromisoformat("2026-12-05T22:00-06:00")
    assert upgrade.decoded("dtend") == datetime.fromisoformat("2026-12-06T06:00-06:00")
    assert upgrade.decoded("dtstart").tzinfo.key == "America/Chicago"
    assert str(upgrade["summary"]) == "[production] maintenance: Banner 9.4 upgrade"
    assert "Banner 9.4 upgrade" in str(upgrade["description"])
    assert "ticket: SUP-1234" in str(upgrade["description"])
    assert (
        str(upgrade["uid"]) == "production-window-banner-upgrade-2026-12-20261206T0400Z@reconciler"
    )
    term = next(e for e in events if str(e["categories"].cats[0]) == "term")
    assert term.decoded("dtend") == datetime.fromisoformat("2026-12-19T00:00-06:00")
    assert [tz.tz_name for tz in calendar.timezones] == ["America/Chicago"]
    assert calendar.get_missing_tzids() == set()


def test_ics_round_trips_instants_across_dst() -> None:
    fall_back = {**UPGRADE, "id": "fall-back", "start": "2026-11-01T01:00",
                 "end": "2026-11-01T03:00"}  # fmt: skip
    timeline = make_timeline(windows=[WEEKLY, fall_back])
    calendar = parse(schedule_ics([timeline], FROM, TO))
    expected = sorted((o.start, o.end) for o in timeline.occurrences(FROM, TO))
    decoded = sorted(
        (e.decoded("dtstart").astimezone(UTC), e.decoded("dtend").astimezone(UTC))
        for e in calendar.events
    )
    assert decoded == expected
    fall = next(e for e in calendar.events if "fall-back" in str(e["uid"]))
    # Subtract in UTC: Python ignores the fold between two times of one ZoneInfo.
    start, end = (fall.decoded(key).astimezone(UTC) for key in ("dtstart", "dtend"))
    assert end - start == timedelta(hours=3)


def test_ics_uses_the_environment_zone_for_a_window_in_another_zone() -> None:
    london = {**WEEKLY, "start": "02:00", "duration": "1h", "timezone": "Europe/London"}
    calendar = parse(schedule_ics([make_timeline(windows=[london])], FROM, TO))
    starts = [e.decoded("dtstart") for e in calendar.events]
    assert {s.tzinfo.key for s in starts} == {"America/Chicago"}
    assert [s.isoformat() for s in starts] == [
        "2026-10-31T21:00:00-05:00",
        "2026-11-07T20:00:00-06:00",
        "2026-11-14T20:00:00-06:00",
    ]
    assert "window: weekly-hosted-updates (Europe/London)" in str(calendar.events[0]["description"])


def test_ics_for_a_fleet_adds_each_zone_once() -> None:
    timelines = [
        make_timeline("production", windows=[WEEKLY]),
        make_timeline("sandbox", windows=[WEEKLY]),
        make_timeline("staging", windows=[WEEKLY], timezone="Europe/London"),
    ]
    calendar = parse(schedule_ics(timelines, FROM, TO))
    assert sorted(tz.tz_name for tz in calendar.timezones) == ["America/Chicago", "Europe/London"]
    uids = [str(e["uid"]) for e in calendar.events]
    assert len(uids) == len(set(uids)) == 9


def test_ics_is_deterministic() -> None:
    timeline = make_timeline(windows=[WEEKLY, UPGRADE], phases=[PHASE], terms=[TERM])
    first = schedule_ics([timeline], FROM, TO)
    assert first == schedule_ics([make_timeline(windows=[WEEKLY, UPGRADE], phases=[PHASE],
                                                terms=[TERM])], FROM, TO)  # fmt: skip
    stamps = {e.decoded("dtstamp") for e in parse(first).events}
    assert stamps == {FROM.astimezone(UTC)}
    assert b"PRODID:-//reconciler//schedule//EN" in first


def test_ics_without_events_is_still_a_calendar() -> None:
    calendar = parse(schedule_ics([make_timeline()], FROM, TO))
    assert calendar.events == []
    assert calendar.timezones == []
    assert str(calendar["version"]) == "2.0"
