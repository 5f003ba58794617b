"""Policy rules of DESIGN §2, run after the schemas. Pure: each rule returns problems.

Rules never raise on the first finding (octoDNS's ValidationReason): `check` runs every
rule over every environment and returns one list. Rules read only documents that passed
their schema, so they may trust shapes and formats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any

from reconciler.errors import ReconcilerError
from reconciler.model import MERGE_TYPES, Document, EnvironmentSpec, Kind, Problem, Severity

Rule = Callable[[EnvironmentSpec, Mapping[str, EnvironmentSpec], datetime], Iterator[Problem]]

ADMIN_LIMIT = 2
OVERLAP_HORIZON = timedelta(days=366)
_SECRET_KEY = re.compile(r"(token|passw(or)?d|secret|api[_-]?key|private[_-]?key|credential)", re.I)
_ALLOWED_KEYS = frozenset({"token_env"})
_KEY_HINTS = ("token", "passw", "secret", "apikey", "api_key", "api-key", "private", "credential")
_VALUE_HINTS = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "AKIA", "xox", "-----BEGIN", "eyJ", "sk_",
                "rk_", "Bearer", "://")
_SECRET_VALUE = re.compile(
    "|".join(
        (
            r"\b(ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}",
            r"\bAKIA[0-9A-Z]{16}\b",
            r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
            r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
            r"\b(sk|rk)_(live|test)_[A-Za-z0-9]{16,}",
            r"\bBearer\s+[A-Za-z0-9._~+/-]{20,}",
            r"://[^/\s:@]+:[^/\s@]+@",
        )
    )
)


def check(spec: EnvironmentSpec, specs: Mapping[str, EnvironmentSpec], at: datetime) -> list[Problem]:
    """Every problem of one environment (others are given for cross-environment rules), sorted."""
    found: set[Problem] = set()
    for rule in RULES:
        found.update(rule(spec, specs, at))
    return sorted(found)


def references(spec: EnvironmentSpec) -> set[str]:
    """The other environments whose YAML this environment's rules read (a cross-environment rule
    must name what it reads here: the warm policy cache keys on those environments' bytes too)."""
    named = {spec.config.get("promotes_from")}
    requests = (spec.data(Kind.UPDATES) or {}).get("requests") or []
    named.update(r.get("site") for r in requests if isinstance(r, Mapping))
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


def window_order(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], __: datetime) -> Iterator[Problem]:
    from reconciler.core.timeline import parse_duration, parse_instant

    doc = spec.docs.get(Kind.MAINTENANCE)
    if doc is None:
        return
    for index, window in enumerate(doc.data.get("windows", [])):
        tz = window.get("timezone", spec.timezone)
        if "every" in window:
            if parse_duration(window["duration"]) <= timedelta(0):
                message = f"window {window['id']!r} has a duration that is not positive"
                yield _error(doc, ("windows", index, "duration"), "window-order", message)
            yield from _recurrence_problems(doc, index, window, tz)
            continue
        start, end = (_instant(parse_instant, window[k], tz) for k in ("start", "end"))
        if start is not None and end is not None and end <= start:
            message = f"window {window['id']!r} ends ({window['end']}) before it starts ({window['start']})"
            yield _error(doc, ("windows", index, "end"), "window-order", message)


def _recurrence_problems(doc: Document, index: int, window: Mapping[str, Any], tz: str) -> Iterator[Problem]:
    """A rule the schema lets through but no start can anchor (COUNT or INTERVAL from a time of day)."""
    from reconciler.core.timeline import get_zone, window_from_data
    from reconciler.errors import ConfigError, TimeInputError

    try:
        window_from_data(window, get_zone(tz))
    except (ConfigError, TimeInputError) as e:
        yield _error(doc, ("windows", index, "every"), "schema", f"window {window['id']!r}: {e}")


def _instant(parse: Callable[[str, str], datetime], text: str, tz: str) -> datetime | None:
    from reconciler.errors import TimeInputError

    try:
        return parse(text, tz, strict=False)  # type: ignore[call-arg]
    except TimeInputError:
        return None


def window_overlap(spec: EnvironmentSpec, _: Mapping[str, EnvironmentSpec], at: datetime) -> Iterator[Problem]:
    """Two windows that overlap: one-off ones at any time, recurring ones within the next year."""
    from reconciler.core.timeline import Timeline

    doc = spec.docs.get(Kind.MAINTENANCE)
    if doc is None or len(doc.data.get("windows", [])) < 2:
        return
    try:
        timeline = Timeline.from_spec(spec)
    except ReconcilerError:  # window-order and the schema already report what cannot be read
        return
    windows = list(timeline.windows)
    for i, late in enumerate(windows):
        for early in windows[:i]:
            clash = _first_clash(timeline, early, late, at)
            if clash is not None:
                message = f"window {late.id!r} overlaps {early.id!r} on {clash.isoformat(timespec='minutes')}"
                yield _warning(doc, ("windows", i), "window-overlap", message)


def _first_clash(timeline: Any, a: Any, b: Any, at: datetime) -> datetime | None:
    """Where windows a and b first overlap: searched within a one-off's span, else a year ahead."""
    spans = [(w.start, w.end) for w in (a, b) if not w.recurring and w.start is not None]
    lo, hi = (max(s for s, _ in spans), min(e for _, e in spans)) if spans else (at, at + OVERLAP_HORIZON)
    if lo >= hi or len(spans) == 2:
        return lo if lo < hi else None
    pair = replace(timeline, windows=(a, b))
    found = sorted(pair.occurrences(lo, hi), key=lambda o: o.start)
    for first, second in pairwise(found):
        if first.window.id != second.window.id and second.start < first.end:
            return max(second.start, lo)
    return None


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


def secret_problems(doc: Document) -> list[Problem]:
    """Secrets in one document: run at load time, so the warm cache keeps the answer."""
    if not _may_hold_a_secret(json.dumps(doc.data, default=str)):
        return []
    found: list[Problem] = []
    for path, key, value in _walk(doc.data, ()):
        if key is not None and key not in _ALLOWED_KEYS and _SECRET_KEY.search(key):
            message = f"key {key!r} looks like a secret; tokens come only from the environment (token_env)"
            found.append(Problem.at(doc.mark_of(path, key=True), Severity.ERROR, "secret-in-config", message))
        elif isinstance(value, str) and _SECRET_VALUE.search(value):
            message = "this value looks like a credential; keep secrets out of YAML (use token_env)"
            found.append(_error(doc, path, "secret-in-config", message))
    return found


def _may_hold_a_secret(text: str) -> bool:
    """A quick look at every key and value at once for the literal part of each pattern: the regular
    expressions cost a hundred times more, and most documents hold nothing suspect."""
    lower = text.lower()
    return any(hint in lower for hint in _KEY_HINTS) or any(hint in text for hint in _VALUE_HINTS)


def _walk(node: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str | None, Any]]:
    """(path, key or None for list items, value) for every entry below `node`."""
    items = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        child = (*path, key)
        yield child, (str(key) if isinstance(node, Mapping) else None), value
        if isinstance(value, (Mapping, list)):
            yield from _walk(value, child)


RULES: tuple[Rule, ...] = (
    name_mismatch,
    unknown_term,
    term_ended,
    phase_overlap,
    window_order,
    window_overlap,
    admin_limit,
    admin_needs_product,
    promotion,
    cloud_version,
)
