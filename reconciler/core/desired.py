"""The desired side of a plan: the YAML of one environment projected into the live-state shape.

Flow: `load` → `policy` → `timeline.effective(at)` → **desired_state** → `plan`. Only the
managed kinds are projected (DESIGN §3); `managed_parts` names which top-level parts of the
live state the plan may touch, so an unmanaged part is never compared or changed.

A key the YAML omits is not managed (a schedule switch, send_updates, a reference-data type, a merge
type's terms or options, the saved states, the users or roles of Access), except sections' source of
truth and `allow_empty`, whose defaults (institution, false) are the platform's documented behaviour
and are always enforced.

A source of truth contract v2 could say (institution or platform, no field exceptions) is kept in
live in v2's spelling, `on_conflict: sis|platform`, so that a v2 repository and a v2 platform see
exactly what they saw before; any other is `source_of_truth: {default, fields}`. `on_conflict` in the
YAML is read as `source_of_truth.default` (sis = institution).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.model import (
    DEFAULT_SOURCE_OF_TRUTH,
    MERGE_TYPES,
    REFERENCE_DATA_TYPES,
    SCHEDULES,
    STATE_OPTIONS,
    TYPE_OPTIONS,
    V2_ON_CONFLICT,
    EnvironmentSpec,
    Kind,
)

SECTION_DEFAULTS: Mapping[str, Any] = {"on_conflict": "sis", "allow_empty": False}
"""The sections options always enforced, in live's spelling (on_conflict: sis = institution owns every field)."""
SOURCE_KEYS = ("on_conflict", "source_of_truth")
"""The two live spellings of one merge type's source of truth: a plan keeps exactly one of them."""
MERGE_SETTINGS_PARTS = {
    "send_updates": "send_updates", "reference_data": "reference_data", "saved_states": "merge_states",
}
"""Top-level MergeSettings keys → the live part each one manages (only when the YAML gives the key)."""


def _text(value: Any) -> str:
    """Dates and times may come back from YAML as objects; the live side speaks ISO text."""
    iso = getattr(value, "isoformat", None)
    return str(iso()) if callable(iso) else str(value)


def _usable(spec: EnvironmentSpec, kind: Kind) -> Mapping[str, Any] | None:
    if kind in spec.broken:
        return None
    return spec.data(kind)


def managed_parts(spec: EnvironmentSpec) -> frozenset[str]:
    """Top-level live parts this environment's YAML manages."""
    parts: set[str] = set()
    merge = _usable(spec, Kind.MERGE_SETTINGS)
    if merge is not None:
        parts |= {"schedule", "merges"}
        parts |= {part for key, part in MERGE_SETTINGS_PARTS.items() if key in merge}
    if _usable(spec, Kind.PHASES) is not None:
        parts.add("phases")
    if _usable(spec, Kind.ACCESS) is not None:
        parts.add("access")
    env = _usable(spec, Kind.ENVIRONMENT)
    if env is not None and (env.get("hosting") or {}).get("version") is not None:
        parts.add("version")
    if _usable(spec, Kind.UPDATES) is not None:
        parts.add("update_requests")
    return frozenset(parts)


def desired_state(spec: EnvironmentSpec) -> dict[str, Any]:
    """The live state the YAML asks for, restricted to `managed_parts(spec)`."""
    parts = managed_parts(spec)
    out: dict[str, Any] = {}
    merge = _usable(spec, Kind.MERGE_SETTINGS) or {}
    if "schedule" in parts:
        schedule = merge.get("schedule") or {}
        out["schedule"] = {name: bool(schedule[name]) for name in SCHEDULES if name in schedule}
    out.update(_merge_settings(merge, parts))
    if "phases" in parts:
        out["phases"] = _phases((_usable(spec, Kind.PHASES) or {}).get("phases") or [])
    if "access" in parts:
        out["access"] = _access(_usable(spec, Kind.ACCESS) or {})
    if "version" in parts:
        out["version"] = str(spec.config["hosting"]["version"])
    if "update_requests" in parts:
        out["update_requests"] = _requests((_usable(spec, Kind.UPDATES) or {}).get("requests") or [])
    return out


