"""EDGE: `reconciler schedule` — every upcoming window, phase and term boundary."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import click

from reconciler.cli.options import emit, fleet_instant, fleet_options, format_option, resolve_root, root_option
from reconciler.errors import ConfigError, UsageError

DEFAULT_SPAN = timedelta(days=30)


@click.command(
    epilog="Example: reconciler schedule production --from 2026-10-25 --to 2026-11-15 --format json",
    short_help="List upcoming windows, phases and term boundaries.",
)
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option("--from", "frm", metavar="T", help="Start (ISO 8601; no offset: the environment's zone). Default: now.")
@click.option("--to", "to", metavar="T", help="End, excluded (default: 30 days after the start).")
@format_option("text", "json", "ics")
@fleet_options
@root_option
def command(envs: tuple[str, ...], frm: str | None, to: str | None, fmt: str, parallel: int | None,
            shard: tuple[int, int] | None, root: str | None) -> int:
    """Every transition of ENV (default: every environment) between --from and --to.

    Window starts and ends, phase and term starts and ends, each in its environment's time
    zone with its UTC offset. `--format ics` writes an RFC 5545 calendar to import.
    """
    return run_schedule(resolve_root(root), envs, frm=frm, to=to, fmt=fmt, shard=shard)


def run_schedule(root: Path, envs: Sequence[str], *, frm: str | None = None, to: str | None = None,
                 fmt: str = "text", shard: tuple[int, int] | None = None, now: datetime | None = None) -> int:
    from reconciler.core import calendar
    from reconciler.core.timeline import Timeline, get_zone
    from reconciler.engine import now as engine_now

    specs = _valid_specs(root, envs, shard)
    timelines = [Timeline.from_spec(spec) for spec in specs]
    zone = timelines[0].tz if timelines else get_zone("UTC")
    made = now or engine_now()  # DTSTAMP: when the calendar was made, not --from
    start = fleet_instant("--from", frm, specs) if frm else made.astimezone(zone)
    end = fleet_instant("--to", to, specs) if to else start + DEFAULT_SPAN
    if end <= start:
        raise UsageError(f"--to {to} is not after --from {frm or 'now'}")
    if fmt == "ics":
        sys.stdout.buffer.write(calendar.schedule_ics(timelines, start, end, stamp=made))
        sys.stdout.flush()
        return 0
    transitions = [t for timeline in timelines for t in timeline.transitions(start, end)]
    if fmt == "json":
        import json

        emit(json.dumps(calendar.schedule_data(start, end, transitions, zone), indent=2))
    else:
        names = {t.environment: calendar.term_names(t) for t in timelines}
        emit(calendar.schedule_text(start, end, transitions, zone, names))
    return 0


def _valid_specs(root: Path, envs: Sequence[str], shard: tuple[int, int] | None) -> list:  # type: ignore[type-arg]
    from reconciler.engine.selection import collect_problems
    from reconciler.model import Severity
    from reconciler.repo import load_repository

    repo = load_repository(root)
    problems, selected = collect_problems(root, envs, shard=shard, repo=repo)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more; run reconciler validate)" if len(errors) > 1 else ""
        raise ConfigError(f"{errors[0]}{more}")
    return [repo.envs[name] for name in selected]

