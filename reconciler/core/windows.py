"""Maintenance windows: one-off and recurring (RFC 5545 RRULE over wall-clock time), and their
expansion into UTC spans (pure).

Place in the flow: `timeline.Timeline.from_spec` makes Window values with `window_from_data`;
`spans` expands them within a range, DST-correct, with expansions cached per (rule, year).
Intervals are half-open: [start, end). Durations are exact (real) time.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from operator import itemgetter
from typing import Any

from dateutil.rrule import rrule, rruleset, rrulestr

from reconciler.core.clock import (
    check_year,
    get_zone,
    local_midnight,
    parse_duration,
    required,
    to_utc,
    yaml_instant,
)
from reconciler.errors import ConfigError
from reconciler.model import SCHEDULES

_ZERO = timedelta(0)
_TICK = timedelta(microseconds=1)
_WEEK = timedelta(days=7)
_NAIVE_EPOCH = datetime(2000, 1, 1)
_EPOCH = _NAIVE_EPOCH.replace(tzinfo=UTC)
_SLACK = timedelta(days=1)  # more than any UTC-offset change, for local-to-UTC range guesses
# dateutil walks to year 9999 looking for an occurrence of a rule that has none (FREQ=DAILY;BYMONTH=2;
# BYMONTHDAY=30 takes seconds): a rule is first tried from here, where that walk is 30 years long.
_PROBE_START = datetime(9970, 1, 1)


@dataclass(frozen=True)
class Recurrence:
    """An RRULE over wall-clock time, zone-free so expansions are shared across zones.

    `rule` holds the RRULE parts without UNTIL (see `Window.until`). `anchor` is DTSTART's
    date when the window gave one; without it the rule's BY parts must pin every occurrence.
    """

    rule: str
    start_time: time
    anchor: date | None = None


@dataclass(frozen=True)
class Window:
    """A maintenance window: one-off (`start`, `end`) or recurring (`recurrence`, `duration`)."""

    id: str
    reason: str
    ticket: str | None
    pause: tuple[str, ...]
    tz: tzinfo
    start: datetime | None = None
    end: datetime | None = None
    recurrence: Recurrence | None = None
    duration: timedelta = timedelta(0)
    until: datetime | None = None  # last allowed start of a recurrence, UTC, inclusive

    @property
    def recurring(self) -> bool:
        return self.recurrence is not None

    @property
    def label(self) -> str:
        """How a plan names this window in `because`."""
        detail = self.ticket or self.reason
        return f"maintenance window {self.id}" + (f" ({detail})" if detail else "")


@dataclass(frozen=True)
class Occurrence:
    """One stretch of a window, [start, end) in UTC."""

    window: Window
    start: datetime
    end: datetime

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(self.window.tz)

    @property
    def local_end(self) -> datetime:
        return self.end.astimezone(self.window.tz)


def window_from_data(data: Mapping[str, Any], default_tz: tzinfo) -> Window:
    """One entry of MaintenanceWindows.windows; raises ConfigError or TimeInputError."""
    tz = get_zone(data["timezone"]) if data.get("timezone") else default_tz
    ticket, pause = data.get("ticket"), data.get("pause")
    common: dict[str, Any] = {
        "id": str(required(data, "id")),
        "reason": str(data.get("reason") or ""),
        "ticket": str(ticket) if ticket not in (None, "") else None,
        "pause": tuple(str(p) for p in (SCHEDULES if pause is None else pause)),
        "tz": tz,
    }
    if data.get("every") is None:
        start = yaml_instant(required(data, "start"), tz)
        return Window(**common, start=start, end=yaml_instant(required(data, "end"), tz))
    parts = _rule_parts(str(data["every"]))
    until = _until(parts.pop("UNTIL", None), tz)
    start_time, anchor = _recurring_start(required(data, "start"))
    if anchor is None:
        _require_pinned(parts)
    rule = ";".join(f"{key}={value}" for key, value in parts.items())
    _check_rule(rule, str(data["every"]))
    recurrence = Recurrence(rule, start_time, anchor)
    duration = parse_duration(required(data, "duration"))
    return Window(**common, recurrence=recurrence, duration=duration, until=until)


def rule_parts(rule: str) -> dict[str, str]:
    """The parts of a rule as `Recurrence.rule` holds it (checked already): FREQ=WEEKLY;BYDAY=SU."""
    return dict(item.split("=", 1) for item in rule.split(";"))


def _rule_parts(text: str) -> dict[str, str]:
    body = text.strip()
    if body.upper().startswith("RRULE:"):  # as calendars write it (RFC 5545's content line)
        body = body[len("RRULE:") :]
    parts: dict[str, str] = {}
    for item in filter(None, body.split(";")):
        key, sep, value = item.partition("=")
        key = key.strip().upper()
        if not sep or not value.strip() or key in parts:
            raise ConfigError(f"every {text!r} is not an RRULE (bad or repeated part {item!r})")
        parts[key] = value.strip().upper()
    if "FREQ" not in parts:
        raise ConfigError(f"every {text!r} has no FREQ")
    if parts["FREQ"] in ("MINUTELY", "SECONDLY"):
        raise ConfigError(f"every {text!r}: maintenance windows recur at most hourly")
    return parts


@lru_cache(maxsize=1024)
def _check_rule(rule: str, text: str) -> None:
    try:
        rrulestr(rule, dtstart=datetime(2000, 1, 1))
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise ConfigError(f"every {text!r} is not an RRULE: {e}") from e
    # COUNT and INTERVAL only thin a rule out; without them, whether any day matches is the question.
    loose = ";".join(f"{k}={v}" for k, v in rule_parts(rule).items() if k not in ("COUNT", "INTERVAL"))
    if next(iter(rrulestr(loose, dtstart=_PROBE_START)), None) is None:
        raise ConfigError(f"every {text!r} never occurs (no date matches all of its parts)")


_PINS = ("BYMONTHDAY", "BYDAY", "BYYEARDAY", "BYWEEKNO")


_FREQ_PINS = {"WEEKLY": ("BYDAY",), "MONTHLY": _PINS, "YEARLY": _PINS}


def _require_pinned(parts: Mapping[str, str]) -> None:
    """Without DTSTART's date, refuse rules whose occurrences would depend on one."""
    hint = "needs a dated start to count from (e.g. start: 2026-11-01T04:00)"
    if "COUNT" in parts:
        raise ConfigError(f"COUNT {hint}")
    if parts.get("INTERVAL", "1").lstrip("0") != "1":
        raise ConfigError(f"INTERVAL {hint}")
    pins = _FREQ_PINS.get(parts["FREQ"], ())
    if pins and not any(pin in parts for pin in pins):
        raise ConfigError(f"FREQ={parts['FREQ']} without {' or '.join(pins)} {hint}")


