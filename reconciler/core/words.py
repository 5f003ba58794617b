"""The registrar's words: term names with their codes, plain labels for setting paths, one time format.

Place in the flow: every renderer a person reads (plan text and Markdown, schedule, report, log) turns
codes, paths and instants into words here, so that each is said one way everywhere. JSON keeps the raw
codes and ISO instants: it is for programs. Pure: the names come in from the environment's Terms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from reconciler.model import MERGE_TYPES, EnvironmentSpec, Kind

TermNames = Mapping[str, str]
"""A term code → its name, from one environment's Terms."""

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # not %a: that follows the locale

# The console's words where the platform's help gives them ("Should merges run nightly?", Merge Settings).
_FIXED = {
    "schedule.nightly": "Nightly merges",
    "schedule.realtime": "Real-time merges",
    "send_updates": "Send updates to the SIS",
    "version": "Hosted version",
    "available_terms": "Terms rolled in the SIS",
}
_MERGE_OPTIONS = {
    "terms": "terms",
    "post_fields": "fields posted to the SIS",
    "on_delete": "when a section is deleted",
    "on_conflict": "source of truth",
    "source_of_truth": "source of truth",
    "allow_empty": "accept an empty dataset",
    "send_updates": "send updates to the SIS",
    "only_selected_terms": "only run integration for selected terms",
}
_PREFIXES = {
    "reference_data": "Reference data",
    "merge_states": "Saved state",
    "phases": "Phase",
    "access.users": "User",
    "access.roles": "Role",
    "update_requests": "Update request",
}
SEP = " · "


def term_names(spec: EnvironmentSpec) -> dict[str, str]:
    """The code → name table of one environment's Terms (empty when Terms is not declared)."""
    data = spec.data(Kind.TERMS) or {}
    terms = data.get("terms") or ()
    return {str(t["code"]): str(t.get("name") or "") for t in terms if isinstance(t, Mapping) and "code" in t}


def term_label(code: Any, names: TermNames) -> str:
    """`Fall 2027 (202810)`; the bare code when the environment does not name it."""
    name = names.get(str(code), "")
    return f"{name} ({code})" if name else str(code)


def path_label(path: str) -> str:
    """A live path in plain words: `merges.sections.terms` → `Sections merge · terms`."""
    if path in _FIXED:
        return _FIXED[path]
    parts = path.split(".")
    if parts[0] == "merges" and len(parts) >= 3 and parts[1] in MERGE_TYPES:
        option = ".".join(parts[2:])
        return f"{parts[1].capitalize()} merge{SEP}{_MERGE_OPTIONS.get(option, option)}"
    for prefix in sorted(_PREFIXES, key=len, reverse=True):
        if path.startswith(prefix + "."):
            rest = path[len(prefix) + 1:].split(".")
            return SEP.join([_PREFIXES[prefix], *rest])
    return path


def local_time(instant: datetime, tz: tzinfo | None = None) -> str:
    """`Sun 2026-11-01 04:00 -06:00`: in the environment's zone, no seconds; the offset, since 01:30 can
    come twice in a night."""
    if instant.tzinfo is None:
        raise ValueError(f"{instant.isoformat()} has no time zone")
    shown = instant.astimezone(tz) if tz is not None else instant
    offset = shown.isoformat()[-6:]
    return f"{_WEEKDAYS[shown.weekday()]} {shown:%Y-%m-%d %H:%M} {offset}"


@dataclass(frozen=True)
class Words:
    """What a renderer needs to speak of a fleet: per environment its term names and zone, and which
    environments are protected."""

    terms: Mapping[str, TermNames] = field(default_factory=dict)
    zones: Mapping[str, tzinfo] = field(default_factory=dict)
    protected: frozenset[str] = frozenset()

    @classmethod
    def of(cls, specs: Iterable[EnvironmentSpec]) -> Words:
        from reconciler.core.timeline import get_zone

        chosen = list(specs)
        return cls(terms={s.name: term_names(s) for s in chosen},
                   zones={s.name: get_zone(s.timezone) for s in chosen},
                   protected=frozenset(s.name for s in chosen if s.config.get("protected") is True))

    def names(self, env: str) -> TermNames:
        return self.terms.get(env, {})

    def time(self, env: str, instant: datetime) -> str:
        return local_time(instant, self.zones.get(env))


NO_WORDS = Words()
