"""The timeline of one environment: maintenance windows, phases and terms, as instants.

Place in the flow: `load` gives an EnvironmentSpec; `Timeline.from_spec` turns its time-bearing
kinds into values; `effective(desired, timeline, at)` is what `plan` diffs against live, and
`Timeline.transitions` feeds `schedule`, `status` and the stale-plan check. Pure: time comes
in as `at`, never from the clock.

Conventions:

- Every instant this module returns from a Timeline is aware and in UTC (`local_start`,
  `local_at` give local views). Python compares and subtracts two datetimes that share a
  ZoneInfo by wall clock, ignoring the fold, so nothing here does arithmetic in local time.
- Intervals are half-open: [start, end).
- Local times written in YAML follow RFC 5545: a time in a gap moves forward by the gap's
  length, a time in a fold is its first occurrence. A time typed as an option
  (`parse_instant`, strict) is refused instead, unless it carries an offset.
- Durations are exact (real) time: `2d` is 48 hours even across a DST change.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import Enum
from functools import cached_property, lru_cache
from itertools import groupby
from operator import itemgetter
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

from reconciler.errors import ConfigError, TimeInputError
from reconciler.model import SCHEDULES, EnvironmentSpec, Kind

_ZERO = timedelta(0)
_TICK = timedelta(microseconds=1)
_WEEK = timedelta(days=7)
_NAIVE_EPOCH = datetime(2000, 1, 1)
_EPOCH = _NAIVE_EPOCH.replace(tzinfo=UTC)
_SLACK = timedelta(days=1)  # more than any UTC-offset change, for local-to-UTC range guesses
_T = TypeVar("_T")
_HORIZONS = (timedelta(days=8), timedelta(days=400), timedelta(days=3660))


class Event(str, Enum):
    """What happens at a transition (the `event` of `schedule --format json`)."""

    WINDOW_START = "window-start"
    WINDOW_END = "window-end"
    PHASE_START = "phase-start"
    PHASE_END = "phase-end"
    TERM_START = "term-start"
    TERM_END = "term-end"


_START, _END = Event.WINDOW_START, Event.WINDOW_END

# At one instant, ends are listed before starts: "A ends, B starts" reads as what happens.
_RANK = {
    Event.WINDOW_END: 0,
    Event.PHASE_END: 1,
    Event.TERM_END: 2,
    Event.TERM_START: 3,
    Event.PHASE_START: 4,
    Event.WINDOW_START: 5,
}


# --- parsing ---------------------------------------------------------------------------------


def get_zone(name: str | tzinfo) -> tzinfo:
    """The IANA zone `name` (a tzinfo passes through); unknown names are a TimeInputError."""
    if isinstance(name, tzinfo):
        return name
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as e:
        raise TimeInputError(f"unknown time zone {name!r}") from e


def local_kind(naive: datetime, tz: tzinfo) -> str | None:
    """'gap' if wall-clock `naive` does not exist in `tz`, 'fold' if it happens twice, else None."""
    first = naive.replace(tzinfo=tz, fold=0)
    if first.utcoffset() == naive.replace(tzinfo=tz, fold=1).utcoffset():
        return None
    back = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return "fold" if back == naive else "gap"


def to_utc(naive: datetime, tz: tzinfo) -> datetime:
    """Wall-clock `naive` in `tz` as a UTC instant, resolved as RFC 5545 says (fold=0)."""
    # Arithmetic rather than replace(tzinfo=...).astimezone(): ten times faster, and the
    # offset a zone gives a fold=0 wall-clock time is the one RFC 5545 asks for.
    offset = tz.utcoffset(naive.replace(fold=0) if naive.fold else naive)
    return _EPOCH + (naive - _NAIVE_EPOCH - (offset or _ZERO))


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The instant (UTC) `day` begins in `tz`."""
    return to_utc(datetime.combine(day, time()), tz)


