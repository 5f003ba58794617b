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


def merge(engine: Engine, env: str, *, term: str, types: Sequence[str] = MERGE_TYPES, send_updates: bool = False,
          at_text: str | None = None) -> int:
    """Pull `term` for `types` (in the SIS's order) now: under the lease, after reading and checking live;
    recorded on the activity branch before the lease is released."""
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
    mode = "pull and send updates" if send_updates else "pull only"
    subject = f"merge {env}: term {term} ({', '.join(ordered)})"
    connector = engine.connect(spec, root, writing=True)
    with Recorder(root, out.note) as records, connector.lock(lease_holder(actor), LEASE_TTL_S):
        check_live(env, connector.read())
        records.flush()
        result = connector.execute_merge(term, ordered, send_updates=send_updates, record=record)
        status = str(result.get("status", "completed"))
        out.emit(f"{env}: merge of term {term} {status}: {', '.join(ordered)} ({mode})")
        body = f"Execute merge of term {term}: {', '.join(ordered)}, {mode}; {status}."
        records.done(None, activity.Entry(env, revision, status, actor, None, subject, body))
    return 0


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
