"""Timeline test data shared by the timeline and calendar tests: the example's two windows and a spec maker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from reconciler.model import Document, EnvironmentSpec, Kind

CHICAGO = ZoneInfo("America/Chicago")
BOTH = {"nightly": True, "realtime": True}

WEEKLY = {
    "id": "weekly-hosted-updates",
    "reason": "hosting provider weekly update",
    "every": "FREQ=WEEKLY;BYDAY=SU",
    "start": "04:00",
    "duration": "5h",
    "timezone": "America/Chicago",
}
UPGRADE = {
    "id": "banner-upgrade-2026-12",
    "reason": "Banner 9.4 upgrade",
    "ticket": "SUP-1234",
    "start": "2026-12-05T22:00",
    "end": "2026-12-06T06:00",
    "pause": ["nightly", "realtime"],
}
PHASES = [
    {"name": "open-scheduling", "term": "202720", "start": "2026-10-01", "end": "2026-11-13",
     "editable": ["*"], "editors": ["scheduler", "department-chair", "registrar"]},
    {"name": "final-review", "term": "202720", "start": "2026-11-13", "end": "2027-01-11",
     "editable": ["enrollment_cap", "notes"], "editors": ["registrar"]},
]  # fmt: skip
TERMS = [
    {"code": "202710", "name": "Fall 2026", "start": "2026-08-24", "end": "2026-12-18"},
    {"code": "202720", "name": "Spring 2027", "start": "2027-01-11", "end": "2027-05-07"},
]


def make_spec(
    windows: list[dict[str, Any]] | None = None,
    *,
    phases: list[dict[str, Any]] | None = None,
    terms: list[dict[str, Any]] | None = None,
    schedule: Mapping[str, bool] | None = BOTH,
    timezone: str = "America/Chicago",
    name: str = "production",
) -> EnvironmentSpec:
    folder = f"environments/{name}"
    docs = {Kind.ENVIRONMENT: Document(Kind.ENVIRONMENT, f"{folder}/environment.yaml",
                                       {"name": name, "timezone": timezone})}  # fmt: skip
    parts: list[tuple[Kind, str, Any]] = [
        (Kind.MAINTENANCE, "windows", windows),
        (Kind.PHASES, "phases", phases),
        (Kind.TERMS, "terms", terms),
        (Kind.MERGE_SETTINGS, "schedule", schedule),
    ]
    for kind, key, value in parts:
        if value is not None:
            docs[kind] = Document(kind, f"{folder}/{kind.filename}", {key: value})
    return EnvironmentSpec(name, docs)