def parse_instant(text: str, tz: str | tzinfo, *, strict: bool = True) -> datetime:
    """An ISO 8601 date-time or date; without an offset it is wall-clock time in `tz`.

    A date means local midnight (the day's first instant, where midnight does not exist).
    With `strict` (options typed by a person) a local time that does not exist or happens
    twice is refused; otherwise it is resolved as RFC 5545 says. Returns an aware datetime:
    in its own offset if one was given, else normalised in `tz`.
    """
    zone = get_zone(tz)
    value = text.strip() if isinstance(text, str) else ""
    if not value:
        raise TimeInputError("a time is required, e.g. 2026-12-05T22:00")
    day = _iso_date(value)
    if day is not None:
        return local_midnight(day, zone).astimezone(zone)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise TimeInputError(
            f"{value!r} is not an ISO 8601 time (e.g. 2026-12-05T22:00 or 2026-12-05T22:00-06:00)"
        ) from e
    if parsed.tzinfo is not None:
        return parsed
    if strict:
        _refuse_gap_or_fold(value, parsed, zone)
    return to_utc(parsed, zone).astimezone(zone)


def _iso_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _refuse_gap_or_fold(value: str, naive: datetime, zone: tzinfo) -> None:
    kind = local_kind(naive, zone)
    if kind == "gap":
        raise TimeInputError(
            f"{value} does not exist in {zone} (clocks go forward); give an offset"
        )
    if kind == "fold":
        first, second = (naive.replace(tzinfo=zone, fold=f).isoformat() for f in (0, 1))
        raise TimeInputError(
            f"{value} is ambiguous in {zone} (clocks go back: {first} or {second}); give an offset"
        )


_SHORT_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ISO_DURATION = re.compile(r"p(?:(\d+)w)?(?:(\d+)d)?(?:t(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?)?")


def parse_duration(text: str) -> timedelta:
    """`5h`, `90m`, `1h30m`, `2d` (or ISO 8601 `PT5H`) as exact time; `0h` is zero."""
    value = str(text).strip().lower().replace(" ", "")
    short = _SHORT_DURATION.fullmatch(value)
    if value and short and any(short.groups()):
        days, hours, minutes, seconds = (int(g or 0) for g in short.groups())
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    iso = _ISO_DURATION.fullmatch(value)
    if iso and any(iso.groups()):
        weeks, days, hours, minutes, seconds = (int(g or 0) for g in iso.groups())
        return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    raise TimeInputError(f"{text!r} is not a duration (e.g. 5h, 90m, 1h30m, 2d)")


def _aware_utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise TimeInputError(f"{at.isoformat()} has no time zone")
    return at.astimezone(UTC)


# --- values ----------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Phase:
    """A phase of a term: [local midnight of start, local midnight of end), UTC."""

    name: str
    term: str
    start: datetime
    end: datetime
    editable: tuple[str, ...] = ()
    editors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Term:
    """A term in session: [local midnight of start, local midnight after end), UTC."""

    code: str
    name: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Transition:
    """A boundary of the timeline. `at` is UTC; `tz` is the environment's zone, for display.

    `effect` for window events maps a setting path to the value it takes at `at`
    (window-start: `{"schedule.nightly": False, ...}`; window-end: `{"schedule.nightly": True}`,
    the YAML's value coming back). A path is listed only if the event changes it: a schedule
    still paused by an overlapping window, or off in the YAML, is left out. Phase events carry
    `{"term": code, "phase": name}` and term events `{"term": code}`.
    """

    environment: str
    at: datetime
    event: Event
    id: str
    effect: Mapping[str, Any] = field(default_factory=dict)
    tz: tzinfo = UTC

    @property
    def local_at(self) -> datetime:
        return self.at.astimezone(self.tz)

    @property
    def data(self) -> dict[str, Any]:
        """The JSON shape of `schedule --format json` (DESIGN §3)."""
        return {
            "environment": self.environment,
            "at": self.local_at.isoformat(timespec="seconds"),
            "event": self.event.value,
            "id": self.id,
            "effect": dict(self.effect),
        }


def _new_transition(
    environment: str,
    at: datetime,
    event: Event,
    id_: str,
    effect: Mapping[str, Any],
    tz: tzinfo,
) -> Transition:
    """Transition(...) without the frozen __init__, which is half the cost of a fleet's year."""
    made = object.__new__(Transition)
    fields = {
        "environment": environment,
        "at": at,
        "event": event,
        "id": id_,
        "effect": effect,
        "tz": tz,
    }
    object.__setattr__(made, "__dict__", fields)
    return made