def _recurring_start(value: Any) -> tuple[time, date | None]:
    """`04:00` (wall-clock time) or `2026-11-01T04:00` (also DTSTART's date)."""
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text) if "T" in text.upper() else None
        start = parsed.time() if parsed else time.fromisoformat(text)
    except ValueError as e:
        raise ConfigError(f"start {text!r} is not a time of day like 04:00") from e
    if start.tzinfo is not None or (parsed is not None and parsed.tzinfo is not None):
        raise ConfigError(f"start {text!r} of a recurring window takes no offset; set timezone")
    if parsed is not None:
        check_year(f"start {text!r}", parsed.year)
    return start, parsed.date() if parsed else None


def _until(value: str | None, tz: tzinfo) -> datetime | None:
    """RRULE UNTIL as the last allowed start (UTC); a date covers that whole local day."""
    if value is None:
        return None
    for fmt, kind in (("%Y%m%d", "date"), ("%Y%m%dT%H%M%SZ", "utc"), ("%Y%m%dT%H%M%S", "local")):
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        check_year(f"UNTIL={value}", parsed.year)
        if kind == "date":
            return local_midnight(parsed.date() + timedelta(days=1), tz) - _TICK
        return parsed.replace(tzinfo=UTC) if kind == "utc" else to_utc(parsed, tz)
    raise ConfigError(f"UNTIL={value} is not a date (20261231) or date-time (20261231T235959Z)")


_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@lru_cache(maxsize=1024)
def _anchored_rule(rec: Recurrence) -> rrule | rruleset:
    assert rec.anchor is not None
    return rrulestr(rec.rule, dtstart=datetime.combine(rec.anchor, rec.start_time), cache=True)


@lru_cache(maxsize=16384)
def _year_starts(rec: Recurrence, year: int) -> tuple[datetime, ...]:
    """Wall-clock starts of `rec` in one calendar year, sorted."""
    first, after = datetime(year, 1, 1), datetime(year + 1, 1, 1)
    fast = _simple_year(rec, year)
    if fast is not None:
        return fast
    rule: rrule | rruleset
    if rec.anchor is not None:
        rule = _anchored_rule(rec)
    else:
        # A pinned rule's occurrences do not depend on DTSTART's date: start just before.
        dtstart = datetime.combine(date(year - 1, 12, 31), rec.start_time)
        rule = rrulestr(rec.rule, dtstart=dtstart)
    return tuple(d for d in rule.between(first, after, inc=True) if d < after)


