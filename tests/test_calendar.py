"""Renderers for `reconciler schedule`: the JSON document, the table, the ICS calendar."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
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
MADE = datetime.fromisoformat("2026-10-20T09:15:00+00:00")  # when the calendar was made: not FROM


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
    calendar = parse(schedule_ics([timeline], frm, to, stamp=MADE))
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
    assert str(upgrade["uid"]) == "production-window-banner-upgrade-2026-12@reconciler"
    term = next(e for e in events if str(e["categories"].cats[0]) == "term")
    assert term.decoded("dtend") == date(2026, 12, 19)  # all day: the day after the last, exclusive
    assert [tz.tz_name for tz in calendar.timezones] == ["America/Chicago"]
    assert calendar.get_missing_tzids() == set()


def test_ics_round_trips_instants_across_dst() -> None:
    fall_back = {**UPGRADE, "id": "fall-back", "start": "2026-11-01T01:00",
                 "end": "2026-11-01T03:00"}  # fmt: skip
    timeline = make_timeline(windows=[WEEKLY, fall_back])
    calendar = parse(schedule_ics([timeline], FROM, TO, stamp=MADE))
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
    calendar = parse(schedule_ics([make_timeline(windows=[london])], FROM, TO, stamp=MADE))
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
    calendar = parse(schedule_ics(timelines, FROM, TO, stamp=MADE))
    assert sorted(tz.tz_name for tz in calendar.timezones) == ["America/Chicago", "Europe/London"]
    uids = [str(e["uid"]) for e in calendar.events]
    assert len(uids) == len(set(uids)) == 9


def test_ics_is_deterministic() -> None:
    timeline = make_timeline(windows=[WEEKLY, UPGRADE], phases=[PHASE], terms=[TERM])
    first = schedule_ics([timeline], FROM, TO, stamp=MADE)
    assert first == schedule_ics([make_timeline(windows=[WEEKLY, UPGRADE], phases=[PHASE],
                                                terms=[TERM])], FROM, TO, stamp=MADE)  # fmt: skip
    stamps = {e.decoded("dtstamp") for e in parse(first).events}
    assert stamps == {MADE}  # when the calendar was made, not --from
    assert b"PRODID:-//reconciler//schedule//EN" in first


def test_ics_without_events_is_still_a_calendar() -> None:
    calendar = parse(schedule_ics([make_timeline()], FROM, TO, stamp=MADE))
    assert calendar.events == []
    assert calendar.timezones == []
    assert str(calendar["version"]) == "2.0"


def test_ics_terms_and_phases_are_all_day_events() -> None:
    ics = schedule_ics([make_timeline(phases=[PHASE], terms=[TERM])], FROM, TO, stamp=MADE)
    assert b"DTSTART;VALUE=DATE:20260824" in ics and b"DTEND;VALUE=DATE:20261219" in ics  # term: 24 Aug-18 Dec
    assert b"DTSTART;VALUE=DATE:20261113" in ics and b"DTEND;VALUE=DATE:20270111" in ics  # phase: to 11 Jan
    phase = next(e for e in parse(ics).events if str(e["categories"].cats[0]) == "phase")
    assert str(phase["summary"]) == "[production] phase final-review · 202720"


def test_ics_uids_stay_when_a_window_moves_and_sequence_grows() -> None:
    moved = {**UPGRADE, "start": "2026-12-05T23:00", "end": "2026-12-06T07:00"}
    later_weekly = {**WEEKLY, "start": "05:00"}
    frm, to = datetime.fromisoformat("2026-11-25T00:00-06:00"), datetime.fromisoformat("2026-12-15T00:00-06:00")

    def events(windows: list[dict[str, Any]], stamp: datetime) -> dict[str, Any]:
        calendar = parse(schedule_ics([make_timeline(windows=windows)], frm, to, stamp=stamp))
        return {str(e["uid"]): e for e in calendar.events}

    before = events([WEEKLY, UPGRADE], MADE)
    after = events([later_weekly, moved], MADE + timedelta(days=1))
    assert set(before) == set(after)  # no ghost: the moved window and the Sundays keep their events
    assert "production-window-weekly-hosted-updates-20261129@reconciler" in before
    uid = "production-window-banner-upgrade-2026-12@reconciler"
    assert after[uid].decoded("dtstart") == datetime.fromisoformat("2026-12-05T23:00-06:00")
    assert int(after[uid]["sequence"]) > int(before[uid]["sequence"])


def test_ics_of_an_empty_range_is_a_calendar_with_prodid_and_version() -> None:
    ics = schedule_ics([], FROM, TO, stamp=MADE)
    calendar = parse(ics)
    assert calendar.name == "VCALENDAR" and calendar.events == []
    assert str(calendar["prodid"]) == "-//reconciler//schedule//EN" and str(calendar["version"]) == "2.0"


def test_schedule_text_names_terms() -> None:
    timeline = make_timeline(terms=[TERM])
    frm, to = datetime.fromisoformat("2026-12-01T00:00-06:00"), datetime.fromisoformat("2026-12-31T00:00-06:00")
    text = schedule_text(frm, to, timeline.transitions(frm, to), names={"production": {"202710": "Fall 2026"}})
    assert "production   term-end  Fall 2026 (202710)" in text