def _merge_settings(merge: Mapping[str, Any], parts: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "send_updates" in parts:
        out["send_updates"] = bool(merge["send_updates"])
    if "reference_data" in parts:
        data = merge.get("reference_data") or {}
        out["reference_data"] = {kind: bool(data[kind]) for kind in REFERENCE_DATA_TYPES if kind in data}
    if "merges" in parts:
        out["merges"] = _merges(merge.get("merges") or {})
    if "merge_states" in parts:
        states = merge["saved_states"] or {}
        out["merge_states"] = {str(name): saved_state(state or {}) for name, state in states.items()}
    return out


def _merges(merges: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in MERGE_TYPES:
        declared = merges.get(kind) or {}
        scope: dict[str, Any] = {}
        if "terms" in declared:
            scope["terms"] = sorted({str(t) for t in declared["terms"] or []})
        scope.update(_options(kind, declared))
        if scope or kind in merges:
            out[kind] = scope
    return out


def _options(kind: str, declared: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for option in TYPE_OPTIONS[kind]:
        if option in SOURCE_KEYS:
            continue
        if option in declared:
            out[option] = _option_value(option, declared[option])
        elif kind == "sections" and option in SECTION_DEFAULTS:
            out[option] = SECTION_DEFAULTS[option]
    source = declared_source_of_truth(kind, declared)
    if source is not None:
        out.update(source_of_truth_live(source))
    return out


def _option_value(option: str, value: Any) -> Any:
    if option == "post_fields":
        return sorted(value or [])
    if option == "source_of_truth":
        return normal_source_of_truth(value)
    return value


def normal_source_of_truth(value: Mapping[str, Any]) -> dict[str, Any]:
    """{default, fields} with the default filled in and the exceptions in name order."""
    fields = value.get("fields") or {}
    return {"default": str(value.get("default", DEFAULT_SOURCE_OF_TRUTH)),
            "fields": {str(k): str(fields[k]) for k in sorted(fields)}}


def declared_source_of_truth(kind: str, declared: Mapping[str, Any]) -> dict[str, Any] | None:
    """The source of truth a merge type's YAML asks for: source_of_truth, else v2's on_conflict read as its
    default, else (sections only) the platform's default; None: not managed."""
    if "source_of_truth" in declared:
        return normal_source_of_truth(declared["source_of_truth"] or {})
    if "on_conflict" in declared:
        return {"default": V2_ON_CONFLICT[str(declared["on_conflict"])], "fields": {}}
    if kind == "sections":
        return {"default": DEFAULT_SOURCE_OF_TRUTH, "fields": {}}
    return None


def source_of_truth_live(source: Mapping[str, Any]) -> dict[str, Any]:
    """The one live entry holding `source`: v2's `on_conflict` when v2 can say it, else `source_of_truth`."""
    if not source.get("fields"):
        for v2, default in V2_ON_CONFLICT.items():
            if default == source.get("default"):
                return {"on_conflict": v2}
    return {"source_of_truth": normal_source_of_truth(source)}


def live_source_of_truth(scope: Mapping[str, Any]) -> dict[str, Any] | None:
    """The source of truth a live merge type holds, in either spelling (source_of_truth wins); None: neither."""
    if isinstance(scope.get("source_of_truth"), Mapping):
        return normal_source_of_truth(scope["source_of_truth"])
    if scope.get("on_conflict") in V2_ON_CONFLICT:
        return {"default": V2_ON_CONFLICT[str(scope["on_conflict"])], "fields": {}}
    return None


def saved_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """One saved state in live's shape: its send_updates and, per merge type, the options it overlays."""
    out: dict[str, Any] = {}
    if "send_updates" in state:
        out["send_updates"] = bool(state["send_updates"])
    for kind in MERGE_TYPES:
        if kind in state:
            declared = state[kind] or {}
            out[kind] = {o: _option_value(o, declared[o]) for o in STATE_OPTIONS[kind] if o in declared}
    return out


def send_updates_for(merge: Mapping[str, Any], kind: str, state: Mapping[str, Any] | None = None) -> bool:
    """Does `kind` send updates to the SIS? Its own send_updates, else the settings' (default true); a saved
    state in use overlays both, the same way."""
    own = (merge.get("merges") or {}).get(kind) or {}
    value = bool(own.get("send_updates", merge.get("send_updates", True)))
    if state:
        value = bool(state.get("send_updates", value))
        value = bool((state.get(kind) or {}).get("send_updates", value))
    return value


def _phases(phases: list[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        str(p["name"]): {
            "term": str(p["term"]),
            "start": _text(p["start"]),
            "end": _text(p["end"]),
            "editable": sorted(p.get("editable") or []),
            "editors": sorted(p.get("editors") or []),
            **({"merge_state": str(p["merge_state"])} if p.get("merge_state") is not None else {}),
        }
        for p in phases
    }


def _access(access: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "users" in access:
        out["users"] = {str(u["email"]): {"products": sorted(u.get("products") or [])} for u in access["users"] or []}
    if "roles" in access:
        out["roles"] = {str(role): dict(perms or {}) for role, perms in (access["roles"] or {}).items()}
    return out


def _requests(requests: list[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in requests:
        item: dict[str, Any] = {"site": r["site"], "action": r["action"]}
        if r["action"] == "update":
            item["version"] = str(r["version"])
        else:
            item["source"] = r.get("source", "production")
        item["preferred"] = _text(r["preferred"])
        out[str(r["id"])] = item
    return out
