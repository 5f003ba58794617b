"""The watch use case: reconcile continuously, acting at each window boundary on time.

The loop: read the repository afresh (a `git pull` between cycles is picked up), ask the pure
`core.watchloop.next_wake` when to act next and why, sleep until then (a signal wakes it), and
apply each due environment through `Engine.apply`, logging one line per environment as a note.
A platform that is down is retried with backoff; broken YAML waits for the next cycle; neither
ends the loop. SIGTERM or SIGINT lets the apply in flight finish, then exits 0.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from reconciler.core.timeline import Timeline
from reconciler.core.watchloop import Due, Watched, applied, backoff, failed, next_wake
from reconciler.errors import ApplyFailed, ConfigError, LiveError, ReconcilerError, UsageError

if TYPE_CHECKING:
    from reconciler.engine import Engine

DEFAULT_INTERVAL_S = 300.0
# A sleep is cut into naps so a wall-clock jump (NTP, a suspended laptop) is noticed: the
# monotonic clock behind Event.wait does not count suspended time.
MAX_NAP_S = 60.0
_PROGRESS = "reading live state of "  # apply's progress note for a person at a terminal


def now() -> datetime:
    """The loop's clock (a function, so tests can drive it)."""
    return datetime.now(UTC)


def sleep(seconds: float, stop: threading.Event) -> None:
    """Wait `seconds`, or less when `stop` is set (a function, so tests can skip the wait)."""
    stop.wait(seconds)


def watch(engine: Engine, envs: Sequence[str], *, interval: float = DEFAULT_INTERVAL_S,
          max_cycles: int | None = None) -> int:
    """Apply each environment at every transition of its timeline and every `interval`, until stopped."""
    step = timedelta(seconds=interval)
    stop = _Stop()
    _announce(engine, envs, interval)
    watched: dict[str, Watched] = {}
    cycles = 0
    with _stop_on_signals(stop):
        while not stop.requested and (max_cycles is None or cycles < max_cycles):
            cycles += _turn(engine, envs, watched, step, stop)
    if stop.signals:
        engine.out.note(f"{_stamp(now(), UTC)} stopped ({signal.Signals(stop.signals[0]).name})")
    return 0


def _announce(engine: Engine, envs: Sequence[str], interval: float) -> None:
    try:
        names = list(_read(engine, envs).timelines)
    except UsageError:
        raise  # a bad ENV name fails at once, not in a loop
    except ReconcilerError:
        names = list(envs)  # broken YAML: the loop says so and waits for a fix
    engine.out.note(f"{_stamp(now(), UTC)} watching {', '.join(names) or 'every environment'}; "
         f"applying at each timeline transition and every {interval:g}s")


def _turn(engine: Engine, envs: Sequence[str], watched: dict[str, Watched], step: timedelta, stop: _Stop) -> int:
    """One pass: read the repository, then act on what is due, or sleep toward it (a nap at
    most; the next pass decides again). Returns 1 for a cycle (an act, or a failed read), else 0."""
    moment = now()
    nap = min(step.total_seconds(), MAX_NAP_S)
    try:
        watching = _read(engine, envs)
    except ReconcilerError as e:
        engine.out.note(f"{_stamp(moment, UTC)} cannot read the repository: {e}; trying again in {nap:g}s")
        sleep(nap, stop.event)
        return 1
    wake = next_wake(moment, watching.timelines, watched, step)
    if wake is None:  # no environment folder at all yet
        sleep(nap, stop.event)
        return 1
    if wake.at > moment:
        sleep(min((wake.at - moment).total_seconds(), MAX_NAP_S), stop.event)
        return 0
    _cycle(engine, wake.due, watching, watched, step, stop)
    return 1


def _cycle(engine: Engine, due: Sequence[Due], watching: _Watching, watched: dict[str, Watched],
           step: timedelta, stop: _Stop) -> None:
    """Apply each due environment once; one brought along by an earlier apply is done already."""
    done: set[str] = set()
    for item in due:
        name = item.environment
        if stop.requested:
            return
        if name in done:
            continue
        covered = watching.applies.get(name, [name])
        record = _apply_one(engine, item, covered, watching.timelines[name].tz, watched.get(name, Watched()), step)
        if record.failures:
            watched[name] = record
            continue
        for other in covered:
            watched[other] = record
            done.add(other)


