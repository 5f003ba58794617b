"""Policy rules about maintenance windows (DESIGN §2): `window-order`, `window-flood`, `window-always`,
`window-start` and `window-overlap`. Pure; `policy.RULES` runs them with the others.

They read the MaintenanceWindows document for positions and `Timeline.windows_of` for values (built once
per loaded spec, window by window when one cannot be read, so one bad window hides no other's problem);
the counting and the sweep are `window_checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from reconciler.errors import ReconcilerError
from reconciler.model import Document, EnvironmentSpec, Kind, Problem, Severity

if TYPE_CHECKING:
    from reconciler.core.windows import Window

OVERLAP_HORIZON = timedelta(days=366)


def _error(doc: Document, path: tuple[str | int, ...], rule: str, message: str) -> Problem:
    return Problem.at(doc.mark_of(path), Severity.ERROR, rule, message)


def _warning(doc: Document, path: tuple[str | int, ...], rule: str, message: str) -> Problem:
    return Problem.at(doc.mark_of(path), Severity.WARNING, rule, message)


def window_order(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    doc = spec.docs.get(Kind.MAINTENANCE)
    if doc is None:
        return
    for index, window in enumerate(doc.data.get("windows", [])):
        tz = window.get("timezone", spec.timezone)
        if "every" in window:
            yield from _recurring_order(doc, index, window, tz)
        else:
            yield from _one_off_order(doc, index, window, tz)


def _recurring_order(doc: Document, index: int, window: Mapping[str, Any], tz: str) -> Iterator[Problem]:
    from reconciler.core.timeline import parse_duration
    from reconciler.errors import TimeInputError

    try:
        duration = parse_duration(window["duration"])
    except TimeInputError as e:  # the schema checks the grammar; this is the bound
        yield _error(doc, ("windows", index, "duration"), "schema", f"window {window['id']!r}: {e}")
        return
    if duration <= timedelta(0):
        message = f"window {window['id']!r} has a duration that is not positive"
        yield _error(doc, ("windows", index, "duration"), "window-order", message)
    yield from _recurrence_problems(doc, index, window, tz)


def _one_off_order(doc: Document, index: int, window: Mapping[str, Any], tz: str) -> Iterator[Problem]:
    from reconciler.core.timeline import parse_instant

    start, end = (_instant(parse_instant, window[k], tz) for k in ("start", "end"))
    if start is None or end is None:
        return
    written = [datetime.fromisoformat(window[k]) for k in ("start", "end")]
    in_order = any(t.tzinfo is not None for t in written) or written[0] < written[1]  # as the YAML reads
    if end > start and in_order:
        return
    message = (_gap_reason(window, tz, start) if in_order else None) or (
        f"window {window['id']!r} ends ({window['end']}) before it starts ({window['start']})"
    )
    yield _error(doc, ("windows", index, "end"), "window-order", message)


def _gap_reason(window: Mapping[str, Any], tz: str, start: datetime) -> str | None:
    """Why a window written in order still ends first: its start is in the spring-forward gap, and a
    time there is read an hour later (RFC 5545)."""
    from reconciler.core.timeline import local_kind

    naive = datetime.fromisoformat(window["start"])
    if naive.tzinfo is not None or local_kind(naive, start.tzinfo) != "gap":  # type: ignore[arg-type]
        return None
    moved = start.isoformat(timespec="minutes")
    return (f"window {window['id']!r} starts at {window['start']}, a time that does not exist in {tz} (clocks go "
            f"forward); it is read as {moved}, which is not before its end ({window['end']}): start it after the gap")


def _recurrence_problems(doc: Document, index: int, window: Mapping[str, Any], tz: str) -> Iterator[Problem]:
    """A rule the schema lets through but that cannot be used: not an RRULE, never occurring, or with
    COUNT or INTERVAL but no dated start to count from."""
    from reconciler.core.timeline import get_zone, window_from_data
    from reconciler.errors import ConfigError, TimeInputError

    try:
        window_from_data(window, get_zone(tz))
    except (ConfigError, TimeInputError) as e:
        yield _error(doc, ("windows", index, "every"), "schema", f"window {window['id']!r}: {e}")


def _instant(parse: Callable[[str, str], datetime], text: str, tz: str) -> datetime | None:
    from reconciler.errors import TimeInputError

    try:
        return parse(text, tz, strict=False)  # type: ignore[call-arg]
    except TimeInputError:
        return None


@dataclass(frozen=True)
class _Windows:
    """The MaintenanceWindows document, its windows as values by position (None where one cannot be read:
    the rules above say why, and the others are still checked) and the environment's zone."""

    doc: Document
    values: tuple[Window | None, ...]
    tz: tzinfo


