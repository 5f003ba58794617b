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

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import Enum
from functools import cached_property
from itertools import groupby
from operator import itemgetter
from typing import Any, TypeVar

from reconciler.core.clock import (
    as_utc,
    get_zone,
    local_kind,
    local_midnight,
    parse_duration,
    parse_instant,
    required,
    to_utc,
    yaml_end_of_day,
    yaml_instant,
    yaml_text_instant,
)
from reconciler.core.windows import (
    Occurrence,
    Recurrence,
    Span,
    Window,
    clear_window_caches,
    clusters,
    spans,
    window_from_data,
)
from reconciler.errors import ConfigError, TimeInputError
from reconciler.model import EnvironmentSpec, Kind

__all__ = [  # the timeline's vocabulary for its callers, some of it defined in clock and windows
    "Effective", "Event", "Occurrence", "Phase", "Recurrence", "Term", "Timeline", "Transition", "Window",
    "clear_caches", "effective", "get_zone", "local_kind", "local_midnight", "parse_duration", "parse_instant",
    "thaw", "to_utc", "transition_key", "window_from_data",
]

_TICK = timedelta(microseconds=1)
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


_RANK = {
    Event.WINDOW_END: 0,
    Event.PHASE_END: 1,
    Event.TERM_END: 2,
    Event.TERM_START: 3,
    Event.PHASE_START: 4,
    Event.WINDOW_START: 5,
}


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


def _phase(data: Mapping[str, Any], tz: tzinfo) -> Phase:
    return Phase(
        name=str(required(data, "name")),
        term=str(required(data, "term")),
        start=yaml_instant(required(data, "start"), tz),
        end=yaml_instant(required(data, "end"), tz),
        editable=tuple(str(f) for f in data.get("editable") or ()),
        editors=tuple(str(r) for r in data.get("editors") or ()),
    )


def _term(data: Mapping[str, Any], tz: tzinfo) -> Term:
    return Term(
        code=str(required(data, "code")),
        name=str(data.get("name") or ""),
        start=yaml_instant(required(data, "start"), tz),
        end=yaml_end_of_day(required(data, "end"), tz),
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


_BUILT: dict[tuple[int, bool], tuple[EnvironmentSpec, Timeline]] = {}


"""Timelines by spec identity (the spec is kept alive beside its timeline, so an id is never reused)."""


_BUILT_MAX = 4096


def clear_caches() -> None:
    """Forget cached expansions (for benchmarks measuring a cold start)."""
    _BUILT.clear()
    clear_window_caches()
    yaml_text_instant.cache_clear()


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
        return cls._cached(spec, whole=True)

    @classmethod
    def windows_of(cls, spec: EnvironmentSpec) -> Timeline:
        """The environment's windows alone (no phases, no terms): all the effective state needs, and
        cheaper for a fleet's plan. The whole timeline serves too, when it is built already."""
        built = _BUILT.get((id(spec), True))
        return built[1] if built is not None and built[0] is spec else cls._cached(spec, whole=False)

    @classmethod
    def _cached(cls, spec: EnvironmentSpec, *, whole: bool) -> Timeline:
        built = _BUILT.get((id(spec), whole))
        if built is not None and built[0] is spec:
            return built[1]
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.clear()
        timeline = cls._build(spec, whole)
        _BUILT[(id(spec), whole)] = (spec, timeline)
        return timeline

    @classmethod
    def _build(cls, spec: EnvironmentSpec, whole: bool) -> Timeline:
        try:
            tz = get_zone(spec.timezone)
        except TimeInputError as e:
            raise ConfigError(f"{spec.name}: {e}") from e
        merge = spec.data(Kind.MERGE_SETTINGS)
        return cls(
            environment=spec.name,
            tz=tz,
            windows=_spec_items(spec, Kind.MAINTENANCE, "windows", tz, window_from_data),
            phases=_spec_items(spec, Kind.PHASES, "phases", tz, _phase) if whole else (),
            terms=_spec_items(spec, Kind.TERMS, "terms", tz, _term) if whole else (),
            schedule=None if merge is None else dict(merge.get("schedule") or {}),
        )

    def occurrences(self, start: datetime, end: datetime) -> list[Occurrence]:
        """Window occurrences overlapping [start, end), by start."""
        lo, hi = as_utc(start), as_utc(end)
        found = sorted(spans(self.windows, lo, hi), key=lambda s: (s[0], s[2].id))
        return [Occurrence(window, s, e) for s, e, window in found if e > lo]

    def active_windows(self, at: datetime) -> list[Occurrence]:
        """Occurrences with start <= at < end."""
        return self.occurrences(at, as_utc(at) + _TICK)

    def current_phases(self, at: datetime) -> dict[str, str]:
        """term code -> the phase in force at `at` (the latest started, if phases overlap)."""
        instant = as_utc(at)
        current: dict[str, str] = {}
        for phase in sorted(self.phases, key=lambda p: (p.start, p.name)):
            if phase.start <= instant < phase.end:
                current[phase.term] = phase.name
        return current

    def current_terms(self, at: datetime) -> list[Term]:
        """Terms in session at `at`."""
        instant = as_utc(at)
        return [term for term in self.terms if term.start <= instant < term.end]

    def transitions(self, start: datetime, end: datetime) -> list[Transition]:
        """Every boundary with start <= at < end, in `transition_key` order."""
        lo, hi = as_utc(start), as_utc(end)
        found = self._window_transitions(lo, hi)  # already in order
        return _merged(found, [t for t in self._period_transitions if lo <= t.at < hi])

    def transitions_between(self, a: datetime, b: datetime) -> list[Transition]:
        """Transitions in (min, max]: the effective state at `a` and at `b` differ only by these.

        A saved plan is stale when this is not empty for its `at` and the moment of apply.
        """
        lo, hi = sorted((as_utc(a), as_utc(b)))
        return [t for t in self.transitions(lo, hi + _TICK) if t.at > lo]

    def next_transition(self, at: datetime) -> Transition | None:
        """The first transition strictly after `at` (within ten years), or None."""
        instant = as_utc(at)
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
        for cluster in clusters(spans(self.windows, lo, hi)):
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
