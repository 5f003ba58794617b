"""Term rollover and promotion as data: which YAML files change, and how.

Place in the flow: the edge (`cli/term.py`, `cli/promote.py`) reads each YAML file as plain
data and hands it here; this module returns `Edit`s per file, which `reconciler.edit` makes
on the round-trip YAML (comments and layout kept). Pure: no files, no clock (`today` comes in).

- `roll`: NEW joins every Terms file that lists OLD (OLD's dates a year later unless given),
  every merge scope that holds OLD, and every phase set with phases of OLD (copied, shifted).
- `expire`: ended terms leave every merge scope.
- `promote`: DST's term scopes and phases become SRC's (merged) ones, written in DST's files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from reconciler.errors import UsageError
from reconciler.model import MERGE_TYPES, PHASE_FIELDS, Kind

TERM_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_YEAR = re.compile(r"(?<!\d)(19|20|21)(\d\d)(?!\d)")
_PHASE_NAME_MAX = 63
PHASE_KEYS = ("name", *PHASE_FIELDS)

Path_ = tuple[str | int, ...]


class Code(str):
    """A term code: written quoted, so YAML keeps it text."""


class Flow(tuple):  # type: ignore[type-arg]
    """A short list written in flow style ([a, b])."""


@dataclass(frozen=True)
class Edit:
    """One change to one file.

    op: `append` (value to the list at path), `remove` (value from the list at path),
    `set` (path's value; missing mappings on the way are made), `append_item` (a mapping to
    the list at path), `remove_item` (the item at path), `unset` (the mapping key at path),
    `drop_comment` (the comment after path).
    """

    op: str
    path: Path_
    value: Any = None
    note: str = ""


@dataclass(frozen=True)
class YamlFile:
    """One YAML file as plain data; `path` is relative to the root; `data` is None when it is to be made."""

    path: str
    kind: Kind
    data: Mapping[str, Any] | None


@dataclass
class Changes:
    """Edits by file, in the order the files were met."""

    files: dict[str, list[Edit]] = field(default_factory=dict)
    create: dict[str, Kind] = field(default_factory=dict)

    def add(self, path: str, edit: Edit) -> None:
        self.files.setdefault(path, []).append(edit)

    @property
    def summary(self) -> list[str]:
        return [f"{path}: {edit.note}" for path, edits in self.files.items() for edit in edits if edit.note]


def as_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as e:
        raise UsageError(f"{value!r} is not a date (YYYY-MM-DD)") from e


def next_year(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


# --- term roll -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTerm:
    code: str
    name: str
    start: date
    end: date
    like: str
    like_start: date

    def shift(self, day: date) -> date:
        """A date of OLD moved to NEW: a year later, or by as many days as NEW's start moved."""
        if self.start == next_year(self.like_start):
            return next_year(day)
        return day + (self.start - self.like_start)


def all_terms(files: Iterable[YamlFile]) -> dict[str, Mapping[str, Any]]:
    """code → term entry, over every Terms file (the first file naming a code wins)."""
    found: dict[str, Mapping[str, Any]] = {}
    for f in files:
        if f.kind is Kind.TERMS and f.data:
            for term in f.data.get("terms") or []:
                if isinstance(term, Mapping) and "code" in term:
                    found.setdefault(str(term["code"]), term)
    return found


def new_term(files: Sequence[YamlFile], new: str, like: str | None, name: str | None,
             start: date | None, end: date | None) -> NewTerm:
    """NEW's code, name and dates, or a UsageError saying why not."""
    known = all_terms(files)
    if not TERM_CODE.match(new):
        raise UsageError(f"term code {new!r} is not valid: it must match {TERM_CODE.pattern}")
    if new in known:
        raise UsageError(f"term {new} is already listed in Terms")
    if not known:
        raise UsageError("no Terms file lists any term; add one by hand first")
    if like is None:
        like = max(known, key=lambda code: (as_date(known[code]["start"]), code))
    elif like not in known:
        raise UsageError(f"--like {like}: no such term in Terms (have: {', '.join(sorted(known))})")
    old = known[like]
    old_start, old_end = as_date(old["start"]), as_date(old["end"])
    begin = start or next_year(old_start)
    finish = end or (begin + (old_end - old_start) if start else next_year(old_end))
    if finish < begin:
        raise UsageError(f"term {new} would end ({finish}) before it starts ({begin})")
    return NewTerm(new, name or _next_name(str(old["name"]), like), begin, finish, like, old_start)


