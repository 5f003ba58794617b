"""The desired side of a plan: the YAML of one environment projected into the live-state shape.

Flow: `load` → `policy` → `timeline.effective(at)` → **desired_state** → `plan`. Only the
managed kinds are projected (DESIGN §3); `managed_parts` names which top-level parts of the
live state the plan may touch, so an unmanaged part is never compared or changed.

A key the YAML omits is not managed (a schedule switch, a merge type's terms, a section
option, the users or roles of Access), except `on_conflict` and `allow_empty`, whose schema
defaults ("sis", false) are the platform's documented behaviour and are always enforced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.model import MERGE_TYPES, SCHEDULES, SECTION_OPTIONS, EnvironmentSpec, Kind

SECTION_DEFAULTS: Mapping[str, Any] = {"on_conflict": "sis", "allow_empty": False}


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
    if _usable(spec, Kind.MERGE_SETTINGS) is not None:
        parts |= {"schedule", "merges"}
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
    if "merges" in parts:
        out["merges"] = _merges(merge.get("merges") or {})
    if "phases" in parts:
        out["phases"] = _phases((_usable(spec, Kind.PHASES) or {}).get("phases") or [])
    if "access" in parts:
        out["access"] = _access(_usable(spec, Kind.ACCESS) or {})
    if "version" in parts:
        out["version"] = str(spec.config["hosting"]["version"])
    if "update_requests" in parts:
        out["update_requests"] = _requests((_usable(spec, Kind.UPDATES) or {}).get("requests") or [])
    return out


def _merges(merges: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in MERGE_TYPES:
        declared = merges.get(kind) or {}
        scope: dict[str, Any] = {}
        if "terms" in declared:
            scope["terms"] = sorted({str(t) for t in declared["terms"] or []})
        if kind == "sections":
            for option in SECTION_OPTIONS:
                if option in declared:
                    value = declared[option]
                    scope[option] = sorted(value) if option == "post_fields" else value
                elif option in SECTION_DEFAULTS:
                    scope[option] = SECTION_DEFAULTS[option]
        if scope or kind in merges:
            out[kind] = scope
    return out


def _phases(phases: list[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        str(p["name"]): {
            "term": str(p["term"]),
            "start": _text(p["start"]),
            "end": _text(p["end"]),
            "editable": sorted(p.get("editable") or []),
            "editors": sorted(p.get("editors") or []),
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
