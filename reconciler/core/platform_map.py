"""The one table between the scheduling platform's read API and our live paths (DESIGN §5 `coursedog`).

Flow: the coursedog connector reads the platform's answers → **to_live** → a live document (only the parts
this table knows); the emulator's `--api coursedog` goes the other way (**from_live**) from its store, so
both ends speak through the same table. `restrict` cuts a desired state down to what a connector can
read, and says what it left unmanaged. Pure: values in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.errors import ConnectorError
from reconciler.model import EnvironmentSpec

SYNC_TYPES: Mapping[str, Mapping[str, bool]] = {
    "realtime": {"nightly": True, "realtime": True},  # seen in the platform's public client code
    "nightly": {"nightly": True, "realtime": False},  # assumed: confirm on the tenant (docs/connectors.md)
    "none": {"nightly": False, "realtime": False},  # assumed: confirm on the tenant (docs/connectors.md)
}
"""integrationSchedule.syncType → schedule.nightly, schedule.realtime."""

ENTITY_TYPES: Mapping[str, str] = {"coursesCm": "courses", "sections": "sections", "relationships": "relationships"}
"""merge-settings `entityType` → our merge type; its stepsToExecute.syncSisData → merges.<type>.send_updates."""

UNMAPPED = "unmapped"
"""What the emulator answers as syncType for a schedule no entry of SYNC_TYPES gives."""

READABLE: Mapping[str, tuple[str, ...]] = {
    "coursedog": ("schedule.nightly", "schedule.realtime",
                  *(f"merges.{kind}.send_updates" for kind in ENTITY_TYPES.values())),
}
"""Per read-only connector, the live paths it can read; everything else is left unmanaged."""


def sync_schedule(sync_type: Any) -> dict[str, bool]:
    """The schedule a syncType means; a value the table does not know is a read fault naming it."""
    if not isinstance(sync_type, str) or sync_type not in SYNC_TYPES:
        known = ", ".join(SYNC_TYPES)
        raise ConnectorError(f"integrationSchedule.syncType {sync_type!r} is not in the mapping table "
                             f"(known: {known}); see docs/connectors.md")
    return dict(SYNC_TYPES[sync_type])


def send_updates(entity: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConnectorError(f"merge-settings {entity}: stepsToExecute.syncSisData {value!r} is not true or false")
    return value


def to_live(sync_type: Any, sends: Mapping[str, Any]) -> dict[str, Any]:
    """A live document from the platform's answers: syncType and each entity type's syncSisData."""
    merges = {ENTITY_TYPES[entity]: {"send_updates": send_updates(entity, value)} for entity, value in sends.items()}
    return {"schedule": sync_schedule(sync_type), "merges": merges}


def from_live(live: Mapping[str, Any]) -> tuple[str, dict[str, bool]]:
    """(syncType, {entityType: syncSisData}) a platform holding `live` would answer (the emulator)."""
    schedule = live.get("schedule") or {}
    wanted = {"nightly": schedule.get("nightly", True), "realtime": schedule.get("realtime", True)}
    sync = next((name for name, value in SYNC_TYPES.items() if dict(value) == wanted), UNMAPPED)
    default = live.get("send_updates", True)
    merges = live.get("merges") or {}
    sends = {entity: bool((merges.get(kind) or {}).get("send_updates", default))
             for entity, kind in ENTITY_TYPES.items()}
    return sync, sends


def readable_paths(spec: EnvironmentSpec) -> tuple[str, ...] | None:
    """The live paths `spec`'s connector can read, or None: all of them."""
    live = spec.config.get("live") or {}
    return READABLE.get(str(live.get("connector") or "embedded"))


def restrict(spec: EnvironmentSpec, state: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`state` without what `spec`'s connector cannot read, and one warning naming what was left out."""
    paths = readable_paths(spec)
    if paths is None:
        return dict(state), ()
    dropped: list[str] = []
    kept = _keep(state, "", paths, dropped)
    if not dropped:
        return kept, ()
    name = (spec.config.get("live") or {}).get("connector")
    return kept, (f"not readable from this platform ({name}), left unmanaged: {', '.join(dropped)}",)


def _keep(value: Mapping[str, Any], prefix: str, paths: tuple[str, ...], dropped: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if path in paths:
            out[key] = item
        elif isinstance(item, Mapping) and any(p.startswith(f"{path}.") for p in paths):
            inner = _keep(item, f"{path}.", paths, dropped)
            if inner:
                out[key] = inner
        else:
            dropped.append(path)
    return out
