"""Renderers for `reconciler schedule`: the JSON document, a table for a person, an ICS calendar.

Place in the flow: `Timeline.transitions` (or the timelines themselves, for ICS) → here →
the CLI prints the result. Pure: no clock (DTSTAMP, when the calendar was made, comes in), no files.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from reconciler.core.timeline import Event, Phase, Term, Timeline, Transition, Window, transition_key
from reconciler.core.words import TermNames, local_time, term_label

FORMAT_VERSION = 1
PRODID = "-//reconciler//schedule//EN"
UID_DOMAIN = "reconciler"
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def iso(instant: datetime) -> str:
    """An instant as ISO 8601 with seconds and its UTC offset: 2026-11-01T04:00:00-06:00."""
    if instant.tzinfo is None:
        raise ValueError(f"{instant.isoformat()} has no time zone")
    return instant.isoformat(timespec="seconds")


def _shown(instant: datetime, tz: tzinfo | None) -> datetime:
    return instant.astimezone(tz) if tz is not None else instant


# --- JSON and text ---------------------------------------------------------------------------


def schedule_data(
    frm: datetime, to: datetime, transitions: Iterable[Transition], tz: tzinfo | None = None
) -> dict[str, Any]:
    """The `schedule --format json` document (DESIGN §3), transitions in time order.

    `from`/`to` are shown in their own offset, or in `tz` when given; each transition in
    its environment's zone.
    """
    return {
        "format_version": FORMAT_VERSION,
        "from": iso(_shown(frm, tz)),
        "to": iso(_shown(to, tz)),
        "transitions": [t.data for t in sorted(transitions, key=transition_key)],
    }


def _effect_text(effect: Mapping[str, Any]) -> str:
    if not effect:
        return "-"
    return ", ".join(
        f"{path}={value if isinstance(value, str) else json.dumps(value)}"
        for path, value in effect.items()
    )


_TERM_EVENTS = (Event.TERM_START, Event.TERM_END)


def term_names(timeline: Timeline) -> dict[str, str]:
    """The code → name table of a timeline's terms."""
    return {t.code: t.name for t in timeline.terms}


def _id_text(t: Transition, names: Mapping[str, TermNames]) -> str:
    return term_label(t.id, names.get(t.environment, {})) if t.event in _TERM_EVENTS else t.id


