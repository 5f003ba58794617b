"""The timeline: parsing times, windows across DST, phases and terms, effective state at T."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st
from timeline_data import BOTH, CHICAGO, PHASES, TERMS, UPGRADE, WEEKLY, make_spec

from reconciler.core.timeline import (
    Event,
    Recurrence,
    Timeline,
    effective,
    local_kind,
    parse_duration,
    parse_instant,
    thaw,
    to_utc,
)
from reconciler.core.windows import _simple_year
from reconciler.errors import ConfigError, TimeInputError

LONDON = ZoneInfo("Europe/London")


def make_timeline(windows: list[dict[str, Any]] | None = None, **kw: Any) -> Timeline:
    return Timeline.from_spec(make_spec(windows, **kw))


def at(text: str) -> datetime:
    """An instant written with its offset, so tests never depend on the local-time rules."""
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None, text
    return parsed


def local(text: str, tz: ZoneInfo = CHICAGO) -> str:
    return at(text).astimezone(tz).isoformat(timespec="minutes")


# --- parse_instant, parse_duration ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "strict", "expected"),
    [
        pytest.param("2026-12-05T22:00", True, "2026-12-06T04:00:00+00:00", id="local-winter"),
        pytest.param("2026-07-05T22:00", True, "2026-07-06T03:00:00+00:00", id="local-summer"),
        pytest.param("2026-12-05T22:00-06:00", True, "2026-12-06T04:00:00+00:00", id="offset"),
        pytest.param("2026-12-05T22:00Z", True, "2026-12-05T22:00:00+00:00", id="zulu"),
        pytest.param("2026-12-05", True, "2026-12-05T06:00:00+00:00", id="date-is-midnight"),
        pytest.param(" 2026-12-05 22:00 ", True, "2026-12-06T04:00:00+00:00", id="space"),
        pytest.param("2026-11-01T01:30-06:00", True, "2026-11-01T07:30:00+00:00", id="fold-offset"),
        pytest.param("2026-11-01T01:30-05:00", True, "2026-11-01T06:30:00+00:00", id="fold-first"),
        pytest.param("2027-03-14T02:30-05:00", True, "2027-03-14T07:30:00+00:00", id="gap-offset"),
        pytest.param("2026-11-01T01:30", False, "2026-11-01T06:30:00+00:00", id="lenient-fold"),
        pytest.param("2027-03-14T02:30", False, "2027-03-14T08:30:00+00:00", id="lenient-gap"),
    ],
)
def test_parse_instant(text: str, strict: bool, expected: str) -> None:
    parsed = parse_instant(text, "America/Chicago", strict=strict)
    assert parsed.tzinfo is not None
    assert parsed.astimezone(UTC).isoformat() == expected


def test_parse_instant_without_offset_is_shown_in_the_zone() -> None:
    assert parse_instant("2026-11-01T04:00", CHICAGO).isoformat() == "2026-11-01T04:00:00-06:00"
    assert parse_instant("2026-10-25T04:00", CHICAGO).isoformat() == "2026-10-25T04:00:00-05:00"
    assert parse_instant("2027-03-14T02:30", CHICAGO, strict=False).isoformat() == (
        "2027-03-14T03:30:00-05:00"
    )


@pytest.mark.parametrize(
    ("text", "zone", "message"),
    [
        pytest.param("2027-03-14T02:30", "America/Chicago",
                     "2027-03-14T02:30 does not exist in America/Chicago (clocks go forward); "
                     "give an offset", id="gap"),
        pytest.param("2026-11-01T01:30", "America/Chicago",
                     "2026-11-01T01:30 is ambiguous in America/Chicago (clocks go back: "
                     "2026-11-01T01:30:00-05:00 or 2026-11-01T01:30:00-06:00); give an offset",
                     id="fold"),
        pytest.param("2026-10-25T01:30", "Europe/London", "is ambiguous in Europe/London",
                     id="fold-london"),
        pytest.param("2026-03-29T01:30", "Europe/London", "does not exist in Europe/London",
                     id="gap-london"),
        pytest.param("next tuesday", "America/Chicago", "is not an ISO 8601 time", id="garbage"),
        pytest.param("2026-13-01T00:00", "America/Chicago", "is not an ISO 8601", id="month-13"),
        pytest.param("", "America/Chicago", "a time is required", id="empty"),
        pytest.param("2026-12-05", "Mars/Olympus", "unknown time zone 'Mars/Olympus'", id="zone"),
    ],
)  # fmt: skip
def test_parse_instant_refuses(text: str, zone: str, message: str) -> None:
    with pytest.raises(TimeInputError) as caught:
        parse_instant(text, zone)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("5h", timedelta(hours=5), id="hours"),
        pytest.param("90m", timedelta(minutes=90), id="minutes"),
        pytest.param("1h30m", timedelta(hours=1, minutes=30), id="hours-minutes"),
        pytest.param("2d", timedelta(days=2), id="days"),
        pytest.param("1d2h3m", timedelta(days=1, hours=2, minutes=3), id="all"),
        pytest.param("366d", timedelta(days=366), id="longest"),
        pytest.param("0h", timedelta(0), id="zero"),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


# One grammar for the schema and the parser (issue 13): seconds, ISO 8601 and spaces, which only the
# parser used to take, are refused like everything else the schema refuses.
@pytest.mark.parametrize("text", ["", "5", "h", "5x", "-5h", "5h5h", "P", "PT", "1.5h", "1d2h3m4s", "PT5H",
                                  "P1DT30M", " 5h", "5H", "1m2h", "9999999d"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(TimeInputError, match="is not a duration"):
        parse_duration(text)


def test_parse_duration_is_bounded() -> None:
    with pytest.raises(TimeInputError, match="longer than 366 days"):
        parse_duration("367d")


@pytest.mark.parametrize(
    ("naive", "zone", "kind", "utc"),
    [
        pytest.param("2027-03-14T02:30", CHICAGO, "gap", "2027-03-14T08:30", id="gap-forward"),
        pytest.param("2026-11-01T01:30", CHICAGO, "fold", "2026-11-01T06:30", id="fold-first"),
        pytest.param("2026-11-01T03:00", CHICAGO, None, "2026-11-01T09:00", id="plain"),
        pytest.param("2026-10-25T01:30", LONDON, "fold", "2026-10-25T00:30", id="london-fold"),
    ],
)
def test_local_kind_and_rfc5545_resolution(
    naive: str, zone: ZoneInfo, kind: str | None, utc: str
) -> None:
    wall = datetime.fromisoformat(naive)
    assert local_kind(wall, zone) == kind
    assert to_utc(wall, zone) == datetime.fromisoformat(utc).replace(tzinfo=UTC)


# --- windows across DST ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sunday", "offset"),
    [
        pytest.param("2026-10-25", "-05:00", id="before-fall-back"),
        pytest.param("2026-11-01", "-06:00", id="fall-back-day"),
        pytest.param("2026-11-08", "-06:00", id="after-fall-back"),
        pytest.param("2027-03-07", "-06:00", id="before-spring-forward"),
        pytest.param("2027-03-14", "-05:00", id="spring-forward-day"),
        pytest.param("2027-03-21", "-05:00", id="after-spring-forward"),
    ],
)
def test_weekly_window_keeps_its_wall_clock_across_dst(sunday: str, offset: str) -> None:
    timeline = make_timeline([WEEKLY])
    day_start = at(f"{sunday}T00:00{offset}")
    [occurrence] = timeline.occurrences(day_start, day_start + timedelta(days=1))
    assert occurrence.local_start.isoformat() == f"{sunday}T04:00:00{offset}"
    assert occurrence.local_end.isoformat() == f"{sunday}T09:00:00{offset}"
    assert occurrence.end - occurrence.start == timedelta(hours=5)


def test_weekly_window_transitions_match_the_design_example() -> None:
    timeline = make_timeline([WEEKLY])
    found = timeline.transitions(at("2026-10-25T00:00-05:00"), at("2026-11-15T00:00-06:00"))
    assert [t.data["at"] for t in found] == [
        "2026-10-25T04:00:00-05:00",
        "2026-10-25T09:00:00-05:00",
        "2026-11-01T04:00:00-06:00",
        "2026-11-01T09:00:00-06:00",
        "2026-11-08T04:00:00-06:00",
        "2026-11-08T09:00:00-06:00",
    ]
    assert found[2].data == {
        "environment": "production",
        "at": "2026-11-01T04:00:00-06:00",
        "event": "window-start",
        "id": "weekly-hosted-updates",
        "effect": {"schedule.nightly": False, "schedule.realtime": False},
    }
    assert found[3].event is Event.WINDOW_END
    assert found[3].effect == {"schedule.nightly": True, "schedule.realtime": True}


@pytest.mark.parametrize(
    "window",
    [
        pytest.param({**WEEKLY, "every": "FREQ=DAILY", "start": "22:00", "duration": "8h"},
                     id="recurring"),
        pytest.param({**UPGRADE, "start": "2026-12-05T22:00", "end": "2026-12-06T06:00"},
                     id="one-off"),
    ],
)  # fmt: skip
def test_window_across_midnight(window: dict[str, Any]) -> None:
    timeline = make_timeline([window])
    inside = ["2026-12-05T22:00-06:00", "2026-12-05T23:59-06:00", "2026-12-06T00:00-06:00",
              "2026-12-06T05:59:59-06:00"]  # fmt: skip
    outside = ["2026-12-05T21:59:59-06:00", "2026-12-06T06:00-06:00", "2026-12-06T12:00-06:00"]
    assert all(timeline.active_windows(at(t)) for t in inside)
    assert not any(timeline.active_windows(at(t)) for t in outside)
    found = timeline.transitions(at("2026-12-05T12:00-06:00"), at("2026-12-06T12:00-06:00"))
    assert [(t.event.value, t.data["at"]) for t in found] == [
        ("window-start", "2026-12-05T22:00:00-06:00"),
        ("window-end", "2026-12-06T06:00:00-06:00"),
    ]


def test_one_off_window_on_the_fall_back_night_lasts_three_real_hours() -> None:
    window = {**UPGRADE, "start": "2026-11-01T01:00", "end": "2026-11-01T03:00"}
    [occurrence] = make_timeline([window]).occurrences(
        at("2026-10-31T00:00-05:00"), at("2026-11-02T00:00-06:00")
    )
    assert occurrence.end - occurrence.start == timedelta(hours=3)
    assert occurrence.local_start.isoformat() == "2026-11-01T01:00:00-05:00"  # first 01:00
    assert occurrence.local_end.isoformat() == "2026-11-01T03:00:00-06:00"


def test_recurring_duration_is_real_time_on_the_fall_back_night() -> None:
    window = {**WEEKLY, "every": "FREQ=DAILY", "start": "01:00", "duration": "2h"}
    [occurrence] = make_timeline([window]).occurrences(
        at("2026-11-01T00:00-05:00"), at("2026-11-01T00:30-06:00")
    )
    assert occurrence.local_start.isoformat() == "2026-11-01T01:00:00-05:00"
    assert occurrence.local_end.isoformat() == "2026-11-01T02:00:00-06:00"
    assert occurrence.end - occurrence.start == timedelta(hours=2)


@pytest.mark.parametrize(
    ("start", "day", "expected"),
    [
        pytest.param("02:30", "2027-03-14", ["2027-03-14T03:30:00-05:00"], id="gap-shifts-forward"),
        pytest.param("02:30", "2027-03-15", ["2027-03-15T02:30:00-05:00"], id="day-after-gap"),
        pytest.param("01:30", "2026-11-01", ["2026-11-01T01:30:00-05:00"], id="fold-first-only"),
        pytest.param("01:30", "2026-11-02", ["2026-11-02T01:30:00-06:00"], id="day-after-fold"),
    ],
)
def test_recurring_start_in_a_gap_or_fold_follows_rfc5545(
    start: str, day: str, expected: list[str]
) -> None:
    window = {**WEEKLY, "every": "FREQ=DAILY", "start": start, "duration": "30m"}
    midnight = parse_instant(day, CHICAGO)
    found = make_timeline([window]).occurrences(midnight, midnight + timedelta(hours=23))
    assert [o.local_start.isoformat() for o in found] == expected


def test_window_in_london_for_an_environment_in_chicago() -> None:
    window = {**WEEKLY, "start": "02:00", "duration": "1h", "timezone": "Europe/London"}
    timeline = make_timeline([window], timezone="America/Chicago")
    found = timeline.transitions(at("2026-10-17T00:00-05:00"), at("2026-11-09T00:00-06:00"))
    starts = [t.data["at"] for t in found if t.event is Event.WINDOW_START]
    # London falls back on 25 October, Chicago on 1 November: the gap is 5 hours in between.
    assert starts == [
        "2026-10-17T20:00:00-05:00",
        "2026-10-24T21:00:00-05:00",
        "2026-10-31T21:00:00-05:00",
        "2026-11-07T20:00:00-06:00",
    ]
    occurrences = timeline.occurrences(at("2026-10-17T00:00-05:00"), at("2026-11-09T00:00-06:00"))
    assert {o.local_start.strftime("%a %H:%M") for o in occurrences} == {"Sun 02:00"}


# --- COUNT, UNTIL, INTERVAL -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("every", "start", "expected"),
    [
        pytest.param("FREQ=WEEKLY;BYDAY=SU;COUNT=3", "2026-11-01T04:00",
                     ["11-01", "11-08", "11-15"], id="count"),
        pytest.param("FREQ=WEEKLY;COUNT=2", "2026-11-08T04:00", ["11-08", "11-15"],
                     id="count-weekday-from-start"),
        pytest.param("FREQ=WEEKLY;BYDAY=SU;UNTIL=20261115", "04:00",
                     ["11-01", "11-08", "11-15"], id="until-date-covers-the-day"),
        pytest.param("FREQ=WEEKLY;BYDAY=SU;UNTIL=20261108T100000Z", "04:00",
                     ["11-01", "11-08"], id="until-utc-inclusive"),
        pytest.param("FREQ=WEEKLY;BYDAY=SU;UNTIL=20261108T095959Z", "04:00", ["11-01"],
                     id="until-utc-a-second-early"),
        pytest.param("FREQ=WEEKLY;BYDAY=SU;UNTIL=20261108T040000", "04:00",
                     ["11-01", "11-08"], id="until-local"),
        pytest.param("FREQ=WEEKLY;INTERVAL=2;BYDAY=SU", "2026-11-01T04:00",
                     ["11-01", "11-15", "11-29"], id="interval"),
        pytest.param("RRULE:FREQ=MONTHLY;BYDAY=1SU", "04:00", ["11-01"], id="monthly"),
        pytest.param("FREQ=WEEKLY;BYDAY=SU", "2026-11-08T04:00", ["11-08", "11-15", "11-22",
                     "11-29"], id="dated-start-is-the-first"),
    ],
)  # fmt: skip
def test_count_until_interval(every: str, start: str, expected: list[str]) -> None:
    timeline = make_timeline([{**WEEKLY, "every": every, "start": start}])
    found = timeline.occurrences(at("2026-10-26T00:00-05:00"), at("2026-12-01T00:00-06:00"))
    assert [o.local_start.strftime("%m-%d") for o in found] == expected
    assert {o.local_start.strftime("%H:%M") for o in found} == {"04:00"}


def test_count_is_counted_from_the_start_not_from_the_range() -> None:
    window = {**WEEKLY, "every": "FREQ=DAILY;COUNT=3", "start": "2026-11-01T04:00"}
    timeline = make_timeline([window])
    found = timeline.occurrences(at("2026-11-02T00:00-06:00"), at("2027-01-01T00:00-06:00"))
    assert [o.local_start.strftime("%m-%d") for o in found] == ["11-02", "11-03"]
    assert timeline.next_transition(at("2026-11-03T12:00-06:00")) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"every": "FREQ=WEEKLY;BYDAY=SU;COUNT=3"}, "COUNT needs a dated start",
                     id="count-undated"),
        pytest.param({"every": "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU"}, "INTERVAL needs a dated start",
                     id="interval-undated"),
        pytest.param({"every": "FREQ=WEEKLY"}, "FREQ=WEEKLY without BYDAY", id="weekday-unknown"),
        pytest.param({"every": "FREQ=MINUTELY"}, "at most hourly", id="too-often"),
        pytest.param({"every": "BYDAY=SU"}, "has no FREQ", id="no-freq"),
        pytest.param({"every": "FREQ=WEEKLY;BYDAY=XX"}, "is not an RRULE", id="bad-day"),
        pytest.param({"every": "FREQ=DAILY;UNTIL=tomorrow"}, "UNTIL=TOMORROW", id="bad-until"),
        pytest.param({"start": "4am"}, "is not a time of day", id="bad-start"),
        pytest.param({"start": "04:00-06:00"}, "takes no offset", id="start-offset"),
        pytest.param({"duration": "five hours"}, "is not a duration", id="bad-duration"),
        pytest.param({"duration": None}, "missing duration", id="no-duration"),
        pytest.param({"timezone": "Mars/Olympus"}, "unknown time zone", id="bad-zone"),
    ],
)  # fmt: skip
def test_bad_window_is_a_config_error_naming_file_and_window(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_timeline([{**WEEKLY, **change}])
    text = str(caught.value)
    assert message in text
    assert text.startswith("environments/production/maintenance.yaml: window weekly-hosted-updates")


def test_unknown_environment_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="production: unknown time zone"):
        make_timeline([WEEKLY], timezone="Nowhere/Land")


def test_long_recurring_window_that_began_before_the_range_is_found() -> None:
    window = {**WEEKLY, "every": "FREQ=WEEKLY;BYDAY=FR", "start": "18:00", "duration": "2d12h"}
    timeline = make_timeline([window])
    sunday_noon = at("2026-11-08T12:00-06:00")  # 42 hours after Friday 18:00
    [occurrence] = timeline.active_windows(sunday_noon)
    assert occurrence.local_start.isoformat() == "2026-11-06T18:00:00-06:00"
    assert occurrence.local_end.isoformat() == "2026-11-09T06:00:00-06:00"
    [end] = timeline.transitions(sunday_noon, sunday_noon + timedelta(days=1))
    assert (end.event, end.data["at"]) == (Event.WINDOW_END, "2026-11-09T06:00:00-06:00")


def test_empty_windows_never_happen() -> None:
    backwards = {**UPGRADE, "start": "2026-12-06T06:00", "end": "2026-12-05T22:00"}
    zero = {**WEEKLY, "id": "zero", "duration": "0h"}
    timeline = make_timeline([backwards, zero])
    year = (at("2026-01-01T00:00Z"), at("2027-01-01T00:00Z"))
    assert timeline.occurrences(*year) == []
    assert timeline.transitions(*year) == []


# --- overlapping windows, boundaries --------------------------------------------------------

NIGHTLY_ONLY = {
    "id": "script-update",
    "reason": "vendor script update",
    "ticket": "SUP-99",
    "start": "2026-11-01T08:00",
    "end": "2026-11-01T12:00",
    "pause": ["nightly"],
}


def test_overlapping_windows_pause_until_the_last_ends() -> None:
    timeline = make_timeline([WEEKLY, NIGHTLY_ONLY])
    desired = {"schedule": {"nightly": True, "realtime": True}}
    both = effective(desired, timeline, at("2026-11-01T08:30-06:00"))
    assert both.state["schedule"] == {"nightly": False, "realtime": False}
    assert both.because == {
        "schedule.nightly": "maintenance window weekly-hosted-updates "
        "(hosting provider weekly update); maintenance window script-update (SUP-99)",
        "schedule.realtime": "maintenance window weekly-hosted-updates "
        "(hosting provider weekly update)",
    }
    later = effective(desired, timeline, at("2026-11-01T09:30-06:00"))
    assert later.state["schedule"] == {"nightly": False, "realtime": True}
    assert later.because == {"schedule.nightly": "maintenance window script-update (SUP-99)"}
    after = effective(desired, timeline, at("2026-11-01T12:00-06:00"))
    assert after.state == desired
    assert after.because == {}


def test_overlapping_windows_each_boundary_is_listed_with_what_it_changes() -> None:
    timeline = make_timeline([WEEKLY, NIGHTLY_ONLY])
    found = timeline.transitions(at("2026-11-01T00:00-05:00"), at("2026-11-02T00:00-06:00"))
    assert [(t.local_at.strftime("%H:%M"), t.event.value, t.id, t.effect) for t in found] == [
        ("04:00", "window-start", "weekly-hosted-updates",
         {"schedule.nightly": False, "schedule.realtime": False}),
        ("08:00", "window-start", "script-update", {}),  # nightly is already paused
        ("09:00", "window-end", "weekly-hosted-updates", {"schedule.realtime": True}),
        ("12:00", "window-end", "script-update", {"schedule.nightly": True}),
    ]  # fmt: skip


def test_back_to_back_windows_hand_over_without_resuming() -> None:
    follow_up = {**UPGRADE, "id": "follow-up", "start": "2026-11-01T09:00",
                 "end": "2026-11-01T10:00"}  # fmt: skip
    timeline = make_timeline([follow_up, WEEKLY])
    found = timeline.transitions(at("2026-11-01T00:00-05:00"), at("2026-11-02T00:00-06:00"))
    assert [(t.local_at.strftime("%H:%M"), t.event.value, t.effect) for t in found] == [
        ("04:00", "window-start", {"schedule.nightly": False, "schedule.realtime": False}),
        ("09:00", "window-end", {}),
        ("09:00", "window-start", {}),
        ("10:00", "window-end", {"schedule.nightly": True, "schedule.realtime": True}),
    ]
    assert [w.window.id for w in timeline.active_windows(at("2026-11-01T09:00-06:00"))] == [
        "follow-up"
    ]


def test_effect_follows_the_yaml_schedule() -> None:
    timeline = make_timeline([WEEKLY], schedule={"nightly": True, "realtime": False})
    [start, end] = timeline.transitions(at("2026-11-01T00:00-05:00"), at("2026-11-02T00:00-06:00"))
    assert start.effect == {"schedule.nightly": False}
    assert end.effect == {"schedule.nightly": True}
    unmanaged = make_timeline([WEEKLY], schedule=None)  # no MergeSettings: assume both on
    [start, _] = unmanaged.transitions(at("2026-11-01T00:00-05:00"), at("2026-11-02T00:00-06:00"))
    assert start.effect == {"schedule.nightly": False, "schedule.realtime": False}


BOUNDARY = at("2026-12-05T22:00-06:00")
WINDOW_END = at("2026-12-06T06:00-06:00")


@pytest.mark.parametrize(
    ("instant", "active"),
    [
        pytest.param(BOUNDARY - timedelta(microseconds=1), False, id="just-before-start"),
        pytest.param(BOUNDARY, True, id="start-is-included"),
        pytest.param(WINDOW_END - timedelta(microseconds=1), True, id="just-before-end"),
        pytest.param(WINDOW_END, False, id="end-is-excluded"),
        pytest.param(BOUNDARY.astimezone(UTC), True, id="same-instant-in-utc"),
    ],
)
def test_boundary_exactly_at_t(instant: datetime, active: bool) -> None:
    timeline = make_timeline([UPGRADE])
    assert bool(timeline.active_windows(instant)) is active
    state = effective({"schedule": dict(BOTH)}, timeline, instant).state
    assert state["schedule"]["nightly"] is not active


def test_transition_ranges_are_half_open() -> None:
    timeline = make_timeline([UPGRADE])
    assert [t.event for t in timeline.transitions(BOUNDARY, WINDOW_END)] == [Event.WINDOW_START]
    assert timeline.transitions(BOUNDARY - timedelta(hours=1), BOUNDARY) == []
    assert [t.event for t in timeline.transitions(WINDOW_END, WINDOW_END + timedelta(1))] == [
        Event.WINDOW_END
    ]
    next_one = timeline.next_transition(BOUNDARY)  # strictly after
    assert next_one is not None and next_one.event is Event.WINDOW_END
    before = timeline.next_transition(BOUNDARY - timedelta(seconds=1))
    assert before is not None and before.at == BOUNDARY
    assert timeline.next_transition(WINDOW_END) is None


@pytest.mark.parametrize(
    ("a", "b", "crossed"),
    [
        pytest.param(BOUNDARY - timedelta(hours=1), BOUNDARY, [Event.WINDOW_START], id="ends-on"),
        pytest.param(BOUNDARY, BOUNDARY + timedelta(hours=1), [], id="starts-on"),
        pytest.param(BOUNDARY + timedelta(hours=1), BOUNDARY - timedelta(hours=1),
                     [Event.WINDOW_START], id="backwards"),
        pytest.param(BOUNDARY - timedelta(hours=1), WINDOW_END,
                     [Event.WINDOW_START, Event.WINDOW_END], id="both"),
    ],
)  # fmt: skip
def test_transitions_between_for_stale_plans(
    a: datetime, b: datetime, crossed: list[Event]
) -> None:
    timeline = make_timeline([UPGRADE])
    assert [t.event for t in timeline.transitions_between(a, b)] == crossed


def test_naive_instants_are_refused() -> None:
    with pytest.raises(TimeInputError, match="has no time zone"):
        make_timeline([UPGRADE]).active_windows(datetime(2026, 12, 5, 23, 0))


# --- effective ------------------------------------------------------------------------------


def test_effective_names_the_window_as_the_design_does() -> None:
    timeline = make_timeline([UPGRADE])
    desired = {"schedule": dict(BOTH), "merges": {"courses": {"terms": ["202710"]}}}
    result = effective(desired, timeline, at("2026-12-05T23:00-06:00"))
    label = "maintenance window banner-upgrade-2026-12 (SUP-1234)"
    assert result.because == {"schedule.nightly": label, "schedule.realtime": label}
    assert result.state["merges"] == desired["merges"]
    assert [o.window.id for o in result.windows] == ["banner-upgrade-2026-12"]


def test_effective_does_not_change_desired() -> None:
    desired = {"schedule": dict(BOTH), "merges": {"sections": {"terms": ["1"]}}}
    before = copy.deepcopy(desired)
    result = effective(desired, make_timeline([UPGRADE]), at("2026-12-05T23:00-06:00"))
    assert desired == before
    result.state["schedule"]["nightly"] = "edited"
    assert desired == before
    thawed = thaw(result.state)
    thawed["merges"]["sections"]["terms"].append("2")
    assert desired == before


@pytest.mark.parametrize(
    ("desired", "state", "because"),
    [
        pytest.param({"merges": {}}, {"merges": {}}, {}, id="no-schedule-nothing-to-force"),
        pytest.param({"schedule": {"nightly": False, "realtime": True}},
                     {"schedule": {"nightly": False, "realtime": False}},
                     {"schedule.realtime"}, id="already-off-is-not-forced"),
        pytest.param({"schedule": {"realtime": True}}, {"schedule": {"realtime": False}},
                     {"schedule.realtime"}, id="only-schedules-in-desired"),
    ],
)  # fmt: skip
def test_effective_forces_only_schedules_that_are_on(
    desired: dict[str, Any], state: dict[str, Any], because: set[str]
) -> None:
    result = effective(desired, make_timeline([UPGRADE]), at("2026-12-05T23:00-06:00"))
    assert result.state == state
    assert set(result.because) == set(because)


def test_pause_list_limits_what_a_window_forces() -> None:
    result = effective({"schedule": dict(BOTH)}, make_timeline([NIGHTLY_ONLY]),
                       at("2026-11-01T09:00-06:00"))  # fmt: skip
    assert result.state["schedule"] == {"nightly": False, "realtime": True}
    assert list(result.because) == ["schedule.nightly"]


def test_window_without_ticket_is_named_by_its_reason() -> None:
    result = effective({"schedule": dict(BOTH)}, make_timeline([WEEKLY]),
                       at("2026-11-01T05:00-06:00"))  # fmt: skip
    assert result.because["schedule.nightly"] == (
        "maintenance window weekly-hosted-updates (hosting provider weekly update)"
    )


# --- phases and terms -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "phases", "terms"),
    [
        pytest.param("2026-09-30T23:59-05:00", {}, ["202710"], id="before-phases"),
        pytest.param("2026-10-01T00:00-05:00", {"202720": "open-scheduling"}, ["202710"],
                     id="phase-starts-at-local-midnight"),
        pytest.param("2026-11-12T23:59-06:00", {"202720": "open-scheduling"}, ["202710"],
                     id="last-minute-of-phase"),
        pytest.param("2026-11-13T00:00-06:00", {"202720": "final-review"}, ["202710"],
                     id="phase-end-is-the-next-start"),
        pytest.param("2026-12-18T23:59-06:00", {"202720": "final-review"}, ["202710"],
                     id="term-in-session-on-its-end-date"),
        pytest.param("2026-12-19T00:00-06:00", {"202720": "final-review"}, [],
                     id="term-ends-at-midnight-after-end"),
        pytest.param("2027-01-11T00:00-06:00", {}, ["202720"], id="phase-end-excluded"),
    ],
)  # fmt: skip
def test_current_phases_and_terms(instant: str, phases: dict[str, str], terms: list[str]) -> None:
    timeline = make_timeline(phases=PHASES, terms=TERMS)
    assert timeline.current_phases(at(instant)) == phases
    assert [t.code for t in timeline.current_terms(at(instant))] == terms


def test_phase_and_term_transitions() -> None:
    timeline = make_timeline(phases=PHASES, terms=TERMS)
    found = timeline.transitions(at("2026-11-01T00:00-05:00"), at("2027-02-01T00:00-06:00"))
    assert [(t.data["at"], t.event.value, t.id, t.effect) for t in found] == [
        ("2026-11-13T00:00:00-06:00", "phase-end", "open-scheduling",
         {"term": "202720", "phase": "open-scheduling"}),
        ("2026-11-13T00:00:00-06:00", "phase-start", "final-review",
         {"term": "202720", "phase": "final-review"}),
        ("2026-12-19T00:00:00-06:00", "term-end", "202710", {"term": "202710"}),
        ("2027-01-11T00:00:00-06:00", "phase-end", "final-review",
         {"term": "202720", "phase": "final-review"}),
        ("2027-01-11T00:00:00-06:00", "term-start", "202720", {"term": "202720"}),
    ]  # fmt: skip


def test_windows_phases_and_terms_merge_in_time_order() -> None:
    timeline = make_timeline([WEEKLY, UPGRADE], phases=PHASES, terms=TERMS)
    found = timeline.transitions(at("2026-08-01T00:00-05:00"), at("2027-08-01T00:00-05:00"))
    keys = [(t.at, t.event) for t in found]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    assert sum(t.event is Event.TERM_END for t in found) == 2
    assert sum(t.event is Event.WINDOW_START for t in found) == 52 + 1


def test_next_transition_for_status() -> None:
    timeline = make_timeline([UPGRADE], phases=PHASES, terms=TERMS)
    upcoming = timeline.next_transition(at("2026-12-05T12:00-06:00"))
    assert upcoming is not None
    assert (upcoming.event, upcoming.id) == (Event.WINDOW_START, "banner-upgrade-2026-12")
    assert upcoming.data["at"] == "2026-12-05T22:00:00-06:00"
    far = timeline.next_transition(at("2026-12-20T00:00-06:00"))
    assert far is not None and far.id == "final-review" and far.event is Event.PHASE_END
    assert timeline.next_transition(at("2027-06-01T00:00-05:00")) is None


# --- properties -----------------------------------------------------------------------------

RANGE_START = datetime(2026, 10, 20, tzinfo=UTC)  # spans both DST changes of 2026-27
RANGE_DAYS = 160
instants = st.integers(0, RANGE_DAYS * 24 * 60).map(lambda m: RANGE_START + timedelta(minutes=m))
schedules = st.dictionaries(st.sampled_from(["nightly", "realtime"]), st.booleans())
pauses = st.lists(st.sampled_from(["nightly", "realtime"]), min_size=1, max_size=2, unique=True)


@st.composite
def one_off_windows(draw: st.DrawFn, index: int) -> dict[str, Any]:
    start = draw(instants)
    length = draw(st.integers(1, 3 * 24 * 60))
    end = start + timedelta(minutes=length)
    return {"id": f"w{index}", "reason": "test", "pause": draw(pauses),
            "start": start.isoformat(), "end": end.isoformat()}  # fmt: skip


@st.composite
def weekly_windows(draw: st.DrawFn, index: int) -> dict[str, Any]:
    days = draw(st.lists(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]),
                         min_size=1, max_size=3, unique=True))  # fmt: skip
    start = draw(st.times(max_value=time(23, 59)).map(lambda t: t.replace(second=0, microsecond=0)))
    minutes = draw(st.integers(1, 30 * 60))
    return {"id": f"w{index}", "reason": "test", "pause": draw(pauses),
            "every": f"FREQ=WEEKLY;BYDAY={','.join(days)}", "start": start.strftime("%H:%M"),
            "duration": f"{minutes}m", "timezone": "America/Chicago"}  # fmt: skip


def windows_strategy() -> st.SearchStrategy[list[dict[str, Any]]]:
    one = st.integers(0, 1).flatmap(lambda i: one_off_windows(i))
    weekly = st.integers(2, 3).flatmap(lambda i: weekly_windows(i))
    return st.tuples(st.lists(one, max_size=2), st.lists(weekly, max_size=2)).map(
        lambda pair: [{**w, "id": f"w{n}"} for n, w in enumerate(pair[0] + pair[1])]
    )


def oracle_active(window: dict[str, Any], instant: datetime) -> bool:
    """Is `window` active at `instant`? Worked out day by day, without the timeline module."""
    if "every" not in window:
        return (
            datetime.fromisoformat(window["start"])
            <= instant
            < datetime.fromisoformat(window["end"])
        )
    weekdays = window["every"].split("BYDAY=")[1].split(",")
    names = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
    hour, minute = map(int, window["start"].split(":"))
    duration = timedelta(minutes=int(window["duration"][:-1]))
    local_day = instant.astimezone(CHICAGO).date()
    for back in range(3):
        day = local_day - timedelta(days=back)
        if names[day.weekday()] in weekdays:
            # A datetime made with tzinfo has fold=0: the RFC 5545 reading of gaps and folds.
            start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=CHICAGO)
            if start <= instant < start + duration:
                return True
    return False


@settings(max_examples=200, deadline=None)
@given(windows=windows_strategy(), desired_schedule=schedules, instant=instants)
def test_property_effective_state(
    windows: list[dict[str, Any]], desired_schedule: dict[str, bool], instant: datetime
) -> None:
    timeline = make_timeline(windows, schedule=desired_schedule)
    desired = {"schedule": desired_schedule, "merges": {"courses": {"terms": ["202710"]}}}
    result = effective(desired, timeline, instant)
    active = [w for w in windows if oracle_active(w, instant)]
    assert sorted(o.window.id for o in result.windows) == sorted(w["id"] for w in active)
    if not active:
        assert result.state == desired
        assert result.because == {}
        return
    paused = {name for w in active for name in w["pause"]}
    for name, on in desired_schedule.items():
        assert result.state["schedule"][name] is (on and name not in paused)
        assert (f"schedule.{name}" in result.because) is (on and name in paused)
    assert result.state["merges"] == desired["merges"]


@settings(max_examples=100, deadline=None)
@given(windows=windows_strategy(), desired_schedule=schedules, instant=instants)
def test_property_replaying_transitions_gives_the_effective_state(
    windows: list[dict[str, Any]], desired_schedule: dict[str, bool], instant: datetime
) -> None:
    timeline = make_timeline(windows, schedule=desired_schedule)
    desired = {"schedule": desired_schedule}
    origin = RANGE_START - timedelta(days=10)
    start = effective(desired, timeline, origin).state["schedule"]
    state = {f"schedule.{k}": v for k, v in start.items()}
    for transition in timeline.transitions_between(origin, instant):
        state.update({k: v for k, v in transition.effect.items() if k.startswith("schedule.")})
    expected = effective(desired, timeline, instant).state["schedule"]
    assert state == {f"schedule.{k}": v for k, v in expected.items()}


@settings(max_examples=200, deadline=None)
@given(
    days=st.lists(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]), max_size=7,
                  unique=True),
    freq=st.sampled_from(["DAILY", "WEEKLY"]),
    start=st.times().map(lambda t: t.replace(microsecond=0)),
    anchor=st.none() | st.dates(date(2024, 1, 1), date(2028, 12, 31)),
    year=st.integers(2025, 2028),
)  # fmt: skip
def test_property_fast_expansion_equals_dateutil(
    days: list[str], freq: str, start: time, anchor: date | None, year: int
) -> None:
    rule = f"FREQ={freq}" + (f";BYDAY={','.join(days)}" if days else "")
    if freq == "WEEKLY" and not days and anchor is None:
        return  # refused: the weekday would come from nowhere
    fast = _simple_year(Recurrence(rule, start, anchor), year)
    if freq == "WEEKLY" and not days:
        assert fast is None  # the weekday comes from the anchor: left to dateutil
        return
    dtstart = datetime.combine(anchor or date(year - 1, 12, 31), start)
    first, after = datetime(year, 1, 1), datetime(year + 1, 1, 1)
    expected = rrulestr(rule, dtstart=dtstart).between(first, after, inc=True)
    assert fast == tuple(d for d in expected if d < after)


def test_a_window_longer_than_its_repeat_interval_is_one_stretch() -> None:
    """Monday's 24h01m occurrence runs into Tuesday's: active once, one start and one end."""
    weekly = {"id": "long", "reason": "r", "every": "FREQ=WEEKLY;BYDAY=MO,TU", "start": "00:00",
              "duration": "1441m", "timezone": "America/Chicago", "pause": ["nightly"]}
    timeline = make_timeline([weekly])
    inside = at("2026-10-27T01:00-05:00")  # Tuesday 01:00: both occurrences cover it
    assert [o.window.id for o in timeline.active_windows(inside)] == ["long"]
    [only] = timeline.occurrences(at("2026-10-26T00:00-05:00"), at("2026-10-28T12:00-05:00"))
    assert (only.local_start.isoformat(), only.local_end.isoformat()) == (
        "2026-10-26T00:00:00-05:00", "2026-10-28T00:01:00-05:00")
