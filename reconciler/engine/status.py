"""The status use case: per environment, the revision applied, in sync or not, active windows, current
phases, next transition, open update requests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.engine.drift import CLOSED_REQUESTS
from reconciler.model import EnvironmentSpec

if TYPE_CHECKING:
    from reconciler.engine import Engine

FORMAT_VERSION = 1


def status(engine: Engine, envs: Sequence[str], *, at_text: str | None = None, parallel: int | None = None,
           shard: tuple[int, int] | None = None) -> tuple[datetime, list[dict[str, Any]]]:
    """The instant reported on, and each selected environment's status (or, where live could not be read,
    {"name", "error"})."""
    chosen = engine.select(envs, at_text, shard=shard)
    lives, faults = engine.read_all(chosen.specs, parallel)
    return chosen.at, [environment_status(spec, lives[spec.name], chosen.at) if spec.name in lives
                       else {"name": spec.name, "error": str(faults[spec.name])} for spec in chosen.specs]


def environment_status(spec: EnvironmentSpec, live: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    from reconciler.core.apply import plan_one
    from reconciler.core.timeline import Timeline
    from reconciler.engine.drift import environment_drift

    timeline = Timeline.from_spec(spec)
    plan = plan_one(spec, live, at, None)
    applied = live.get("applied") if isinstance(live.get("applied"), Mapping) else None
    nxt = timeline.next_transition(at)
    requests = live.get("update_requests") or {}
    return {
        "name": spec.name,
        "revision": (applied or {}).get("revision"),
        "applied_at": (applied or {}).get("at"),
        "in_sync": plan.is_empty,
        "changes": len(plan.changes),
        "drift": len(environment_drift(spec, live)["drift"]),
        "active_windows": [o.window.id for o in timeline.active_windows(at)],
        "windows": active_windows(timeline, at),
        "phases": timeline.current_phases(at),
        "next_transition": None if nxt is None else {
            "at": nxt.local_at.isoformat(timespec="seconds"), "event": nxt.event.value, "id": nxt.id,
        },
        "open_update_requests": [
            {"id": rid, "status": item.get("status"), **{k: v for k, v in item.items() if k != "status"}}
            for rid, item in sorted(requests.items())
            if isinstance(item, Mapping) and item.get("status") not in CLOSED_REQUESTS
        ],
        "warnings": list(plan.warnings),  # e.g. what a read-only platform cannot show, left unmanaged
    }


def active_windows(timeline: Any, at: datetime) -> list[dict[str, Any]]:
    """Every window open at `at`, with why, its ticket and when it ends (in the environment's zone, to the
    second), soonest end first: two open windows end at two times."""
    return [
        {"id": o.window.id, "reason": o.window.reason or None, "ticket": o.window.ticket,
         "pause": list(o.window.pause), "started": _local(o.start, timeline.tz), "ends": _local(o.end, timeline.tz)}
        for o in sorted(timeline.active_windows(at), key=lambda o: (o.end, o.window.id))
    ]


def _local(instant: datetime, tz: Any) -> str:
    return instant.astimezone(tz).isoformat(timespec="seconds")
