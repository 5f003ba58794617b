"""The execute-merge use case: pull one term from the SIS now.

Checks first (pure parts: `core.merge_order`, `core.timeline`, `core.desired`): no maintenance
window is active (the SIS is down or paused), and T is in scope of every requested merge type
in the effective desired state. Then the connector pulls the types in the SIS's order (it
appends the live activity entry), and the merge is recorded on the `reconciler/activity` branch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.connectors.base import LEASE_TTL_S, lease_holder
from reconciler.errors import UsageError
from reconciler.model import MERGE_TYPES, EnvironmentSpec

if TYPE_CHECKING:
    from reconciler.engine import Engine


def merge(engine: Engine, env: str, *, term: str, types: Sequence[str] = MERGE_TYPES,
          send_updates: bool | None = None, at_text: str | None = None) -> int:
    """Pull `term` for `types` (in the SIS's order) now: under the lease, after reading and checking live;
    recorded on the activity branch before the lease is released. `send_updates` None: each type as the
    YAML says (`sends`); consecutive types that agree are one execute merge."""
    from reconciler import activity
    from reconciler.core.merge_order import merge_order
    from reconciler.engine.reading import check_live
    from reconciler.engine.records import Recorder

    root, out = engine.root, engine.out
    chosen = engine.select([env], at_text)
    spec = chosen.specs[0]
    moment = chosen.at
    ordered = merge_order(str(spec.config.get("sis", "other")), types)
    refuse_during_window(spec, moment)
    refuse_out_of_scope(spec, moment, term, ordered)
    actor = activity.actor(root)
    revision = engine.revision()
    record: dict[str, Any] = {"at": moment.isoformat(), "actor": actor, "revision": revision}
    wanted = sends(spec, moment, term, ordered) if send_updates is None else dict.fromkeys(ordered, send_updates)
    connector = engine.connect(spec, root, writing=True)
    with Recorder(root, out.note) as records, connector.lock(lease_holder(actor), LEASE_TTL_S):
        check_live(env, connector.read())
        records.flush()
        for group, send in _groups(ordered, wanted):
            mode = "pull and send updates" if send else "pull only"
            result = connector.execute_merge(term, group, send_updates=send, record=record)
            status = str(result.get("status", "completed"))
            out.emit(f"{env}: merge of term {term} {status}: {', '.join(group)} ({mode})")
            subject = f"merge {env}: term {term} ({', '.join(group)})"
            body = f"Execute merge of term {term}: {', '.join(group)}, {mode}; {status}."
            records.done(None, activity.Entry(env, revision, status, actor, None, subject, body))
    return 0


def sends(spec: EnvironmentSpec, moment: datetime, term: str, types: Sequence[str]) -> dict[str, bool]:
    """Per type, does the merge send updates to the SIS? The YAML's send_updates for it, overlaid by the
    saved state of `term`'s phase on at `moment` (a `frozen` final phase sends nothing)."""
    from reconciler.core.desired import send_updates_for
    from reconciler.model import Kind

    merge_data = spec.data(Kind.MERGE_SETTINGS) or {}
    name = phase_state(spec, moment, term)
    state = (merge_data.get("saved_states") or {}).get(name) if name else None
    return {kind: send_updates_for(merge_data, kind, state) for kind in types}


def phase_state(spec: EnvironmentSpec, moment: datetime, term: str) -> str | None:
    """The merge_state of `term`'s phase on at `moment` (environment time), if it names one."""
    from zoneinfo import ZoneInfo

    from reconciler.model import Kind

    today = moment.astimezone(ZoneInfo(spec.timezone)).date().isoformat()
    for phase in (spec.data(Kind.PHASES) or {}).get("phases") or []:
        if str(phase.get("term")) == term and str(phase["start"]) <= today < str(phase["end"]):
            state = phase.get("merge_state")
            return str(state) if state is not None else None
    return None


def _groups(ordered: Sequence[str], wanted: dict[str, bool]) -> list[tuple[list[str], bool]]:
    """Runs of consecutive types that agree on send_updates, in merge order (the order is kept)."""
    out: list[tuple[list[str], bool]] = []
    for kind in ordered:
        if out and out[-1][1] == wanted[kind]:
            out[-1][0].append(kind)
        else:
            out.append(([kind], wanted[kind]))
    return out


def refuse_during_window(spec: EnvironmentSpec, moment: datetime) -> None:
    """An execute merge during a window would not complete (the SIS is down, or merges are paused)."""
    from reconciler.core.timeline import Timeline
    from reconciler.engine.pause import OPEN_END

    active = Timeline.from_spec(spec).active_windows(moment)
    if active:
        first = active[0]
        until = first.local_end.isoformat(timespec="minutes")
        if until.startswith(OPEN_END):
            until = "`reconciler resume`"  # an open pause: its far end is a placeholder
        raise UsageError(f"{spec.name}: {first.window.label} is active until {until}; "
                         "an execute merge is refused during it")


def refuse_out_of_scope(spec: EnvironmentSpec, moment: datetime, term: str, types: Sequence[str]) -> None:
    """T must be in scope of every requested type in the effective desired state at the moment."""
    from reconciler.core.desired import desired_state
    from reconciler.core.timeline import Timeline, effective

    state = effective(desired_state(spec), Timeline.from_spec(spec), moment).state
    merges = state.get("merges") or {}
    outside = [t for t in types if term not in ((merges.get(t) or {}).get("terms") or [])]
    if outside:
        raise UsageError(f"{spec.name}: term {term} is not in the {', '.join(outside)} merge scope "
                         f"(merges.{outside[0]}.terms); add it to the YAML first")