def _next_name(name: str, like: str) -> str:
    if not _YEAR.search(name):
        raise UsageError(f"cannot work out the new term's name from {name!r} (term {like}) — it has no year; "
                         "pass --name")
    return _YEAR.sub(lambda m: str(int(m.group(0)) + 1), name)


def roll(files: Sequence[YamlFile], term: NewTerm) -> Changes:
    """Edits that add `term` wherever `term.like` is: Terms, merge scopes, phase sets."""
    changes = Changes()
    for f in files:
        if f.data is None:
            continue
        if f.kind is Kind.TERMS:
            _roll_terms(changes, f, term)
        elif f.kind is Kind.MERGE_SETTINGS:
            _roll_scopes(changes, f, term)
        elif f.kind is Kind.PHASES:
            _roll_phases(changes, f, term)
    return changes


def _roll_terms(changes: Changes, f: YamlFile, term: NewTerm) -> None:
    assert f.data is not None
    codes = [str(t.get("code")) for t in f.data.get("terms") or [] if isinstance(t, Mapping)]
    if term.like not in codes:
        return
    entry = {"code": Code(term.code), "name": term.name, "start": term.start, "end": term.end}
    note = f"terms + {term.code} ({term.name}, {term.start}..{term.end})"
    changes.add(f.path, Edit("append_item", ("terms",), entry, note))


def _roll_scopes(changes: Changes, f: YamlFile, term: NewTerm) -> None:
    assert f.data is not None
    for mtype, codes in scopes(f.data).items():
        if term.like in codes and term.code not in codes:
            path = ("merges", mtype, "terms")
            changes.add(f.path, Edit("append", path, Code(term.code), f"merges.{mtype}.terms + {term.code}"))


