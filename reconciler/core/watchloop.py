"""What `reconciler watch` does next, and when: the pure decision of its loop.

Place in the flow: `cli/watch.py` loads the repository, builds each environment's Timeline and
keeps a `Watched` record per environment; `next_wake` turns those and the clock reading it is
given into the next moment to act and the environments due then, with why. The loop sleeps
until that moment, applies the due environments and records the outcome with `applied` or
`failed`. Pure: `now` comes in as an argument; nothing here sleeps or reads the clock.

An environment is due at the earliest of
- its first timeline transition after its last apply (the effective desired state changes
  there: a window opens or closes, a phase starts or ends),
- its last apply plus the interval (a drift check: the apply puts back what moved in live),
- now, when it has not been applied yet in this run;
and, after a failure, not before its retry time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from reconciler.core.timeline import Timeline

START = "start"
DRIFT_CHECK = "drift check"
FIRST_BACKOFF = timedelta(seconds=1)


@dataclass(frozen=True)
class Watched:
    """What the loop remembers of one environment between cycles."""

    last_apply: datetime | None = None  # the moment of its last successful apply in this run
    failures: int = 0  # consecutive failed attempts since then
    retry_at: datetime | None = None  # not before this, after a failure


@dataclass(frozen=True)
class Due:
    """One environment to apply at `at`, and why (`window-start banner-upgrade-2026-12`)."""

    environment: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class Wake:
    """The next moment to act (never before `now`) and the environments due then, by name."""

    at: datetime
    due: tuple[Due, ...]


def due_for(name: str, timeline: Timeline, watched: Watched, now: datetime, interval: timedelta) -> Due:
    """When `name` is next due, and why."""
    if watched.last_apply is None:
        at, reason = now, START
    else:
        at, reason = watched.last_apply + interval, DRIFT_CHECK
        upcoming = timeline.next_transition(watched.last_apply)
        if upcoming is not None and upcoming.at <= at:
            at, reason = upcoming.at, f"{upcoming.event.value} {upcoming.id}"
    if watched.retry_at is not None:
        at, reason = max(at, watched.retry_at), f"retry {watched.failures} after a failure ({reason})"
    return Due(name, at, reason)


def next_wake(now: datetime, timelines: Mapping[str, Timeline], watched: Mapping[str, Watched],
              interval: timedelta) -> Wake | None:
    """The next moment to act and what is due then; None when nothing is watched.

    Everything due at or before the chosen moment is acted on together, so environments whose
    boundaries coincide (a window shared through `_base/`) are applied in one cycle.
    """
    dues = [due_for(name, timeline, watched.get(name, Watched()), now, interval)
            for name, timeline in timelines.items()]
    if not dues:
        return None
    at = max(now, min(d.at for d in dues))
    return Wake(at, tuple(d for d in dues if d.at <= at))


def backoff(failures: int, interval: timedelta, first: timedelta = FIRST_BACKOFF) -> timedelta:
    """The wait after the `failures`-th failure in a row: doubling from `first`, capped at `interval`."""
    if failures <= 0:
        return timedelta(0)
    # Past 2**30 the cap has long applied; the bound keeps the multiplication small.
    return min(interval, first * 2 ** min(failures - 1, 30))


def applied(at: datetime) -> Watched:
    """The record after a successful apply at `at` (the moment read before the apply began)."""
    return Watched(last_apply=at)


def failed(watched: Watched, now: datetime, interval: timedelta, *, transient: bool) -> Watched:
    """The record after a failed attempt: a platform that is down (`transient`) is retried with
    backoff; anything else (broken YAML, a refused plan) waits for the next drift check."""
    failures = watched.failures + 1
    delay = backoff(failures, interval) if transient else interval
    return replace(watched, failures=failures, retry_at=now + delay)
