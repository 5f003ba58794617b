"""What the policy rules ask of maintenance windows, each over a bounded horizon (pure).

Place in the flow: `policy`'s window rules (`window-flood`, `window-always`, `window-start`,
`window-overlap`) call these on a Timeline's windows. A flood is counted, never expanded: at most
FLOOD_LIMIT + 1 starts are drawn from a rule. Overlaps are found by one sweep over every occurrence
in the horizon, sorted by start: O(n log n) in the number of occurrences, not pairwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import islice, pairwise, takewhile
from operator import itemgetter

from reconciler.core.windows import Recurrence, Window, rule_parts, spans, starts_after, year_starts

FLOOD_LIMIT = 2000
"""Most starts a window's rule may have in a year (DESIGN §2, `window-flood`)."""
YEAR = timedelta(days=365)
_TIME_PARTS = (("BYHOUR", "hour"), ("BYMINUTE", "minute"), ("BYSECOND", "second"))


@dataclass(frozen=True)
class Clash:
    """Window `late` (the later one in the file) overlaps window `early` from `at` (UTC)."""

    late: int
    early: int
    at: datetime


def _local_range(window: Window, at: datetime) -> tuple[datetime, datetime]:
    """[lo, hi] in the window's wall-clock time: a year from `at`, or from a dated start that comes
    later, cut at UNTIL."""
    assert window.recurrence is not None
    lo = at.astimezone(window.tz).replace(tzinfo=None)
    anchor = window.recurrence.anchor
    if anchor is not None:
        lo = max(lo, datetime.combine(anchor, window.recurrence.start_time))
    hi = lo + YEAR
    if window.until is not None:
        hi = min(hi, window.until.astimezone(window.tz).replace(tzinfo=None))
    return lo, hi


def _local_starts(window: Window, lo: datetime, hi: datetime) -> list[datetime]:
    """Wall-clock starts in [lo, hi], from the per-year expansions (for rules known not to flood)."""
    assert window.recurrence is not None
    found: list[datetime] = []
    for year in range(lo.year, hi.year + 1):
        found.extend(s for s in year_starts(window.recurrence, year) if lo <= s <= hi)
    return found


def yearly_starts(window: Window, at: datetime, limit: int = FLOOD_LIMIT) -> int:
    """How many times a recurring window starts in the year from `at`, counted up to `limit` + 1."""
    rec = window.recurrence
    assert rec is not None
    lo, hi = _local_range(window, at)
    if hi < lo:
        return 0
    if not may_flood(rec):
        return len(_local_starts(window, lo, hi))
    within = takewhile(lambda start: start <= hi, starts_after(rec, lo))
    return sum(1 for _ in islice(within, limit + 1))


@lru_cache(maxsize=4096)
def floods(window: Window, at: datetime) -> bool:
    """Whether a recurring window starts more than FLOOD_LIMIT times in the year from `at`."""
    return yearly_starts(window, at) > FLOOD_LIMIT


def may_flood(rec: Recurrence) -> bool:
    """Whether a rule can start more than once a day: HOURLY, or a time of day given as BY parts. Any
    other rule starts at `start`, on at most 366 days a year."""
    parts = rule_parts(rec.rule)
    return parts["FREQ"] == "HOURLY" or any(part in parts for part, _ in _TIME_PARTS)


def longest_gap(window: Window, at: datetime) -> timedelta | None:
    """The longest wall-clock time between two consecutive starts in the year from `at` (None with
    fewer than two): a window lasting that long or longer never ends."""
    lo, hi = _local_range(window, at)
    starts = _local_starts(window, lo, hi) if lo <= hi else []
    gaps = [b - a for a, b in pairwise(starts)]
    return max(gaps) if gaps else None


def start_overrides(window: Window) -> list[str]:
    """The rule's BYHOUR, BYMINUTE and BYSECOND parts that set another time of day than `start`."""
    rec = window.recurrence
    assert rec is not None
    parts = rule_parts(rec.rule)
    found = []
    for part, field in _TIME_PARTS:
        if part in parts and {int(v) for v in parts[part].split(",")} != {getattr(rec.start_time, field)}:
            found.append(f"{part}={parts[part]}")
    return found


def clashes(
    windows: Sequence[Window | None], lo: datetime, hi: datetime, skip: frozenset[int] = frozenset()
) -> list[Clash]:
    """The first overlap of each window with another, reported at the later one in the list: one-off
    windows at any time, recurring ones in [lo, hi), windows in `skip` (floods) and None left out. One sweep
    over the occurrences sorted by start, keeping the two latest-ending ones of different windows."""
    first: dict[int, Clash] = {}
    ahead: list[tuple[datetime, int]] = []  # (end, window index), latest end first, two windows at most
    for start, end, index in _occurrences(windows, lo, hi, skip):
        other = next((seen for seen in ahead if seen[1] != index), None)
        if other is not None and other[0] > start:
            late, early = max(index, other[1]), min(index, other[1])
            first.setdefault(late, Clash(late, early, start))
        ahead = _two_latest(ahead, end, index)
    return sorted(first.values(), key=lambda c: c.late)


def _occurrences(
    windows: Sequence[Window | None], lo: datetime, hi: datetime, skip: frozenset[int]
) -> list[tuple[datetime, datetime, int]]:
    index = {id(w): i for i, w in enumerate(windows)}
    found = [(w.start, w.end, i) for i, w in enumerate(windows) if w is not None and _one_off_span(w)]
    recurring = [w for i, w in enumerate(windows) if w is not None and w.recurring and i not in skip]
    found += [(start, end, index[id(w)]) for start, end, w in spans(recurring, lo, hi)]
    found.sort(key=itemgetter(0, 2))
    return found  # type: ignore[return-value]


def _one_off_span(window: Window) -> bool:
    return not window.recurring and window.start is not None and window.end is not None and window.start < window.end


def _two_latest(ahead: list[tuple[datetime, int]], end: datetime, index: int) -> list[tuple[datetime, int]]:
    kept = {i: e for e, i in ahead}
    kept[index] = max(end, kept.get(index, end))
    return sorted(((e, i) for i, e in kept.items()), reverse=True)[:2]


def human(duration: timedelta) -> str:
    """A duration as the YAML writes one: 2d, 25h, 1h30m."""
    minutes = int(duration.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    if not rest:
        return f"{days}d"
    hours, mins = divmod(minutes, 60)
    return f"{hours}h{mins}m" if mins else f"{hours}h"