def year_starts(rec: Recurrence, year: int) -> tuple[datetime, ...]:
    """Wall-clock starts of `rec` in one calendar year, sorted (cached; for rules that do not flood)."""
    return _year_starts(rec, year)


def starts_after(rec: Recurrence, lo: datetime) -> Iterator[datetime]:
    """Wall-clock starts at or after `lo`, drawn one at a time: a rule that floods is never expanded."""
    if rec.anchor is not None:
        return iter(_anchored_rule(rec).xafter(lo, inc=True))
    dtstart = datetime.combine(lo.date() - timedelta(days=1), rec.start_time)
    return iter(rrulestr(rec.rule, dtstart=dtstart).xafter(lo, inc=True))


def _simple_year(rec: Recurrence, year: int) -> tuple[datetime, ...] | None:
    """DAILY, or WEEKLY on plain weekdays, without COUNT or INTERVAL: ten times faster by hand.

    dateutil spends ~9 µs an occurrence; a fleet of weekly windows is almost all this shape.
    A property test holds this equal to dateutil.
    """
    parts = rule_parts(rec.rule)
    freq, days = parts.pop("FREQ"), parts.pop("BYDAY", None)
    parts.pop("WKST", None)
    if parts or freq not in ("DAILY", "WEEKLY"):
        return None
    if days is None:
        if freq == "WEEKLY":
            return None  # the weekday comes from DTSTART
        weekdays = set(range(7))
    elif all(d in _WEEKDAYS for d in days.split(",")):
        weekdays = {_WEEKDAYS.index(d) for d in days.split(",")}
    else:
        return None
    first, end = date(year, 1, 1), date(year + 1, 1, 1)
    if rec.anchor is not None:
        first = max(first, rec.anchor)
    stop = datetime.combine(end, time())
    starts = []
    for weekday in weekdays:
        start = datetime.combine(
            first + timedelta(days=(weekday - first.weekday()) % 7), rec.start_time
        )
        while start < stop:
            starts.append(start)
            start += _WEEK
    return tuple(sorted(starts))


Span = tuple[datetime, datetime, Window]


"""An occurrence before it is made an Occurrence: (start, end, window), UTC."""


def _recurring(window: Window, lo: datetime, hi: datetime) -> list[Span]:
    """Spans with start < hi and end >= lo (UTC)."""
    assert window.recurrence is not None
    tz, duration, until = window.tz, window.duration, window.until
    first = (lo - duration).astimezone(tz).replace(tzinfo=None) - _SLACK
    last = hi.astimezone(tz).replace(tzinfo=None) + _SLACK
    if until is not None:
        last = min(last, until.astimezone(tz).replace(tzinfo=None) + _SLACK)
    found = []
    offset = tz.utcoffset
    for year in range(first.year, last.year + 1):
        starts = _year_starts(window.recurrence, year)
        for naive in starts[bisect_left(starts, first) : bisect_right(starts, last)]:
            start = _EPOCH + (naive - _NAIVE_EPOCH - (offset(naive) or _ZERO))  # to_utc: hot
            end = start + duration
            if start < hi and end >= lo and (until is None or start <= until):
                found.append((start, end, window))
    return _joined(found)


def _joined(found: list[Span]) -> list[Span]:
    """One window's spans by start, with those that overlap or touch made one (a window longer than its
    repeat interval is one stretch: active once, starting and ending once)."""
    joined: list[Span] = []
    for start, end, window in found:
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]), window)
        else:
            joined.append((start, end, window))
    return joined


def clusters(spans: list[Span]) -> Iterator[list[Span]]:
    """Spans (by start) grouped where they meet or overlap; a lone span is a cluster of one."""
    cluster: list[Span] = []
    reach = _EPOCH
    for span in spans:
        if cluster and span[0] > reach:
            yield cluster
            cluster = []
        reach = max(reach, span[1]) if cluster else span[1]
        cluster.append(span)
    if cluster:
        yield cluster


def spans(windows: Iterable[Window], lo: datetime, hi: datetime) -> list[Span]:
    """Non-empty spans with start < hi and end >= lo (so one ending at lo is kept), by start."""
    found: list[Span] = []
    for window in windows:
        start, end = window.start, window.end
        if window.recurrence is not None:
            if window.duration > timedelta(0):
                found.extend(_recurring(window, lo, hi))
        elif start is not None and end is not None and start < end and start < hi and end >= lo:
            found.append((start, end, window))
    found.sort(key=itemgetter(0))
    return found


def clear_window_caches() -> None:
    """Forget cached expansions and rule checks (for benchmarks measuring a cold start)."""
    _year_starts.cache_clear()
    _anchored_rule.cache_clear()
    _check_rule.cache_clear()
