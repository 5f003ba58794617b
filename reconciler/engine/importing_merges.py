"""Import's part for the merge settings beyond term scopes: send_updates, reference data, each merge type's
send_updates, only_selected_terms and source of truth, and the saved states.

Place in the flow: `importing._merge_settings` calls `merge_options` with the environment's own round-trip
document, the YAML merged over `_base/` and the live state. Only what differs from the merged YAML is
written, in the environment's own file; the comparisons use `core.desired`'s spellings, so what import
writes plans as no change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.desired import (
    declared_source_of_truth,
    live_source_of_truth,
    saved_state,
    source_of_truth_live,
)
from reconciler.model import MERGE_TYPES, REFERENCE_DATA_TYPES, STATE_OPTIONS

SWITCHES: Mapping[str, tuple[str, ...]] = {"courses": ("send_updates", "only_selected_terms"),
                                           "sections": ("send_updates",), "relationships": ("send_updates",)}
"""Per merge type, the true/false options import adopts as they are."""


def merge_options(doc: Any, merged: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Write live's values of these settings where they differ from `merged`; True when anything was."""
    changed = _set_if(doc, merged, "send_updates", live.get("send_updates"))
    data = live.get("reference_data")
    if isinstance(data, Mapping):
        for kind in REFERENCE_DATA_TYPES:
            if isinstance(data.get(kind), bool) and (merged.get("reference_data") or {}).get(kind) != data[kind]:
                _child(doc, "reference_data")[kind] = data[kind]
                changed = True
    merges = live.get("merges")
    merges = merges if isinstance(merges, Mapping) else {}
    for kind in MERGE_TYPES:
        scope = merges.get(kind)
        if isinstance(scope, Mapping):
            changed |= _merge_type(doc, kind, (merged.get("merges") or {}).get(kind) or {}, scope)
    states = live.get("merge_states")
    if isinstance(states, Mapping):
        changed |= _states(doc, merged.get("saved_states") or {}, states)
    return changed


def _set_if(node: Any, merged: Mapping[str, Any], key: str, value: Any) -> bool:
    if not isinstance(value, bool) or merged.get(key) == value:
        return False
    node[key] = value
    return True


def _merge_type(doc: Any, kind: str, declared: Mapping[str, Any], scope: Mapping[str, Any]) -> bool:
    changed = False
    for option in SWITCHES[kind]:
        if isinstance(scope.get(option), bool) and declared.get(option) != scope[option]:
            _child(_child(doc, "merges"), kind)[option] = scope[option]
            changed = True
    have = live_source_of_truth(scope)
    if have is not None and have != declared_source_of_truth(kind, declared):
        _write_source(_child(_child(doc, "merges"), kind), declared, have)
        changed = True
    return changed


def _write_source(node: Any, declared: Mapping[str, Any], source: Mapping[str, Any]) -> None:
    """In the spelling the YAML already uses: v2's on_conflict while it can say `source`, else source_of_truth."""
    v2 = source_of_truth_live(source).get("on_conflict")
    if "on_conflict" in declared and v2 is not None:
        node["on_conflict"] = v2
        return
    if "on_conflict" in node:
        del node["on_conflict"]
    entry = _child(node, "source_of_truth")
    entry["default"] = source["default"]
    if source.get("fields"):
        _set_mapping(_child(entry, "fields"), source["fields"])
    elif "fields" in entry:
        del entry["fields"]


def _set_mapping(node: Any, values: Mapping[str, Any]) -> None:
    for key in [k for k in node if k not in values]:
        del node[key]
    for key, value in values.items():
        if node.get(key) != value:
            node[key] = value


def _states(doc: Any, declared: Mapping[str, Any], states: Mapping[str, Any]) -> bool:
    """Each live saved state's values where they differ from the YAML's (a state live added is written whole)."""
    changed = False
    for name, state in states.items():
        if not isinstance(state, Mapping) or saved_state(declared.get(name) or {}) == saved_state(state):
            continue
        node = _child(_child(doc, "saved_states"), str(name))
        _state(node, declared.get(name) or {}, state)
        changed = True
    own = doc.get("saved_states")
    for name in [n for n in (own or {}) if n not in states]:
        del own[name]
        changed = True
    return changed


def _state(node: Any, declared: Mapping[str, Any], state: Mapping[str, Any]) -> None:
    if "send_updates" in state:
        node["send_updates"] = bool(state["send_updates"])
    elif "send_updates" in node:
        del node["send_updates"]
    for kind in MERGE_TYPES:
        options = state.get(kind) or {}
        if not options and kind not in node:
            continue
        inner = _child(node, kind)
        for option in STATE_OPTIONS[kind]:
            if option in options:
                inner[option] = _yaml_value(option, options[option])
            elif option in inner:
                del inner[option]


def _yaml_value(option: str, value: Any) -> Any:
    if option == "source_of_truth" and isinstance(value, Mapping):
        return {"default": value.get("default"), **({"fields": dict(value["fields"])} if value.get("fields") else {})}
    if isinstance(value, list):
        from ruamel.yaml.comments import CommentedSeq

        seq = CommentedSeq(value)
        seq.fa.set_flow_style()  # like the example's other field lists
        return seq
    return value


def _child(doc: Any, key: str) -> Any:
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(doc.get(key), Mapping):
        doc[key] = CommentedMap()
    return doc[key]