def schedule_text(
    frm: datetime, to: datetime, transitions: Iterable[Transition], tz: tzinfo | None = None,
    names: Mapping[str, TermNames] | None = None,
) -> str:
    """A table for a person: one line per transition, local time with its offset first, terms by name
    (`names`: per environment, code → name)."""
    span = f"{local_time(_shown(frm, tz))} to {local_time(_shown(to, tz))}"
    ordered = sorted(transitions, key=transition_key)
    if not ordered:
        return f"No transitions from {span}.\n"
    header = ("WHEN", "ENVIRONMENT", "EVENT", "ID", "EFFECT")
    rows = [
        (local_time(t.local_at), t.environment, t.event.value, _id_text(t, names or {}), _effect_text(t.effect))
        for t in ordered
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = [f"Transitions from {span}:", ""]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


# --- ICS -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarItem:
    """One VEVENT: a window occurrence, a phase or a term of one environment."""

    environment: str
    kind: str  # window | phase | term
    id: str
    start: datetime  # UTC
    end: datetime  # UTC
    tz: tzinfo
    summary: str
    description: str
    occurrence: str = ""
    """Which occurrence of a recurring window: its local date (and `-n` for the nth that day)."""

    @property
    def uid(self) -> str:
        """From what the item is, never from when: a window moved to another hour keeps its event."""
        which = f"-{self.occurrence}" if self.occurrence else ""
        return f"{self.environment}-{self.kind}-{self.id}{which}@{UID_DOMAIN}"

    @property
    def all_day(self) -> tuple[date, date] | None:
        """Terms and phases that run from local midnight to local midnight: their first day and the day
        after their last (DTEND is exclusive, RFC 5545 §3.6.1)."""
        if self.kind == "window":
            return None
        start, end = self.start.astimezone(self.tz), self.end.astimezone(self.tz)
        if (start.time(), end.time()) != (datetime.min.time(), datetime.min.time()):
            return None
        return start.date(), end.date()


def calendar_items(timeline: Timeline, frm: datetime, to: datetime) -> list[CalendarItem]:
    """Every window occurrence, phase and term of `timeline` overlapping [frm, to)."""
    lo, hi = frm.astimezone(UTC), to.astimezone(UTC)
    items: list[CalendarItem] = []
    seen: Counter[tuple[str, date]] = Counter()
    for o in timeline.occurrences(lo, hi):
        item = _window_item(timeline, o.window, o.start, o.end)
        if o.window.recurring:
            day = o.start.astimezone(timeline.tz).date()
            seen[(o.window.id, day)] += 1
            count = seen[(o.window.id, day)]
            item = replace(item, occurrence=f"{day:%Y%m%d}" + (f"-{count}" if count > 1 else ""))
        items.append(item)
    items += [_phase_item(timeline, p) for p in timeline.phases if _overlaps(p, lo, hi)]
    items += [_term_item(timeline, t) for t in timeline.terms if _overlaps(t, lo, hi)]
    return items


def _overlaps(period: Phase | Term, lo: datetime, hi: datetime) -> bool:
    return period.start < period.end and period.start < hi and period.end > lo


def _lines(*lines: str) -> str:
    return "\n".join(line for line in lines if line)


def _window_item(
    timeline: Timeline, window: Window, start: datetime, end: datetime
) -> CalendarItem:
    summary = f"[{timeline.environment}] maintenance: {window.reason or window.id}"
    description = _lines(
        window.reason,
        f"ticket: {window.ticket}" if window.ticket else "",
        f"pauses: {', '.join(window.pause)}" if window.pause else "",
        f"window: {window.id} ({window.tz})",
    )
    env, tz = timeline.environment, timeline.tz
    return CalendarItem(env, "window", window.id, start, end, tz, summary, description)


def _phase_item(timeline: Timeline, phase: Phase) -> CalendarItem:
    term = term_label(phase.term, term_names(timeline))
    summary = f"[{timeline.environment}] phase {phase.name} · {term}"
    description = _lines(
        f"phase {phase.name} of {term}",
        f"editable: {', '.join(phase.editable)}" if phase.editable else "",
        f"editors: {', '.join(phase.editors)}" if phase.editors else "",
    )
    env, tz = timeline.environment, timeline.tz
    return CalendarItem(env, "phase", phase.name, phase.start, phase.end, tz, summary, description)


def _term_item(timeline: Timeline, term: Term) -> CalendarItem:
    summary = f"[{timeline.environment}] term {term.name or term.code} ({term.code})"
    description = f"term {term.code} {term.name}".rstrip() + " in session"
    env, tz = timeline.environment, timeline.tz
    return CalendarItem(env, "term", term.code, term.start, term.end, tz, summary, description)


def _vevent(item: CalendarItem, stamp: datetime) -> Any:
    from icalendar import Event as VEvent

    event = VEvent()
    event.add("uid", item.uid)
    event.add("dtstamp", stamp)
    event.add("sequence", sequence(stamp))
    days = item.all_day
    event.add("dtstart", days[0] if days else item.start.astimezone(item.tz))
    event.add("dtend", days[1] if days else item.end.astimezone(item.tz))
    event.add("summary", item.summary)
    event.add("description", item.description)
    event.add("categories", [item.kind])
    event.add("transp", "TRANSPARENT" if item.kind == "term" else "OPAQUE")
    return event


def sequence(stamp: datetime) -> int:
    """SEQUENCE: the minutes from 2020 to when the calendar was made. A later calendar always carries a
    higher one, so a calendar program takes a moved window's new times over the old (RFC 5545 §3.8.7.4)."""
    return max(0, int((stamp - _EPOCH).total_seconds() // 60))


def schedule_ics(timelines: Iterable[Timeline], frm: datetime, to: datetime, *, stamp: datetime) -> bytes:
    """An RFC 5545 calendar: one VEVENT per window occurrence, phase and term in [frm, to).

    Windows carry the environment's TZID, with a VTIMEZONE for each; terms and phases are all-day
    events. DTSTAMP is `stamp`, when the calendar was made, so the same input always gives the same
    bytes. (icalendar is imported here: text and JSON need none of it.)
    """
    from icalendar import Calendar

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "reconciler schedule")
    items = [item for timeline in timelines for item in calendar_items(timeline, frm, to)]
    items.sort(key=lambda i: (i.start, i.environment, i.kind, i.id))
    stamp = stamp.astimezone(UTC)
    for item in items:
        calendar.add_component(_vevent(item, stamp))
    if items:
        first = min(item.start for item in items) - timedelta(days=1)
        last = max(item.end for item in items) + timedelta(days=1)
        calendar.add_missing_timezones(first_date=first.date(), last_date=last.date())
    return bytes(calendar.to_ical())
