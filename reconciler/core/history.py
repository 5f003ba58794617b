"""Semantic history: two snapshots of one environment's YAML → which settings changed.

Pure. `reconciler log` reads each revision of `environments/` from git (the edge), merges it
over `_base/` and hands the data here, kind by kind. A snapshot is flattened into settings
named in the live-state vocabulary of DESIGN §3 (`schedule.realtime`, `merges.sections.terms`,
`phases.<name>`, `access.users.<email>`, `version`…, plus `terms.<code>`,
`maintenance.windows.<id>` and `environment.<key>` for what live does not hold), and two flat
snapshots are compared path by path. Term scopes are sets: their change lists the terms added
and removed, and a reordering is no change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model import MERGE_TYPES, REFERENCE_DATA_TYPES, SCHEDULES, SECTION_OPTIONS, TYPE_OPTIONS

_SET_PATH = re.compile(r"merges\.[^.]+\.terms\Z")
_HEADER = ("apiVersion", "kind")

Snapshot = Mapping[str, Mapping[str, Any]]
"""One environment at one revision: kind (e.g. "MergeSettings") → its data merged over `_base/`."""

LIVE_PATHS: frozenset[str] = frozenset(
    {"schedule", "merges", "phases", "access", "access.users", "access.roles", "version", "update_requests",
     "terms", "maintenance", "maintenance.windows", "environment"}
    | {f"schedule.{name}" for name in SCHEDULES}
    | {f"merges.{kind}" for kind in MERGE_TYPES}
    | {f"merges.{kind}.terms" for kind in MERGE_TYPES}
    | {f"merges.sections.{option}" for option in SECTION_OPTIONS}
    | {f"merges.{kind}.{option}" for kind, options in TYPE_OPTIONS.items() for option in options}
    | {"send_updates", "reference_data", "merge_states"}
    | {f"reference_data.{kind}" for kind in REFERENCE_DATA_TYPES}
)
"""Setting paths that exist whether or not a revision declares them (the live-state vocabulary)."""


@dataclass(frozen=True)
class SettingChange:
    """One setting of one environment went from `before` to `after` (None: not declared)."""

    environment: str
    path: str
    before: Any
    after: Any

    @property
    def is_set(self) -> bool:
        return bool(_SET_PATH.match(self.path))

    @property
    def added(self) -> list[Any]:
        return [v for v in self.after or [] if v not in (self.before or [])] if self.is_set else []

    @property
    def removed(self) -> list[Any]:
        return [v for v in self.before or [] if v not in (self.after or [])] if self.is_set else []

    @property
    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "before": self.before, "after": self.after}
        if self.is_set:
            out["added"] = self.added
            out["removed"] = self.removed
        return out


def setting_changes(environment: str, before: Snapshot | None, after: Snapshot | None) -> list[SettingChange]:
    """The settings that differ between two snapshots (None: nothing known), sorted by path."""
    return diff_flat(environment, flatten(before), flatten(after))


def diff_flat(environment: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[SettingChange]:
    paths = sorted(set(before) | set(after))
    return [
        SettingChange(environment, path, before.get(path), after.get(path))
        for path in paths
        if before.get(path) != after.get(path)
    ]


def known_setting_paths(data: Snapshot | None) -> set[str]:
    """Every setting path a snapshot declares, with each of its parents (`phases`, `access.users`…)."""
    known: set[str] = set()
    for path in flatten(data):
        parts = path.split(".")
        known.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return known


def names_setting(query: str, known: Iterable[str]) -> bool:
    """Whether `query` names a setting: a known path or parent, or one of the live-state vocabulary."""
    return query in LIVE_PATHS or query in set(known)


def touches(change: SettingChange, query: str) -> bool:
    """Whether a change concerns the setting `query` (itself, a child, or a window that pauses it)."""
    if change.path == query or change.path.startswith(query + ".") or query.startswith(change.path + "."):
        return True
    if query.startswith("schedule.") and change.path.startswith("maintenance.windows."):
        name = query.removeprefix("schedule.")
        return any(name in _paused(window) for window in (change.before, change.after))
    return False


def _paused(window: Any) -> list[str]:
    if not isinstance(window, Mapping):
        return []
    pause = window.get("pause", list(SCHEDULES))
    return [str(p) for p in pause] if isinstance(pause, list) else []


# --- flattening ------------------------------------------------------------------------------


def flatten(snapshot: Snapshot | None) -> dict[str, Any]:
    """A whole snapshot as path → value."""
    out: dict[str, Any] = {}
    for kind, data in (snapshot or {}).items():
        out.update(flatten_kind(str(getattr(kind, "value", kind)), data))
    return out


def flatten_kind(kind: str, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """One kind's data as path → value; a shape the schema would refuse is kept whole, never a crash."""
    if not isinstance(data, Mapping):
        return {}
    body = {k: v for k, v in data.items() if k not in _HEADER}
    flattener = _FLATTENERS.get(kind)
    return flattener(body) if flattener else _leaves(kind.lower(), body)


