"""The import use case: write the live state into the environment's YAML to adopt drift.

Round-trip YAML (ruamel): comments, key order and flow style are kept; only values that differ
from what the YAML (merged over `_base/`) already says are written, always in the environment's
own file (created when the kind lives only in `_base/` or nowhere). Imported: MergeSettings
(schedule, merges.*.terms and the section options; send_updates, reference data, source of truth and
saved states through `importing_merges`), Phases (with their merge_state), and the users of Access. A schedule
switched off by a window active now is the window's doing, not drift, and is left alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.edit import is_flow
from reconciler.errors import UsageError
from reconciler.model import MERGE_TYPES, PHASE_FIELDS, SCHEDULES, SECTION_OPTIONS, EnvironmentSpec, Kind

if TYPE_CHECKING:
    from reconciler.engine import Engine


def import_env(engine: Engine, env: str) -> int:
    """Write ENV's live state into its YAML (only what differs), record the import."""
    out = engine.out
    moment = engine.now()
    revision = engine.revision()  # the YAML read, before the import writes it
    specs = engine.select([env], None).specs
    spec = specs[0]
    live = engine.read_lives(specs)[spec.name]
    if not live.get("applied") and not any(k in live for k in ("schedule", "merges", "phases", "access")):
        raise UsageError(f"{spec.name}: the live side is empty; nothing to import")
    written = _write_checked(engine, spec, live, moment)
    if written:
        from reconciler import activity

        out.emit(f"{spec.name}: imported the live state into {', '.join(written)}")
        entry = {"kind": "import", "at": moment.isoformat(), "files": written, "outcome": "imported",
                 "actor": activity.actor(engine.root), "revision": revision}
        try:
            engine.connect(spec, engine.root, writing=True).append_activity(entry)
        except Exception as e:  # recording is best effort; the files are written
            out.note(f"{spec.name}: could not record the import on the activity log: {e}")
        _record_git(engine, spec.name, written, revision)
    else:
        out.emit(f"{spec.name}: the YAML already matches the live state; nothing written")
    return 0


def _record_git(engine: Engine, env: str, written: list[str], revision: str | None) -> None:
    from reconciler import activity
    from reconciler.engine.apply import GitRecorder

    body = "\n".join(f"~ {path}" for path in written)
    recorder = GitRecorder(engine, revision, activity.actor(engine.root), None, None)
    recorder.record(env, "imported", f"import {env}: wrote the live state into {len(written)} file"
                    f"{'s' if len(written) != 1 else ''}", body)


# --- YAML plumbing ------------------------------------------------------------------------------


def _write_checked(engine: Engine, spec: EnvironmentSpec, live: Mapping[str, Any], moment: dt.datetime) -> list[str]:
    """Write what differs, through the one keep-if-valid edit (as `term` and `promote` do): a result that
    does not validate is put back and refused, so an import never leaves the YAML invalid."""
    from reconciler import edit
    from reconciler.engine.selection import collect_problems

    kinds = ((Kind.ENVIRONMENT, _version), (Kind.MERGE_SETTINGS, _merge_settings), (Kind.PHASES, _phases),
             (Kind.ACCESS, _access))
    texts: dict[str, str] = {}
    for kind, update in kinds:
        found = _import_kind(engine.root, spec, kind, live, moment, update)
        if found is not None:
            texts[found[0]] = found[1]
    if texts:
        old = edit.write_texts(engine.root, texts)
        edit.keep_if_valid(engine.root, old, lambda: collect_problems(engine.root, [spec.name], at=moment)[0])
    return list(texts)


def _import_kind(root: Path, spec: EnvironmentSpec, kind: Kind, live: Mapping[str, Any], moment: dt.datetime,
                 update: Any) -> tuple[str, str] | None:
    """(file, new text) of one kind's file, or None when it already says what live does."""
    from reconciler import edit

    rel = f"environments/{spec.name}/{kind.filename}"
    path = root / rel
    loaded = edit.load(path, rel) if path.exists() else edit.new_file(kind)
    if not update(loaded.doc, spec.data(kind) or {}, live, spec, moment):
        return None
    return rel, edit.dump(loaded)


def _q(value: Any) -> Any:
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    return DoubleQuotedScalarString(str(value))


def _seq(values: list[Any], flow: bool, quote: bool = False) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq([_q(v) if quote else v for v in values])
    if flow:
        seq.fa.set_flow_style()
    return seq


