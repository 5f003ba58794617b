"""Instants, zones and durations: the parsing half of the timeline (pure).

Place in the flow: options (`--at`, `--from`) and YAML values become aware datetimes here;
`windows` and `timeline` build on them. A local time typed as an option (`parse_instant`,
strict) that falls in a DST gap or fold is refused unless it carries an offset; one written in
YAML follows RFC 5545 (a gap shifts forward, a fold takes the first occurrence).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reconciler.errors import ConfigError, TimeInputError

_ZERO = timedelta(0)
_NAIVE_EPOCH = datetime(2000, 1, 1)
_EPOCH = _NAIVE_EPOCH.replace(tzinfo=UTC)
FIRST_YEAR, LAST_YEAR = 1900, 2200
"""Years a date or time may fall in (DESIGN §2), as the schemas' date patterns also say: far enough
from datetime's limits that a year of windows or a term's last day never overflows."""
DURATION_PATTERN = r"(?=\d)(?:(\d{1,6})d)?(?:(\d{1,6})h)?(?:(\d{1,6})m)?"
"""The one grammar of a duration (days, then hours, then minutes: `5h`, `90m`, `1h30m`, `2d`): the
maintenance schema's `duration` pattern is this text between ^ and $ (a test holds them equal)."""
MAX_DURATION = timedelta(days=366)
_DURATION = re.compile(DURATION_PATTERN)


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
    check_year(value, parsed.year)
    if parsed.tzinfo is not None:
        return parsed
    if strict:
        _refuse_gap_or_fold(value, parsed, zone)
    return to_utc(parsed, zone).astimezone(zone)


def _iso_date(value: str) -> date | None:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    check_year(value, day.year)
    return day


def check_year(value: str, year: int) -> None:
    """Refuse a time whose year is outside FIRST_YEAR..LAST_YEAR, naming `value`."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise TimeInputError(f"{value} is outside the years {FIRST_YEAR} to {LAST_YEAR}")


def has_offset(text: str) -> bool:
    """Whether a time typed as an option names its own offset (`Z`, `-06:00`): else it is wall-clock
    time in some zone, and which zone is the caller's question."""
    try:
        return datetime.fromisoformat(text.strip()).tzinfo is not None
    except ValueError:
        return False


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


def parse_duration(text: str) -> timedelta:
    """`5h`, `90m`, `1h30m`, `2d` (DURATION_PATTERN) as exact time, at most MAX_DURATION; `0h` is zero."""
    found = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise TimeInputError(f"{text!r} is not a duration (e.g. 5h, 90m, 1h30m, 2d)")
    days, hours, minutes = (int(g or 0) for g in found.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes)
    if duration > MAX_DURATION:
        raise TimeInputError(f"{text!r} is longer than {MAX_DURATION.days} days")
    return duration


def as_utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise TimeInputError(f"{at.isoformat()} has no time zone")
    return at.astimezone(UTC)


def required(data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    if value is None or value == "":
        raise ConfigError(f"missing {key}")
    return value


def yaml_instant(value: Any, tz: tzinfo) -> datetime:
    """A YAML time (string, or a date/datetime from a lenient loader) as a UTC instant."""
    if isinstance(value, datetime):
        return to_utc(value, tz) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return local_midnight(value, tz)
    return yaml_text_instant(str(value), tz)


@lru_cache(maxsize=4096)
def yaml_text_instant(text: str, tz: tzinfo) -> datetime:
    return parse_instant(text, tz, strict=False).astimezone(UTC)


def yaml_end_of_day(value: Any, tz: tzinfo) -> datetime:
    """A term's end: a date covers that whole day, so the instant is the next local midnight."""
    day = value if type(value) is date else _iso_date(str(value).strip())
    if day is not None:
        return local_midnight(day + timedelta(days=1), tz)
    return yaml_instant(value, tz)
