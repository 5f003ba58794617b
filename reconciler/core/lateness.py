"""CORE: when an apply acts on a window boundary after it passed (a scheduled run comes every 15 minutes),
the output says so: "maintenance window banner-upgrade (SUP-1234) started 20:00, acted 20:14".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

from reconciler.core.causes import applied_at
from reconciler.core.plan import EnvPlan
from reconciler.core.timeline import Timeline
from reconciler.core.words import local_time
from reconciler.model import EnvironmentSpec

ON_TIME = timedelta(minutes=1)
"""A boundary acted on within this is on time (a pause's own apply, `watch`)."""

LOOKBACK = timedelta(days=31)


def late_boundaries(spec: EnvironmentSpec, env_plan: EnvPlan, live: Mapping[str, Any], at: datetime) -> list[str]:
    """One line per window boundary this plan acts on late: crossed since live was last applied, and more
    than `ON_TIME` before `at`. Times are the environment's own."""
    causes = {part for change in env_plan.changes if change.path.startswith("schedule.") and change.because
              for part in change.because.split("; ")}
    if not causes:
        return []
    since = applied_at(live)
    timeline = Timeline.windows_of(spec)
    lines: dict[str, None] = {}
    for occurrence in timeline.occurrences(at - LOOKBACK, at):
        label = occurrence.window.label
        crossings = ((occurrence.start, "started", label), (occurrence.end, "ended", f"{label} ended"))
        for boundary, verb, cause in crossings:
            if cause in causes and boundary <= at - ON_TIME and (since is None or since < boundary):
                lines[f"{label} {verb} {_when(boundary, at, timeline.tz)}, acted {_clock(at, timeline.tz)}"] = None
    return list(lines)


def _when(boundary: datetime, at: datetime, tz: tzinfo) -> str:
    """The boundary's clock time on the day it acted, else the one time format (core/words.py)."""
    same_day = boundary.astimezone(tz).date() == at.astimezone(tz).date()
    return _clock(boundary, tz) if same_day else local_time(boundary, tz)


def _clock(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%H:%M")