def _set_list(parent: Any, key: str, values: list[Any], like: Any, quote: bool = False) -> None:
    """Set parent[key] to `values`, in place when the node exists (keeping its style and comments)."""
    node = parent.get(key)
    items = [_q(v) if quote else v for v in values]
    if node is not None and hasattr(node, "fa"):
        node[:] = items
        return
    parent[key] = _seq(values, flow=not hasattr(like, "fa") or is_flow(like), quote=quote)


def _child(doc: Any, key: str) -> Any:
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(doc.get(key), Mapping):
        doc[key] = CommentedMap()
    return doc[key]


# --- per kind -----------------------------------------------------------------------------------


def _merge_settings(doc: Any, merged: Mapping[str, Any], live: Mapping[str, Any], spec: EnvironmentSpec,
                    moment: dt.datetime) -> bool:
    from reconciler.core.timeline import Timeline

    changed = False
    schedule = live.get("schedule")
    if isinstance(schedule, Mapping):
        paused = {name for o in Timeline.from_spec(spec).active_windows(moment) for name in o.window.pause}
        declared = merged.get("schedule") or {}
        for name in SCHEDULES:
            if name not in schedule or not isinstance(schedule[name], bool):
                continue
            if schedule[name] is False and name in paused:
                continue
            if declared.get(name) != schedule[name]:
                _child(doc, "schedule")[name] = schedule[name]
                changed = True
    from reconciler.engine.importing_merges import merge_options

    changed |= merge_options(doc, merged, live)
    merges = live.get("merges")
    if not isinstance(merges, Mapping):
        return changed
    declared_merges = merged.get("merges") or {}
    for kind in MERGE_TYPES:
        scope = merges.get(kind)
        if not isinstance(scope, Mapping):
            continue
        declared = declared_merges.get(kind) or {}
        if "terms" in scope:
            terms = sorted({str(t) for t in scope["terms"] or []})
            if sorted({str(t) for t in declared.get("terms") or []}) != terms or "terms" not in declared:
                _set_list(_child(_child(doc, "merges"), kind), "terms", terms, declared.get("terms"), quote=True)
                changed = True
        if kind != "sections":
            continue
        for option in SECTION_OPTIONS:
            if option not in scope or option == "on_conflict":  # the source of truth: importing_merges
                continue
            value = scope[option]
            if option == "post_fields":
                if sorted(declared.get(option) or []) != sorted(value or []) or option not in declared:
                    _set_list(_child(_child(doc, "merges"), kind), option, _ordered(declared.get(option), value),
                              declared.get(option))
                    changed = True
            elif declared.get(option, _default(option)) != value:
                _child(_child(doc, "merges"), kind)[option] = value
                changed = True
    return changed


def _default(option: str) -> Any:
    from reconciler.core.desired import SECTION_DEFAULTS

    return SECTION_DEFAULTS.get(option)


def _ordered(old: Any, new: Any) -> list[Any]:
    """`new`, keeping the order of the values `old` already had, new ones after them."""
    new_list = list(new or [])
    kept = [v for v in (old or []) if v in new_list]
    return kept + sorted(v for v in new_list if v not in kept)


def _date(text: Any) -> Any:
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        return str(text)


def _text(value: Any) -> str:
    iso = getattr(value, "isoformat", None)
    return str(iso()) if callable(iso) else str(value)


def _phases(doc: Any, merged: Mapping[str, Any], live: Mapping[str, Any], spec: EnvironmentSpec,
            moment: dt.datetime) -> bool:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    phases = live.get("phases")
    if not isinstance(phases, Mapping):
        return False
    declared = {str(p["name"]): p for p in merged.get("phases") or [] if isinstance(p, Mapping)}
    if _same_phases(declared, phases):
        return False
    if not isinstance(doc.get("phases"), list):
        doc["phases"] = CommentedSeq([_plain_phase(p) for p in merged.get("phases") or []])
    seq = doc["phases"]
    for i in reversed(range(len(seq))):
        if str(seq[i].get("name")) not in phases:
            del seq[i]
    present = {str(p.get("name")): p for p in seq}
    for name, item in phases.items():
        node = present.get(name)
        if node is None:
            node = CommentedMap()
            node["name"] = name
            seq.append(node)
        for key in PHASE_FIELDS:
            want = item.get(key)
            have = node.get(key)
            if key in ("start", "end"):
                if have is None or _text(have) != str(want):
                    node[key] = _date(want)
            elif key == "term":
                if have is None or str(have) != str(want):
                    node[key] = _q(want)
            elif key == "merge_state":
                if want is None and have is not None:
                    del node[key]
                elif want is not None and str(have) != str(want):
                    node[key] = str(want)
            elif have is None or sorted(have) != sorted(want or []):
                _set_list(node, key, _ordered(have, want), have if have is not None else _seq([], True))
    return True


