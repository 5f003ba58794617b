"""Policy rules of DESIGN §2, run after the schemas. Pure: each rule returns problems.

Rules never raise on the first finding (octoDNS's ValidationReason): `check` runs every
rule over every environment and returns one list. Rules read only documents that passed
their schema, so they may trust shapes and formats.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

# The secret heuristics live in core.secrets (run at load time); their old names stay importable from here.
from reconciler.core.secrets import CREDENTIAL as _SECRET_VALUE  # noqa: F401
from reconciler.core.secrets import SECRET_KEY as _SECRET_KEY  # noqa: F401
from reconciler.core.secrets import may_hold_a_secret as _may_hold_a_secret  # noqa: F401
from reconciler.core.secrets import secret_problems  # noqa: F401
from reconciler.core.window_rules import window_always, window_flood, window_order, window_overlap, window_start
from reconciler.model import (
    MERGE_TYPES,
    REFERENCE_DATA_TYPES,
    V2_ON_CONFLICT,
    Document,
    EnvironmentSpec,
    Kind,
    Problem,
    Severity,
)

Rule = Callable[[EnvironmentSpec, Mapping[str, EnvironmentSpec], datetime], Iterator[Problem]]

ADMIN_LIMIT = 2
DEFAULT_SOURCE = "production"  # a db-refresh request's source when it names none (updates schema)


def check(spec: EnvironmentSpec, specs: Mapping[str, EnvironmentSpec], at: datetime) -> list[Problem]:
    """Every problem of one environment (others are given for cross-environment rules), sorted."""
    found: set[Problem] = set()
    for rule in RULES:
        found.update(rule(spec, specs, at))
    return sorted(found)


def references(spec: EnvironmentSpec, specs: Mapping[str, EnvironmentSpec] | None = None) -> set[str]:
    """The other environments whose YAML this environment's rules read (a cross-environment rule
    must name what it reads here: the warm policy cache keys on those environments' bytes too).
    Given `specs`, the whole `promotes_from` chain, which the cycle check reads."""
    named: set[Any] = {spec.config.get("promotes_from")}
    requests = (spec.data(Kind.UPDATES) or {}).get("requests") or []
    for r in requests if isinstance(requests, list) else []:
        if isinstance(r, Mapping):
            named.update((r.get("site"), r.get("source", DEFAULT_SOURCE if r.get("action") == "db-refresh" else None)))
    hosting = spec.config.get("hosting")
    linked = hosting.get("linked") if isinstance(hosting, Mapping) else None
    named.update(linked if isinstance(linked, list) else [])
    if specs is not None:
        named.update(_promotion_chain(spec, specs))
    return {str(n) for n in named if n and n != spec.name}


def _error(doc: Document, path: tuple[str | int, ...], rule: str, message: str) -> Problem:
    return Problem.at(doc.mark_of(path), Severity.ERROR, rule, message)


def _warning(doc: Document, path: tuple[str | int, ...], rule: str, message: str) -> Problem:
    return Problem.at(doc.mark_of(path), Severity.WARNING, rule, message)


def name_mismatch(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    doc = spec.docs[Kind.ENVIRONMENT]
    name = doc.data.get("name")
    if name != spec.name:
        yield _error(doc, ("name",), "name-mismatch", f"name {name!r} differs from its folder {spec.name!r}")


def term_codes(spec: EnvironmentSpec) -> dict[str, Mapping[str, Any]]:
    data = spec.data(Kind.TERMS) or {}
    return {t["code"]: t for t in data.get("terms", [])}


def scoped_terms(spec: EnvironmentSpec) -> Iterator[tuple[str, int, str]]:
    """(merge type, index, term code) for every term in a merge scope."""
    merges = (spec.data(Kind.MERGE_SETTINGS) or {}).get("merges", {})
    for mtype in MERGE_TYPES:
        for index, code in enumerate(merges.get(mtype, {}).get("terms", [])):
            yield mtype, index, code


def _phases(spec: EnvironmentSpec) -> list[Mapping[str, Any]]:
    return list((spec.data(Kind.PHASES) or {}).get("phases", []))


def unknown_term(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    if Kind.TERMS in spec.broken:
        return
    known = term_codes(spec)
    where = "Terms" if spec.data(Kind.TERMS) is not None else "Terms (not declared)"
    if Kind.MERGE_SETTINGS in spec.docs:
        doc = spec.docs[Kind.MERGE_SETTINGS]
        for mtype, index, code in scoped_terms(spec):
            if code not in known:
                path = ("merges", mtype, "terms", index)
                yield _error(doc, path, "unknown-term", f"term {code!r} of {mtype} is not listed in {where}")
    for index, phase in enumerate(_phases(spec)):
        if phase["term"] not in known:
            doc = spec.docs[Kind.PHASES]
            message = f"phase {phase['name']!r} names term {phase['term']!r}, not listed in {where}"
            yield _error(doc, ("phases", index, "term"), "unknown-term", message)


def _today(spec: EnvironmentSpec, at: datetime) -> date:
    from zoneinfo import ZoneInfo

    try:
        return at.astimezone(ZoneInfo(spec.timezone)).date()
    except (ValueError, KeyError):
        return at.date()


def term_ended(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], at: datetime) -> Iterator[Problem]:
    known = term_codes(spec)
    today = _today(spec, at)
    for mtype, index, code in scoped_terms(spec):
        term = known.get(code)
        if term and date.fromisoformat(term["end"]) < today:
            doc = spec.docs[Kind.MERGE_SETTINGS]
            message = (
                f"term {code!r} ended on {term['end']} but is still in the {mtype} scope "
                "(fix: reconciler term expire)"
            )
            yield _warning(doc, ("merges", mtype, "terms", index), "term-ended", message)


def phase_overlap(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    phases = _phases(spec)
    for i, later in enumerate(phases):
        for earlier in phases[:i]:
            if earlier["term"] != later["term"]:
                continue
            if later["start"] < earlier["end"] and earlier["start"] < later["end"]:
                message = (
                    f"phase {later['name']!r} ({later['start']}..{later['end']}) overlaps "
                    f"{earlier['name']!r} ({earlier['start']}..{earlier['end']}) of term {later['term']!r}"
                )
                yield _error(spec.docs[Kind.PHASES], ("phases", i, "start"), "phase-overlap", message)


def _admins(spec: EnvironmentSpec) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for index, user in enumerate((spec.data(Kind.ACCESS) or {}).get("users", [])):
        if "admin" in user.get("products", []):
            yield index, user


def admin_limit(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    admins = list(_admins(spec))
    for index, user in admins[ADMIN_LIMIT:]:
        message = (
            f"{user['email']} would be admin number {admins.index((index, user)) + 1}; "
            f"at most {ADMIN_LIMIT} users may hold admin"
        )
        yield _error(spec.docs[Kind.ACCESS], ("users", index, "products"), "admin-limit", message)


def admin_needs_product(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    for index, user in _admins(spec):
        if set(user["products"]) == {"admin"}:
            message = f"{user['email']} holds admin and no other product, and would be locked out"
            yield _error(spec.docs[Kind.ACCESS], ("users", index, "products"), "admin-needs-product", message)


def promotion(spec: EnvironmentSpec, specs: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    source_name = spec.config.get("promotes_from")
    if not source_name:
        return
    env_doc = spec.docs[Kind.ENVIRONMENT]
    cycle = _promotion_cycle(spec, specs)
    if cycle:  # DESIGN's table files this under unknown-site: it names no environment to promote from
        what = "this environment itself" if len(cycle) == 2 else "a cycle: " + " → ".join(cycle)
        yield _error(env_doc, ("promotes_from",), "unknown-site", f"promotes_from names {what}")
        return
    source = specs.get(source_name)
    if source is None:
        message = f"promotes_from names {source_name!r}, which is not a loadable environment"
        yield _error(env_doc, ("promotes_from",), "promotion", message)
        return
    if source.broken & {Kind.MERGE_SETTINGS, Kind.PHASES}:
        return
    upstream = {(mtype, code) for mtype, _, code in scoped_terms(source)}
    for mtype, index, code in scoped_terms(spec):
        if (mtype, code) not in upstream:
            message = f"term {code!r} is in the {mtype} scope here but not yet in {source_name}"
            yield _error(spec.docs[Kind.MERGE_SETTINGS], ("merges", mtype, "terms", index), "promotion", message)
    upstream_phases = {(p["name"], p["term"]) for p in _phases(source)}
    for index, phase in enumerate(_phases(spec)):
        if (phase["name"], phase["term"]) not in upstream_phases:
            message = f"phase {phase['name']!r} of term {phase['term']!r} is not yet in {source_name}"
            yield _error(spec.docs[Kind.PHASES], ("phases", index, "name"), "promotion", message)


def _promotion_chain(spec: EnvironmentSpec, specs: Mapping[str, EnvironmentSpec]) -> list[str]:
    """This environment, then the one it promotes from, and so on, until a repeat or an end."""
    chain = [spec.name]
    source = spec.config.get("promotes_from")
    while isinstance(source, str) and source not in chain:
        chain.append(source)
        upstream = specs.get(source)
        source = upstream.config.get("promotes_from") if upstream is not None else None
    return [*chain, source] if isinstance(source, str) else chain


def _promotion_cycle(spec: EnvironmentSpec, specs: Mapping[str, EnvironmentSpec]) -> list[str]:
    """The chain back to this environment, when promotes_from leads back to it (else empty)."""
    chain = _promotion_chain(spec, specs)
    return chain if len(chain) > 1 and chain[-1] == spec.name else []


def unknown_site(spec: EnvironmentSpec, specs: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    """An update request's site or source, or a hosting.linked entry, that names no environment."""
    doc = spec.docs.get(Kind.UPDATES)
    for index, request in enumerate(doc.data.get("requests", []) if doc else []):
        assert doc is not None
        for key in ("site", "source"):
            name = request.get(key)
            if name is not None and name not in specs:
                message = f"request {request['id']!r}: {key} {_nowhere(name, specs)}"
                yield _error(doc, ("requests", index, key), "unknown-site", message)
        if request.get("action") == "db-refresh" and "source" not in request and DEFAULT_SOURCE not in specs:
            message = f"request {request['id']!r} refreshes from {DEFAULT_SOURCE} (the default source), " \
                      "which is no environment here; give its source"
            yield _error(doc, ("requests", index, "action"), "unknown-site", message)
    linked = (spec.config.get("hosting") or {}).get("linked") or []
    for index, name in enumerate(linked):
        if name not in specs:
            path = ("hosting", "linked", index)
            yield _error(spec.docs[Kind.ENVIRONMENT], path, "unknown-site", f"hosting.linked {_nowhere(name, specs)}")