def _merged(ordered: list[Transition], extra: list[Transition]) -> list[Transition]:
    """`extra` put into `ordered` (in transition_key order) without a key for every element."""
    instants = [t.at for t in ordered]
    for t in sorted(extra, key=transition_key, reverse=True):
        # Going from the last, every index found in `instants` is still right in `ordered`.
        i = bisect_left(instants, t.at)
        while (
            i < len(ordered)
            and ordered[i].at == t.at
            and transition_key(ordered[i]) < transition_key(t)
        ):
            i += 1
        ordered.insert(i, t)
    return ordered


def transition_key(t: Transition) -> tuple[datetime, str, int, str]:
    """Time order, then a stable order for transitions at one instant (ends before starts)."""
    return (t.at, t.environment, _RANK[t.event], t.id)


@dataclass(frozen=True)
class Effective:
    """The desired state at one instant: `state` with pauses applied, and why each was forced."""

    state: dict[str, Any]
    because: dict[str, str]
    windows: tuple[Occurrence, ...] = ()


# --- from YAML -------------------------------------------------------------------------------


def _required(data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    if value is None or value == "":
        raise ConfigError(f"missing {key}")
    return value


def _yaml_instant(value: Any, tz: tzinfo) -> datetime:
    """A YAML time (string, or a date/datetime from a lenient loader) as a UTC instant."""
    if isinstance(value, datetime):
        return to_utc(value, tz) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return local_midnight(value, tz)
    return _yaml_text_instant(str(value), tz)


# A fleet repeats the same dates (from _base/) in every environment: parse each once.
@lru_cache(maxsize=4096)
def _yaml_text_instant(text: str, tz: tzinfo) -> datetime:
    return parse_instant(text, tz, strict=False).astimezone(UTC)


def _yaml_end_of_day(value: Any, tz: tzinfo) -> datetime:
    """A term's end: a date covers that whole day, so the instant is the next local midnight."""
    day = value if type(value) is date else _iso_date(str(value).strip())
    if day is not None:
        return local_midnight(day + timedelta(days=1), tz)
    return _yaml_instant(value, tz)


def window_from_data(data: Mapping[str, Any], default_tz: tzinfo) -> Window:
    """One entry of MaintenanceWindows.windows; raises ConfigError or TimeInputError."""
    tz = get_zone(data["timezone"]) if data.get("timezone") else default_tz
    ticket, pause = data.get("ticket"), data.get("pause")
    common: dict[str, Any] = {
        "id": str(_required(data, "id")),
        "reason": str(data.get("reason") or ""),
        "ticket": str(ticket) if ticket not in (None, "") else None,
        "pause": tuple(str(p) for p in (SCHEDULES if pause is None else pause)),
        "tz": tz,
    }
    if data.get("every") is None:
        start = _yaml_instant(_required(data, "start"), tz)
        return Window(**common, start=start, end=_yaml_instant(_required(data, "end"), tz))
    parts = _rule_parts(str(data["every"]))
    until = _until(parts.pop("UNTIL", None), tz)
    start_time, anchor = _recurring_start(_required(data, "start"))
    if anchor is None:
        _require_pinned(parts)
    rule = ";".join(f"{key}={value}" for key, value in parts.items())
    _check_rule(rule, str(data["every"]))
    recurrence = Recurrence(rule, start_time, anchor)
    duration = parse_duration(_required(data, "duration"))
    return Window(**common, recurrence=recurrence, duration=duration, until=until)


def _rule_parts(text: str) -> dict[str, str]:
    body = text.strip()
    if body.upper().startswith("RRULE:"):
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
        if kind == "date":
            return local_midnight(parsed.date() + timedelta(days=1), tz) - _TICK
        return parsed.replace(tzinfo=UTC) if kind == "utc" else to_utc(parsed, tz)
    raise ConfigError(f"UNTIL={value} is not a date (20261231) or date-time (20261231T235959Z)")


def _phase(data: Mapping[str, Any], tz: tzinfo) -> Phase:
    return Phase(
        name=str(_required(data, "name")),
        term=str(_required(data, "term")),
        start=_yaml_instant(_required(data, "start"), tz),
        end=_yaml_instant(_required(data, "end"), tz),
        editable=tuple(str(f) for f in data.get("editable") or ()),
        editors=tuple(str(r) for r in data.get("editors") or ()),
    )


def _term(data: Mapping[str, Any], tz: tzinfo) -> Term:
    return Term(
        code=str(_required(data, "code")),
        name=str(data.get("name") or ""),
        start=_yaml_instant(_required(data, "start"), tz),
        end=_yaml_end_of_day(_required(data, "end"), tz),
    )


def _entries(spec: EnvironmentSpec, kind: Kind, key: str) -> tuple[str, list[Mapping[str, Any]]]:
    doc = spec.docs.get(kind)
    if doc is None:
        return "", []
    return doc.file, list(doc.data.get(key) or [])


def _spec_items(
    spec: EnvironmentSpec, kind: Kind, key: str, tz: tzinfo, make: Callable[[Any, tzinfo], _T]
) -> tuple[_T, ...]:
    """Every entry of one kind, made into a value; a bad entry is a ConfigError naming it."""
    file, entries = _entries(spec, kind, key)
    made: list[_T] = []
    for index, entry in enumerate(entries):
        try:
            made.append(make(entry, tz))
        except (ConfigError, TimeInputError) as e:
            name = entry.get("id") or entry.get("name") or entry.get("code") or f"#{index + 1}"
            raise ConfigError(f"{file}: {key[:-1]} {name}: {e}") from e
    return tuple(made)


# --- expansion -------------------------------------------------------------------------------


_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


_BUILT: dict[int, tuple[EnvironmentSpec, Timeline]] = {}
"""Timelines by spec identity (the spec is kept alive beside its timeline, so an id is never reused)."""
_BUILT_MAX = 4096


def clear_caches() -> None:
    """Forget cached expansions (for benchmarks measuring a cold start)."""
    _BUILT.clear()
    _year_starts.cache_clear()
    _anchored_rule.cache_clear()
    _check_rule.cache_clear()
    _yaml_text_instant.cache_clear()


@lru_cache(maxsize=1024)
def _anchored_rule(rec: Recurrence) -> rrule:
    assert rec.anchor is not None
    return rrulestr(rec.rule, dtstart=datetime.combine(rec.anchor, rec.start_time), cache=True)


@lru_cache(maxsize=16384)
def _year_starts(rec: Recurrence, year: int) -> tuple[datetime, ...]:
    """Wall-clock starts of `rec` in one calendar year, sorted."""
    first, after = datetime(year, 1, 1), datetime(year + 1, 1, 1)
    fast = _simple_year(rec, year)
    if fast is not None:
        return fast
    if rec.anchor is not None:
        rule = _anchored_rule(rec)
    else:
        # A pinned rule's occurrences do not depend on DTSTART's date: start just before.
        dtstart = datetime.combine(date(year - 1, 12, 31), rec.start_time)
        rule = rrulestr(rec.rule, dtstart=dtstart)
    return tuple(d for d in rule.between(first, after, inc=True) if d < after)


def _simple_year(rec: Recurrence, year: int) -> tuple[datetime, ...] | None:
    """DAILY, or WEEKLY on plain weekdays, without COUNT or INTERVAL: ten times faster by hand.

    dateutil spends ~9 µs an occurrence; a fleet of weekly windows is almost all this shape.
    A property test holds this equal to dateutil.
    """
    parts = dict(item.split("=", 1) for item in rec.rule.split(";"))
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
    return found


def _clusters(spans: list[Span]) -> Iterator[list[Span]]:
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


def _spans(windows: Iterable[Window], lo: datetime, hi: datetime) -> list[Span]:
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


# --- the timeline ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """Windows, phases and terms of one environment.

    `schedule` is the YAML's `schedule` mapping (None when MergeSettings is not managed: then
    a window's effect assumes its schedules are on), used only for transition effects.
    """

    environment: str
    tz: tzinfo
    windows: tuple[Window, ...] = ()
    phases: tuple[Phase, ...] = ()
    terms: tuple[Term, ...] = ()
    schedule: Mapping[str, Any] | None = None

    @classmethod
    def from_spec(cls, spec: EnvironmentSpec) -> Timeline:
        """The environment's timeline; built once per loaded spec (policy, plan and safety all ask)."""
        built = _BUILT.get(id(spec))
        if built is not None and built[0] is spec:
            return built[1]
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.clear()
        timeline = cls._build(spec)
        _BUILT[id(spec)] = (spec, timeline)
        return timeline

    @classmethod
    def _build(cls, spec: EnvironmentSpec) -> Timeline:
        try:
            tz = get_zone(spec.timezone)
        except TimeInputError as e:
            raise ConfigError(f"{spec.name}: {e}") from e
        merge = spec.data(Kind.MERGE_SETTINGS)
        return cls(
            environment=spec.name,
            tz=tz,
            windows=_spec_items(spec, Kind.MAINTENANCE, "windows", tz, window_from_data),
            phases=_spec_items(spec, Kind.PHASES, "phases", tz, _phase),
            terms=_spec_items(spec, Kind.TERMS, "terms", tz, _term),
            schedule=None if merge is None else dict(merge.get("schedule") or {}),
        )

    def occurrences(self, start: datetime, end: datetime) -> list[Occurrence]:
        """Window occurrences overlapping [start, end), by start."""
        lo, hi = _aware_utc(start), _aware_utc(end)
        spans = sorted(_spans(self.windows, lo, hi), key=lambda s: (s[0], s[2].id))
        return [Occurrence(window, s, e) for s, e, window in spans if e > lo]

    def active_windows(self, at: datetime) -> list[Occurrence]:
        """Occurrences with start <= at < end."""
        return self.occurrences(at, _aware_utc(at) + _TICK)

    def current_phases(self, at: datetime) -> dict[str, str]:
        """term code -> the phase in force at `at` (the latest started, if phases overlap)."""
        instant = _aware_utc(at)
        current: dict[str, str] = {}
        for phase in sorted(self.phases, key=lambda p: (p.start, p.name)):
            if phase.start <= instant < phase.end:
                current[phase.term] = phase.name
        return current

    def current_terms(self, at: datetime) -> list[Term]:
        """Terms in session at `at`."""
        instant = _aware_utc(at)
        return [term for term in self.terms if term.start <= instant < term.end]

    def transitions(self, start: datetime, end: datetime) -> list[Transition]:
        """Every boundary with start <= at < end, in `transition_key` order."""
        lo, hi = _aware_utc(start), _aware_utc(end)
        found = self._window_transitions(lo, hi)  # already in order
        return _merged(found, [t for t in self._period_transitions if lo <= t.at < hi])

    def transitions_between(self, a: datetime, b: datetime) -> list[Transition]:
        """Transitions in (min, max]: the effective state at `a` and at `b` differ only by these.

        A saved plan is stale when this is not empty for its `at` and the moment of apply.
        """
        lo, hi = sorted((_aware_utc(a), _aware_utc(b)))
        return [t for t in self.transitions(lo, hi + _TICK) if t.at > lo]

    def next_transition(self, at: datetime) -> Transition | None:
        """The first transition strictly after `at` (within ten years), or None."""
        instant = _aware_utc(at)
        for horizon in _HORIZONS:
            later = [t for t in self.transitions(instant, instant + horizon) if t.at > instant]
            if later:
                return later[0]
        return None

    @cached_property
    def _period_transitions(self) -> tuple[Transition, ...]:
        found: list[Transition] = []
        for p in self.phases:
            if p.start < p.end:
                effect = {"term": p.term, "phase": p.name}
                found.append(self._transition(p.start, Event.PHASE_START, p.name, effect))
                found.append(self._transition(p.end, Event.PHASE_END, p.name, effect))
        for t in self.terms:
            if t.start < t.end:
                found.append(self._transition(t.start, Event.TERM_START, t.code, {"term": t.code}))
                found.append(self._transition(t.end, Event.TERM_END, t.code, {"term": t.code}))
        return tuple(found)

    def _transition(
        self, at: datetime, event: Event, id_: str, effect: Mapping[str, Any]
    ) -> Transition:
        return Transition(self.environment, at, event, id_, effect, self.tz)

    def _window_transitions(self, lo: datetime, hi: datetime) -> list[Transition]:
        """Window boundaries in [lo, hi), in order; only spans that meet need the sweep."""
        effects = {id(w): (self._effect(w, True), self._effect(w, False)) for w in self.windows}
        env, tz, new = self.environment, self.tz, _new_transition
        found: list[Transition] = []
        for cluster in _clusters(_spans(self.windows, lo, hi)):
            if len(cluster) > 1:
                found.extend(sorted(self._swept(cluster, lo, hi), key=transition_key))
                continue
            start, end, window = cluster[0]
            paused, resumed = effects[id(window)]
            if start >= lo:
                found.append(new(env, start, _START, window.id, dict(paused), tz))
            if end < hi:
                found.append(new(env, end, _END, window.id, dict(resumed), tz))
        return found

    def _swept(self, spans: list[Span], lo: datetime, hi: datetime) -> list[Transition]:
        """Boundaries of spans that meet or overlap: count pauses to know what is held."""
        events = [(end, False, n, window) for n, (_, end, window) in enumerate(spans)]
        events += [(start, True, n, window) for n, (start, _, window) in enumerate(spans)]
        events.sort(key=itemgetter(0, 1, 2))
        paused: Counter[str] = Counter()
        found: list[Transition] = []
        for instant, group in groupby(events, key=itemgetter(0)):
            batch = list(group)
            before = frozenset(name for name, count in paused.items() if count)
            for _, starts, _, window in batch:
                paused.update({name: 1 if starts else -1 for name in window.pause})
            if not lo <= instant < hi:
                continue
            after = frozenset(name for name, count in paused.items() if count)
            for _, starts, _, window in batch:
                held = before if starts else after
                found.append(self._window_transition(window, instant, starts, held))
        return found

    @cached_property
    def _switchable(self) -> frozenset[str] | None:
        """Schedules a pause changes: those on in the YAML (None: unknown, assume all)."""
        if self.schedule is None:
            return None
        return frozenset(name for name, on in self.schedule.items() if on is True)

    def _effect(
        self, window: Window, starts: bool, held: frozenset[str] = frozenset()
    ) -> dict[str, bool]:
        """`held`: schedules another window keeps paused across this boundary."""
        switchable = self._switchable
        return {
            f"schedule.{name}": not starts
            for name in window.pause
            if name not in held and (switchable is None or name in switchable)
        }

    def _window_transition(
        self, window: Window, at: datetime, starts: bool, held: frozenset[str]
    ) -> Transition:
        event = _START if starts else _END
        effect = self._effect(window, starts, held)
        return _new_transition(self.environment, at, event, window.id, effect, self.tz)


# --- effective desired state -----------------------------------------------------------------


def effective(desired: Mapping[str, Any], timeline: Timeline, at: datetime) -> Effective:
    """`desired` with every window active at `at` applied (its `pause` schedules set false).

    Only schedules that are on in `desired` are forced, and each forced path names the
    window(s) forcing it; `desired` itself is not changed. The state shares every part but
    `schedule` with `desired` (a plan runs this once per environment): thaw it before editing.
    """
    state = dict(desired)
    active = tuple(timeline.active_windows(at))
    schedule = desired.get("schedule")
    forced: dict[str, list[str]] = {}
    if isinstance(schedule, Mapping):
        state["schedule"] = dict(schedule)
        for occurrence in active:
            for name in occurrence.window.pause:
                if schedule.get(name) is True:
                    state["schedule"][name] = False
                    forced.setdefault(f"schedule.{name}", []).append(occurrence.window.label)
    because = {path: "; ".join(dict.fromkeys(labels)) for path, labels in forced.items()}
    return Effective(state=state, because=because, windows=active)


def thaw(value: Any) -> Any:
    """A deep copy in which every mapping (read-only ones included) becomes a dict."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    if isinstance(value, tuple):
        return tuple(thaw(item) for item in value)
    if isinstance(value, set):
        return set(value)
    return value