def scopes(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """merge type → its term codes, for the types whose `terms` the data names."""
    merges = data.get("merges") or {}
    found: dict[str, list[str]] = {}
    for mtype in MERGE_TYPES:
        scope = merges.get(mtype)
        if isinstance(scope, Mapping) and isinstance(scope.get("terms"), list):
            found[mtype] = [str(code) for code in scope["terms"]]
    return found


def _roll_phases(changes: Changes, f: YamlFile, term: NewTerm) -> None:
    assert f.data is not None
    phases = [p for p in f.data.get("phases") or [] if isinstance(p, Mapping)]
    taken = {str(p.get("name")) for p in phases}
    for phase in phases:
        if str(phase.get("term")) != term.like:
            continue
        name = phase_name(str(phase["name"]), term, taken)
        taken.add(name)
        copy = {
            "name": name,
            "term": Code(term.code),
            "start": term.shift(as_date(phase["start"])),
            "end": term.shift(as_date(phase["end"])),
            "editable": Flow(phase.get("editable") or ()),
            "editors": Flow(phase.get("editors") or ()),
            # the new term's phase merges the way its model's did (a saved state such as `frozen`)
            **({"merge_state": str(phase["merge_state"])} if phase.get("merge_state") is not None else {}),
        }
        note = f"phases + {name} (term {term.code}, {copy['start']}..{copy['end']}, like {phase['name']})"
        changes.add(f.path, Edit("append_item", ("phases",), copy, note))


def phase_name(old: str, term: NewTerm, taken: set[str]) -> str:
    """OLD's phase name for NEW: its year or term code moved on, else NEW's code appended; unique."""
    old_slug, new_slug = _slug(term.like), _slug(term.code)
    if old_slug and old_slug in old:
        base = old.replace(old_slug, new_slug)
    elif _YEAR.search(old):
        base = _YEAR.sub(lambda m: str(int(m.group(0)) + 1), old)
    else:
        base = f"{old}-{new_slug}"
    base = base[:_PHASE_NAME_MAX].rstrip("-")
    name, n = base, 2
    while name in taken:
        suffix = f"-{n}"
        name = base[: _PHASE_NAME_MAX - len(suffix)] + suffix
        n += 1
    return name


def _slug(code: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", code.lower()).strip("-")


# --- term expire -----------------------------------------------------------------------------


def ended(terms: Iterable[Mapping[str, Any]], today: date) -> set[str]:
    """Codes of the terms whose last day is before `today`."""
    return {str(t["code"]) for t in terms if isinstance(t, Mapping) and "end" in t and as_date(t["end"]) < today}


def expire(files: Sequence[YamlFile], ended_by_file: Mapping[str, set[str]]) -> Changes:
    """Edits that take every ended term out of every merge scope."""
    changes = Changes()
    for f in files:
        if f.kind is not Kind.MERGE_SETTINGS or f.data is None:
            continue
        gone = ended_by_file.get(f.path, set())
        for mtype, codes in scopes(f.data).items():
            for code in dict.fromkeys(codes):
                if code in gone:
                    note = f"merges.{mtype}.terms - {code} (ended)"
                    changes.add(f.path, Edit("remove", ("merges", mtype, "terms"), Code(code), note))
    return changes


# --- promote ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One environment for promote: its merged data per kind, and its own files (data None: none)."""

    name: str
    merged: Mapping[Kind, Mapping[str, Any]]
    own: Mapping[Kind, YamlFile]
    terms_source: YamlFile | None = None
    """Where DST's Terms come from (its own file, else _base's); None: make its own."""


def promote(src: Side, dst: Side) -> Changes:
    """Edits that give DST the term scopes and phases SRC has."""
    changes = Changes()
    _promote_scopes(changes, src, dst)
    _promote_states(changes, src, dst)
    _promote_phases(changes, src, dst)
    _promote_terms(changes, src, dst)
    return changes


def _own(changes: Changes, dst: Side, kind: Kind) -> YamlFile:
    f = dst.own[kind]
    if f.data is None:
        changes.create[f.path] = kind
    return f


def _promote_scopes(changes: Changes, src: Side, dst: Side) -> None:
    want = scopes(src.merged.get(Kind.MERGE_SETTINGS) or {})
    have = scopes(dst.merged.get(Kind.MERGE_SETTINGS) or {})
    for mtype, codes in want.items():
        if mtype in have and set(have[mtype]) == set(codes):
            continue
        f = _own(changes, dst, Kind.MERGE_SETTINGS)
        before = set(have.get(mtype, []))
        added = [c for c in codes if c not in before]
        gone = [c for c in have.get(mtype, []) if c not in set(codes)]
        note = f"merges.{mtype}.terms = [{', '.join(codes)}]" + _delta(added, gone)
        changes.add(f.path, Edit("set", ("merges", mtype, "terms"), Flow(Code(c) for c in codes), note))


def _promote_states(changes: Changes, src: Side, dst: Side) -> None:
    """The saved states SRC's phases may name: DST gets SRC's, each state whole, in its own file."""
    want = (src.merged.get(Kind.MERGE_SETTINGS) or {}).get("saved_states")
    have = (dst.merged.get(Kind.MERGE_SETTINGS) or {}).get("saved_states")
    if want is None or _plain(want) == _plain(have or {}):
        return
    f = _own(changes, dst, Kind.MERGE_SETTINGS)
    for name, state in want.items():
        if _plain(state) != _plain((have or {}).get(name)):
            changes.add(f.path, Edit("set", ("saved_states", str(name)), _plain(state), f"saved_states.{name}"))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return list(value) if isinstance(value, list | tuple) else value


def _delta(added: Sequence[str], gone: Sequence[str]) -> str:
    parts = [f"+ {c}" for c in added] + [f"- {c}" for c in gone]
    return f" ({', '.join(parts)})" if parts else ""


def _phase_key(phase: Mapping[str, Any]) -> tuple[Any, ...]:
    return (str(phase.get("term")), str(as_date(phase["start"])), str(as_date(phase["end"])),
            sorted(phase.get("editable") or []), sorted(phase.get("editors") or []), phase.get("merge_state"))


def _plain_phase(phase: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in PHASE_KEYS:
        if key not in phase:
            continue
        value = phase[key]
        if key == "term":
            value = Code(str(value))
        elif key in ("start", "end"):
            value = as_date(value)
        elif isinstance(value, list | tuple):
            value = Flow(value)
        out[key] = value
    return out


def _promote_phases(changes: Changes, src: Side, dst: Side) -> None:
    want = [p for p in (src.merged.get(Kind.PHASES) or {}).get("phases") or [] if isinstance(p, Mapping)]
    if Kind.PHASES not in src.merged:
        return
    have = [p for p in (dst.merged.get(Kind.PHASES) or {}).get("phases") or [] if isinstance(p, Mapping)]
    by_name = {str(p["name"]): p for p in want}
    same = {str(p["name"]): _phase_key(p) for p in have} == {n: _phase_key(p) for n, p in by_name.items()}
    if same and Kind.PHASES in dst.merged:
        return
    f = _own(changes, dst, Kind.PHASES)
    if f.data is None or not isinstance(f.data.get("phases"), list):
        names = ", ".join(by_name) or "none"
        items = [_plain_phase(p) for p in want]
        changes.add(f.path, Edit("set", ("phases",), items, f"phases = {names}"))
        return
    own = list(f.data["phases"])
    for index, phase in enumerate(own):
        name = str(phase.get("name"))
        if name in by_name and _phase_key(phase) != _phase_key(by_name[name]):
            for key, value in _plain_phase(by_name[name]).items():
                if key != "name" and _differs(phase.get(key), value):
                    note = f"phases.{name}.{key} = {_shown(value)}"
                    changes.add(f.path, Edit("set", ("phases", index, key), value, note))
            if "merge_state" in phase and by_name[name].get("merge_state") is None:
                changes.add(f.path, Edit("unset", ("phases", index, "merge_state"), None,
                                         f"phases.{name}.merge_state removed"))
    for index in reversed(range(len(own))):
        name = str(own[index].get("name"))
        if name not in by_name:
            changes.add(f.path, Edit("remove_item", ("phases", index), None, f"phases - {name}"))
    present = {str(p.get("name")) for p in own}
    for name, phase in by_name.items():
        if name not in present:
            changes.add(f.path, Edit("append_item", ("phases",), _plain_phase(phase),
                                     f"phases + {name} (term {phase['term']})"))


def _shown(value: Any) -> str:
    return f"[{', '.join(map(str, value))}]" if isinstance(value, tuple) else str(value)


def _differs(have: Any, want: Any) -> bool:
    if isinstance(want, date):
        try:
            return as_date(have) != want
        except UsageError:
            return True
    if isinstance(want, tuple):
        return sorted(map(str, have or [])) != sorted(map(str, want))
    return str(have) != str(want)


def _promote_terms(changes: Changes, src: Side, dst: Side) -> None:
    """Terms SRC's scopes and phases name that DST's Terms lack join DST's Terms."""
    src_terms = {str(t["code"]): t for t in (src.merged.get(Kind.TERMS) or {}).get("terms") or []}
    dst_codes = {str(t["code"]) for t in (dst.merged.get(Kind.TERMS) or {}).get("terms") or []}
    needed = [c for codes in scopes(src.merged.get(Kind.MERGE_SETTINGS) or {}).values() for c in codes]
    needed += [str(p["term"]) for p in (src.merged.get(Kind.PHASES) or {}).get("phases") or []]
    missing = [c for c in dict.fromkeys(needed) if c not in dst_codes and c in src_terms]
    if not missing:
        return
    target = dst.terms_source or _own(changes, dst, Kind.TERMS)
    if target.data is None:
        changes.create[target.path] = Kind.TERMS
        existing = [dict(t) for t in (dst.merged.get(Kind.TERMS) or {}).get("terms") or []]
        items = [_plain_term(t) for t in existing] + [_plain_term(src_terms[c]) for c in missing]
        changes.add(target.path, Edit("set", ("terms",), items, f"terms = {', '.join(str(t['code']) for t in items)}"))
        return
    for code in missing:
        changes.add(target.path, Edit("append_item", ("terms",), _plain_term(src_terms[code]), f"terms + {code}"))


def _plain_term(term: Mapping[str, Any]) -> dict[str, Any]:
    return {"code": Code(str(term["code"])), "name": str(term["name"]),
            "start": as_date(term["start"]), "end": as_date(term["end"])}