def _apply_one(engine: Engine, due: Due, covered: Sequence[str], tz: tzinfo, watched: Watched,
               step: timedelta) -> Watched:
    """Apply one environment; log what happened; return its record for the next decision."""
    from reconciler.engine import Engine, Quiet

    output = Quiet()  # what apply said, lines and notes in their order
    own = Engine(engine.root, out=output, connect=engine.connect)
    # Read before the apply starts: the apply plans at a moment no earlier than this, so every
    # transition up to it is covered; a reading taken after could skip one that fell in between.
    moment = now()
    try:
        try:
            own.apply([due.environment], yes=True, message=f"watch: {due.reason}")
        finally:
            _log_output(engine, moment, due, covered, tz, output.said)
    except (LiveError, ApplyFailed) as e:
        after = failed(watched, moment, step, transient=True)
        delay = backoff(after.failures, step).total_seconds()
        engine.out.note(f"{_stamp(moment, tz)} {due.environment}: not applied: {e} (retry in {delay:g}s)")
        return after
    except ReconcilerError as e:
        engine.out.note(f"{_stamp(moment, tz)} {due.environment}: not applied: {e} "
             f"(trying again in {step.total_seconds():g}s)")
        return failed(watched, moment, step, transient=False)
    return applied(moment)


def _log_output(engine: Engine, moment: datetime, due: Due, covered: Sequence[str], tz: tzinfo,
                output: Sequence[str]) -> None:
    """Each line apply printed (`production: applied 2 changes (…)`), stamped, with why; a line
    that names no environment is given the one applied."""
    for line in (part for said in output for part in said.splitlines()):
        if not line.strip() or line.startswith(_PROGRESS):
            continue
        named = any(line.startswith(f"{name}: ") for name in covered)
        engine.out.note(f"{_stamp(moment, tz)} {'' if named else due.environment + ': '}{line} [{due.reason}]")


@dataclass(frozen=True)
class _Watching:
    """The repository as one cycle sees it: each watched environment's timeline, and the
    environments an apply of it brings along (itself first, then its `hosting.linked`)."""

    timelines: dict[str, Timeline]
    applies: dict[str, list[str]]


def _read(engine: Engine, envs: Sequence[str]) -> _Watching:
    """The watched environments, from the repository as it is now.

    With ENV named, the environments in their `hosting.linked` are watched too. An environment
    whose YAML does not load gets an empty timeline: it is still attempted every interval, and
    the apply says what is wrong.
    """
    from reconciler.engine.selection import with_linked
    from reconciler.repo import load_repository

    try:
        repo = load_repository(engine.root)
    except OSError as e:  # environments/ gone or unreadable mid-run (a checkout in progress)
        raise ConfigError(f"{engine.root}: cannot read {e.filename or 'environments/'}: {e.strerror or e}") from e
    names = with_linked(repo.envs, repo.select(envs)) if envs else repo.select(envs)
    timelines: dict[str, Timeline] = {}
    for name in names:
        spec = repo.envs.get(name)
        try:
            timelines[name] = Timeline.from_spec(spec) if spec is not None else Timeline(name, UTC)
        except ReconcilerError:
            timelines[name] = Timeline(name, UTC)
    applies = {name: [n for n in with_linked(repo.envs, [name]) if n in timelines] for name in names}
    return _Watching(timelines, applies)


def _stamp(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="seconds")


class _Stop:
    """A stop request: the signals received, and an Event that wakes the loop's sleep."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signals: list[int] = []

    @property
    def requested(self) -> bool:
        return bool(self.signals) or self.event.is_set()


@contextlib.contextmanager
def _stop_on_signals(stop: _Stop) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop` instead of interrupting: the apply in flight finishes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        stop.signals.append(signum)
        # Set from another thread: the handler may run while this thread holds the Event's
        # lock (inside Event.wait), and setting it here would then deadlock.
        threading.Thread(target=stop.event.set, daemon=True).start()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