def _windows(spec: EnvironmentSpec) -> _Windows | None:
    from reconciler.core.timeline import Timeline, get_zone, window_from_data

    doc = spec.docs.get(Kind.MAINTENANCE)
    if doc is None:
        return None
    try:
        timeline = Timeline.windows_of(spec)  # built once per spec, and what plan uses
        return _Windows(doc, timeline.windows, timeline.tz)
    except ReconcilerError:
        pass
    try:
        tz = get_zone(spec.timezone)
    except ReconcilerError:
        return None
    return _Windows(doc, tuple(_one(window_from_data, entry, tz) for entry in doc.data.get("windows", [])), tz)


def _one(make: Callable[[Any, tzinfo], Window], entry: Any, tz: tzinfo) -> Window | None:
    try:
        return make(entry, tz)
    except ReconcilerError:
        return None


def _recurring(found: _Windows) -> Iterator[tuple[int, Window]]:
    return ((i, w) for i, w in enumerate(found.values) if w is not None and w.recurring)


def _floods(found: _Windows, at: datetime) -> frozenset[int]:
    from reconciler.core.window_checks import floods

    return frozenset(i for i, w in _recurring(found) if floods(w, at))


def window_flood(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], at: datetime) -> Iterator[Problem]:
    """A rule starting more than FLOOD_LIMIT times a year (counted, never expanded)."""
    from reconciler.core.window_checks import FLOOD_LIMIT

    found = _windows(spec)
    for index in sorted(_floods(found, at)) if found else []:
        assert found is not None
        entry = found.doc.data["windows"][index]
        message = (f"window {entry['id']!r} ({entry['every']}) starts more than {FLOOD_LIMIT:,} times a year; "
                   "a maintenance window needs a rule that leaves merges time to run")
        yield _error(found.doc, ("windows", index, "every"), "window-flood", message)


def window_always(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], at: datetime) -> Iterator[Problem]:
    """A recurring window lasting as long as the time between its starts, or longer."""
    from reconciler.core.window_checks import human, longest_gap

    found = _windows(spec)
    if found is None:
        return
    skip = _floods(found, at)
    for index, window in _recurring(found):
        gap = longest_gap(window, at) if index not in skip else None
        if gap is not None and window.duration >= gap:
            message = (f"window {window.id!r} lasts {human(window.duration)}, as long as the {human(gap)} between "
                       "its starts or longer: merges would never resume")
            yield _warning(found.doc, ("windows", index, "duration"), "window-always", message)


def window_start(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    """BYHOUR, BYMINUTE or BYSECOND in a rule set the time of day, whatever `start` says."""
    from reconciler.core.window_checks import start_overrides

    found = _windows(spec)
    for index, window in _recurring(found) if found else ():
        assert found is not None
        parts = start_overrides(window)
        if parts:
            start = found.doc.data["windows"][index]["start"]
            message = (f"window {window.id!r}: {', '.join(parts)} in its rule sets when each occurrence starts, "
                       f"not start {start!r}; give the time in start alone")
            yield _warning(found.doc, ("windows", index, "every"), "window-start", message)


def window_overlap(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], at: datetime) -> Iterator[Problem]:
    """Two windows that overlap: one-off ones at any time, recurring ones within the next year (one sweep)."""
    from reconciler.core.window_checks import clashes

    found = _windows(spec)
    if found is None or len(found.values) < 2:
        return
    ids = [entry["id"] for entry in found.doc.data["windows"]]
    for clash in clashes(found.values, at, at + OVERLAP_HORIZON, skip=_floods(found, at)):
        when = clash.at.astimezone(found.tz).isoformat(timespec="minutes")
        message = f"window {ids[clash.late]!r} overlaps {ids[clash.early]!r} on {when}"
        yield _warning(found.doc, ("windows", clash.late), "window-overlap", message)