def _environment(data: Mapping[str, Any]) -> dict[str, Any]:
    hosting = data.get("hosting")
    rest = {k: v for k, v in data.items() if k != "hosting"}
    out = _leaves("environment", rest)
    if isinstance(hosting, Mapping):
        if "version" in hosting:
            out["version"] = hosting["version"]
        out.update(_leaves("environment.hosting", {k: v for k, v in hosting.items() if k != "version"}))
    elif hosting is not None:
        out["environment.hosting"] = hosting
    return out


def _merge_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    schedule = data.get("schedule")
    out.update(_leaves("schedule", schedule) if isinstance(schedule, Mapping) else _whole("schedule", schedule))
    merges = data.get("merges")
    if not isinstance(merges, Mapping):
        out.update(_whole("merges", merges))
    else:
        for kind, scope in merges.items():
            out.update(_merge_scope(f"merges.{kind}", scope))
    out.update(_leaves("merge_settings", {k: v for k, v in data.items() if k not in ("schedule", "merges")}))
    return out


def _merge_scope(prefix: str, scope: Any) -> dict[str, Any]:
    if not isinstance(scope, Mapping):
        return _whole(prefix, scope)
    out: dict[str, Any] = {}
    for key, value in scope.items():
        if key == "terms" and isinstance(value, list):
            out[f"{prefix}.terms"] = sorted({str(t) for t in value})
        elif key == "post_fields" and isinstance(value, list):
            out[f"{prefix}.post_fields"] = sorted(str(v) for v in value)
        else:
            out[f"{prefix}.{key}"] = value
    return out


def _keyed(prefix: str, items: Any, key: str) -> dict[str, Any]:
    """A list of mappings named by `key` (code, name, id, email) as one setting per item."""
    if not isinstance(items, list):
        return _whole(prefix, items)
    out: dict[str, Any] = {}
    for index, item in enumerate(items):
        if isinstance(item, Mapping) and key in item:
            out[f"{prefix}.{item[key]}"] = {k: _sorted_list(v) for k, v in item.items() if k != key}
        else:
            out[f"{prefix}.{index}"] = item
    return out


def _sorted_list(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(value)
    return value


def _terms(data: Mapping[str, Any]) -> dict[str, Any]:
    return {**_keyed("terms", data.get("terms"), "code"), **_rest("terms", data, "terms")}


def _phases(data: Mapping[str, Any]) -> dict[str, Any]:
    return {**_keyed("phases", data.get("phases"), "name"), **_rest("phases", data, "phases")}


def _maintenance(data: Mapping[str, Any]) -> dict[str, Any]:
    return {**_keyed("maintenance.windows", data.get("windows"), "id"), **_rest("maintenance", data, "windows")}


def _updates(data: Mapping[str, Any]) -> dict[str, Any]:
    return {**_keyed("update_requests", data.get("requests"), "id"), **_rest("update_requests", data, "requests")}


def _access(data: Mapping[str, Any]) -> dict[str, Any]:
    out = _keyed("access.users", data.get("users"), "email") if "users" in data else {}
    roles = data.get("roles")
    if roles is not None:
        out.update(_leaves("access.roles", roles) if isinstance(roles, Mapping) else _whole("access.roles", roles))
    out.update(_leaves("access", {k: v for k, v in data.items() if k not in ("users", "roles")}))
    return out


def _rest(prefix: str, data: Mapping[str, Any], main: str) -> dict[str, Any]:
    return _leaves(prefix, {k: v for k, v in data.items() if k != main})


def _whole(path: str, value: Any) -> dict[str, Any]:
    return {} if value is None else {path: value}


def _leaves(prefix: str, value: Any) -> dict[str, Any]:
    """Mappings become dotted paths; anything else (lists included) is one setting."""
    if not isinstance(value, Mapping):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, child in value.items():
        out.update(_leaves(f"{prefix}.{key}", child))
    return out


_FLATTENERS = {
    "Environment": _environment,
    "MergeSettings": _merge_settings,
    "Terms": _terms,
    "Phases": _phases,
    "MaintenanceWindows": _maintenance,
    "Access": _access,
    "UpdateRequests": _updates,
}
