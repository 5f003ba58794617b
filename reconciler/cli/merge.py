"""EDGE: `reconciler merge ENV --term T` — an execute merge: pull one term from the SIS now.

Checks first (pure parts: `core.merge_order`, `core.timeline`, `core.desired`): no maintenance
window is active (the SIS is down or paused), and T is in scope of every requested merge type
in the effective desired state. Then the connector pulls the types in the SIS's order (it
appends the live activity entry), and the merge is recorded on the `reconciler/activity` branch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reconciler.cli.options import emit, note, resolve_root, root_option
from reconciler.connectors.base import LEASE_TTL_S, lease_holder
from reconciler.errors import GitError, UsageError
from reconciler.model import MERGE_TYPES, EnvironmentSpec


def now() -> datetime:
    """The moment of the merge (a function, so tests can fix it)."""
    return datetime.now(UTC)


@click.command(
    epilog="Example: reconciler merge production --term 202720 --types sections,relationships",
    short_help="Execute a merge of one term now, in the SIS's order.",
)
@click.argument("env", metavar="ENV")
@click.option("--term", "term", required=True, metavar="T", help="The term to pull from the SIS.")
@click.option("--types", "types", default=",".join(MERGE_TYPES), show_default=True, metavar="LIST",
              help="Merge types, comma-separated (run in the SIS's order whatever order they are given in).")
@click.option("--send-updates/--no-send-updates", default=False, show_default=True,
              help="Also post the platform's updates to the SIS (default: only pull).")
@click.option("--at", "at_text", default=None, hidden=True, help="Act as if now were T (for tests and rehearsals).")
@root_option
def command(env: str, term: str, types: str, send_updates: bool, at_text: str | None, root: str | None) -> int:
    """Pull TERM from the SIS into ENV now (courses, sections, relationships; PeopleSoft: sections first)."""
    wanted = [t.strip() for t in types.split(",") if t.strip()]
    return run_merge(resolve_root(root), env, term=term, types=wanted, send_updates=send_updates, at_text=at_text)


def run_merge(root: Path, env: str, *, term: str, types: Sequence[str] = MERGE_TYPES, send_updates: bool = False,
              at_text: str | None = None) -> int:
    from reconciler import activity
    from reconciler.cli.plan import git_revision, prepare
    from reconciler.connectors import get_connector
    from reconciler.core.merge_order import merge_order

    specs, at = prepare(root, [env], at_text)
    spec = specs[0]
    moment = at if at_text else now()
    ordered = merge_order(str(spec.config.get("sis", "other")), types)
    refuse_during_window(spec, moment)
    refuse_out_of_scope(spec, moment, term, ordered)
    actor = activity.actor(root)
    revision = git_revision(root)
    record: dict[str, Any] = {"at": moment.isoformat(), "actor": actor, "revision": revision}
    connector = get_connector(spec, root)
    with connector.lock(lease_holder(actor), LEASE_TTL_S):
        result = connector.execute_merge(term, ordered, send_updates=send_updates, record=record)
    status = str(result.get("status", "completed"))
    mode = "pull and send updates" if send_updates else "pull only"
    emit(f"{env}: merge of term {term} {status}: {', '.join(ordered)} ({mode})")
    subject = f"merge {env}: term {term} ({', '.join(ordered)})"
    body = f"Execute merge of term {term}: {', '.join(ordered)}, {mode}; {status}."
    try:
        sha = activity.record(root, environment=env, revision=revision, outcome=status, actor=actor, ticket=None,
                              subject=subject, body=body)
    except GitError as e:
        note(f"{env}: no git record was written: {e}")
        return 0
    if sha is None:
        note(f"{env}: no git record was written (not a git repository)")
    return 0


def refuse_during_window(spec: EnvironmentSpec, moment: datetime) -> None:
    """An execute merge during a window would not complete (the SIS is down, or merges are paused)."""
    from reconciler.cli.pause import OPEN_END
    from reconciler.core.timeline import Timeline

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