def _plain_phase(p: Mapping[str, Any]) -> Any:
    from ruamel.yaml.comments import CommentedMap

    node = CommentedMap()
    for key, value in p.items():
        node[key] = _seq(list(value), True) if isinstance(value, list | tuple) else value
    return node


def _same_phases(declared: Mapping[str, Mapping[str, Any]], live: Mapping[str, Any]) -> bool:
    if set(declared) != set(live):
        return False
    for name, item in live.items():
        mine = declared[name]
        if (str(mine.get("term")) != str(item.get("term")) or _text(mine.get("start")) != str(item.get("start"))
                or _text(mine.get("end")) != str(item.get("end"))):
            return False
        for key in ("editable", "editors"):
            if sorted(mine.get(key) or []) != sorted(item.get(key) or []):
                return False
        if mine.get("merge_state") != item.get("merge_state"):
            return False
    return True


def _roles(doc: Any, merged: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Live role permissions that differ from the merged YAML, written into this environment's file (an
    overlay: `_base/` stays as it is); a permission live no longer has is removed where this file sets it."""
    from ruamel.yaml.comments import CommentedMap

    roles = (live.get("access") or {}).get("roles")
    if not isinstance(roles, Mapping) or "roles" not in merged:
        return False
    declared = {str(role): dict(perms or {}) for role, perms in (merged.get("roles") or {}).items()}
    wanted = {str(role): dict(perms or {}) for role, perms in roles.items()}
    if wanted == declared:
        return False
    node = doc.get("roles")
    if not isinstance(node, Mapping):
        node = doc["roles"] = CommentedMap()
    for role, perms in wanted.items():
        for perm, value in perms.items():
            if declared.get(role, {}).get(perm) != value:
                _role_node(node, role)[perm] = value
    for role, perms in declared.items():
        for perm in perms:
            if perm not in wanted.get(role, {}) and isinstance(node.get(role), Mapping) and perm in node[role]:
                del node[role][perm]
    return True


def _role_node(roles: Any, role: str) -> Any:
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(roles.get(role), Mapping):
        roles[role] = CommentedMap()
        roles[role].fa.set_flow_style()
    return roles[role]


def _version(doc: Any, merged: Mapping[str, Any], live: Mapping[str, Any], spec: EnvironmentSpec,
             moment: dt.datetime) -> bool:
    """The hosted version, when the YAML manages it (a cloud plan has none to adopt)."""
    hosting = doc.get("hosting")
    version = live.get("version")
    declared = (merged.get("hosting") or {}).get("version")
    if not isinstance(hosting, MutableMapping) or declared is None or version is None or str(version) == str(declared):
        return False
    hosting["version"] = str(version)
    return True


def _access(doc: Any, merged: Mapping[str, Any], live: Mapping[str, Any], spec: EnvironmentSpec,
            moment: dt.datetime) -> bool:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    roles_written = _roles(doc, merged, live)
    users = (live.get("access") or {}).get("users")
    if not isinstance(users, Mapping):
        return roles_written
    declared = {str(u["email"]): sorted(u.get("products") or []) for u in merged.get("users") or []}
    wanted = {email: sorted((item or {}).get("products") or []) for email, item in users.items()}
    if declared == wanted and "users" in merged:
        return roles_written
    if not isinstance(doc.get("users"), list):
        doc["users"] = CommentedSeq([_plain_phase(u) for u in merged.get("users") or []])
    seq = doc["users"]
    for i in reversed(range(len(seq))):
        if str(seq[i].get("email")) not in wanted:
            del seq[i]
    present = {str(u.get("email")): u for u in seq}
    flow = all(is_flow(u) for u in seq) if len(seq) else True
    for email, products in wanted.items():
        node = present.get(email)
        if node is None:
            node = CommentedMap()
            node["email"] = email
            if flow:
                node.fa.set_flow_style()
            seq.append(node)
        have = node.get("products")
        if have is None or sorted(have) != products:
            _set_list(node, "products", _ordered(have, products), have if have is not None else _seq([], True))
    return True