def _nowhere(name: str, specs: Mapping[str, EnvironmentSpec]) -> str:
    close = difflib.get_close_matches(name, list(specs), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"names {name!r}, which is no loadable environment{hint}"


_IDS = (
    (Kind.TERMS, "terms", "code", "term code"),
    (Kind.PHASES, "phases", "name", "phase name"),
    (Kind.MAINTENANCE, "windows", "id", "window id"),
    (Kind.ACCESS, "users", "email", "user email"),
    (Kind.UPDATES, "requests", "id", "request id"),
)
"""What must be unique in each list: the live state keys each entry by it, so a second one with the
same key would silently replace the first (an e-mail address is compared without case)."""


def duplicate_id(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    for kind, key, field, label in _IDS:
        doc = spec.docs.get(kind)
        first: dict[str, int] = {}
        for index, entry in enumerate(doc.data.get(key) or [] if doc else []):
            assert doc is not None
            value = str(entry[field])
            seen = first.setdefault(value.casefold() if field == "email" else value, index)
            if seen == index:
                continue
            earlier = doc.data[key][seen][field]
            written = f" as {earlier!r}" if earlier != value else ""
            line = doc.mark_of((key, seen, field)).line
            message = f"{label} {value!r} is given twice (first on line {line}{written}); the plan would keep only one"
            yield _error(doc, (key, index, field), "duplicate-id", message)


def date_order(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    """A phase or term ending before it starts, or on the day it starts (a phase's end day is not part of it,
    so such a phase would never be in force and would vanish from schedule)."""
    for kind, key, name in ((Kind.PHASES, "phases", "name"), (Kind.TERMS, "terms", "code")):
        doc = spec.docs.get(kind)
        for index, entry in enumerate(doc.data.get(key) or [] if doc else []):
            assert doc is not None
            start, end = str(entry["start"]), str(entry["end"])
            if end > start:
                continue
            what = f"{key[:-1]} {entry[name]!r}"
            when = f"on the day it starts ({start})" if end == start else f"({end}) before it starts ({start})"
            yield _error(doc, (key, index, "end"), "date-order", f"{what} ends {when}")


def cloud_version(spec: EnvironmentSpec, specs: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    hosting = spec.config.get("hosting") or {}
    if hosting.get("plan") == "cloud" and "version" in hosting:
        message = "a cloud plan is updated by the provider every week; hosting.version is not allowed"
        yield _error(spec.docs[Kind.ENVIRONMENT], ("hosting", "version"), "cloud-version", message)
    doc = spec.docs.get(Kind.UPDATES)
    for index, request in enumerate(doc.data.get("requests", []) if doc else []):
        site = specs.get(request.get("site", spec.name))
        plan = ((site.config.get("hosting") or {}) if site else {}).get("plan")
        if request.get("action") == "update" and plan == "cloud":
            message = f"{request['site']} is on a cloud plan: only db-refresh may be requested"
            yield _error(doc, ("requests", index, "action"), "cloud-version", message)  # type: ignore[arg-type]


def unknown_state(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    """A phase's merge_state must name one of the MergeSettings' saved_states."""
    if Kind.MERGE_SETTINGS in spec.broken or Kind.PHASES not in spec.docs:
        return
    states = (spec.data(Kind.MERGE_SETTINGS) or {}).get("saved_states") or {}
    known = ", ".join(sorted(states)) or "none"
    for index, phase in enumerate(_phases(spec)):
        name = phase.get("merge_state")
        if name is not None and name not in states:
            message = f"phase {phase['name']!r} uses merge_state {name!r}, not in saved_states (have: {known})"
            yield _error(spec.docs[Kind.PHASES], ("phases", index, "merge_state"), "unknown-state", message)


def reference_data_off(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    """The platform recommends the merge types that are not term-specific on all year."""
    doc = spec.docs.get(Kind.MERGE_SETTINGS)
    data = (doc.data.get("reference_data") or {}) if doc else {}
    for kind in REFERENCE_DATA_TYPES:
        if doc is not None and data.get(kind) is False:
            message = f"the {kind} merge is off; the platform recommends merging reference data all year"
            yield _warning(doc, ("reference_data", kind), "reference-data-off", message)


def deprecated_key(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    """Contract v2's on_conflict still works; say how to write it now."""
    doc = spec.docs.get(Kind.MERGE_SETTINGS)
    merges = (doc.data.get("merges") or {}) if doc else {}
    for kind in MERGE_TYPES:
        value = str((merges.get(kind) or {}).get("on_conflict"))
        if doc is not None and value in V2_ON_CONFLICT:
            message = (f"on_conflict: {value} is contract v2's spelling; write "
                       f"source_of_truth: {{default: {V2_ON_CONFLICT[value]}}} (the same setting)")
            yield _warning(doc, ("merges", kind, "on_conflict"), "deprecated-key", message)


RULES: tuple[Rule, ...] = (
    name_mismatch,
    duplicate_id,
    unknown_term,
    term_ended,
    date_order,
    phase_overlap,
    window_order,
    window_flood,
    window_always,
    window_start,
    window_overlap,
    admin_limit,
    admin_needs_product,
    promotion,
    unknown_site,
    cloud_version,
    unknown_state,
    reference_data_off,
    deprecated_key,
)
