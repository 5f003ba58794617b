"""Values shared by the core and the edges: vocabularies, marks, loaded documents, problems."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

API_VERSION = "reconciler/v1"
ENV_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
BASE_FOLDER = "_base"

Path_ = tuple[str | int, ...]
"""A path into a document: mapping keys and list indexes, e.g. ('merges', 'sections', 'terms', 0)."""


class Kind(str, Enum):
    ENVIRONMENT = "Environment"
    MERGE_SETTINGS = "MergeSettings"
    TERMS = "Terms"
    PHASES = "Phases"
    MAINTENANCE = "MaintenanceWindows"
    ACCESS = "Access"
    UPDATES = "UpdateRequests"

    @property
    def filename(self) -> str:
        return KIND_FILES[self]

    @property
    def schema_name(self) -> str:
        return self.filename.replace(".yaml", ".schema.json")


KIND_FILES: dict[Kind, str] = {
    Kind.ENVIRONMENT: "environment.yaml",
    Kind.MERGE_SETTINGS: "merge-settings.yaml",
    Kind.TERMS: "terms.yaml",
    Kind.PHASES: "phases.yaml",
    Kind.MAINTENANCE: "maintenance.yaml",
    Kind.ACCESS: "access.yaml",
    Kind.UPDATES: "updates.yaml",
}
FILE_KINDS: dict[str, Kind] = {name: kind for kind, name in KIND_FILES.items()}

MERGE_TYPES = ("courses", "sections", "relationships")
SCHEDULES = ("nightly", "realtime")
SECTION_OPTIONS = ("post_fields", "on_delete", "on_conflict", "allow_empty")
"""The options of the sections merge type that live holds (merges.sections.<option>)."""
PHASE_FIELDS = ("term", "start", "end", "editable", "editors", "merge_state")
"""What live holds of a phase (phases.<name>.<field>), the name being its key (merge_state only when set)."""
TYPE_OPTIONS: Mapping[str, tuple[str, ...]] = {
    "courses": ("send_updates", "only_selected_terms", "source_of_truth"),
    "sections": ("send_updates", *SECTION_OPTIONS, "source_of_truth"),
    "relationships": ("send_updates", "source_of_truth"),
}
"""Per merge type, the options the YAML may give besides its terms (merges.<type>.<option>)."""
STATE_OPTIONS: Mapping[str, tuple[str, ...]] = {
    kind: tuple(o for o in options if o != "on_conflict") for kind, options in TYPE_OPTIONS.items()
}
"""Per merge type, the options a saved state may overlay (never its terms, never the v2 spelling)."""
REFERENCE_DATA_TYPES = ("terms", "buildings", "rooms", "departments", "professors")
"""The merge types that are not term-specific (reference_data.<type>): the platform recommends them on all year."""
SOURCES_OF_TRUTH = ("institution", "platform", "shared")
"""Who owns a field both sides changed: Always Institution (the SIS), Always the platform, or shared ownership."""
V2_ON_CONFLICT: Mapping[str, str] = {"sis": "institution", "platform": "platform"}
"""Contract v2's `on_conflict` → the source_of_truth.default it means."""
DEFAULT_SOURCE_OF_TRUTH = "institution"
"""Sections' source of truth when the YAML gives none (the platform's documented behaviour, v2's `sis`)."""


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Mark:
    """Where a value stands: a file path relative to the root, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class Problem:
    """One finding of `validate`: printed as FILE:LINE:COL: SEVERITY[RULE]: message."""

    file: str
    line: int
    column: int
    severity: Severity
    rule: str
    message: str

    @classmethod
    def at(cls, mark: Mark, severity: Severity, rule: str, message: str) -> Problem:
        return cls(mark.file, mark.line, mark.column, severity, rule, message)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity.value}[{self.rule}]: {self.message}"

    def github(self, prefix: str = "") -> str:
        """As a GitHub Actions workflow command, `::error file=…,line=…,col=…,title=RULE::message` (`::warning`
        for a warning), which GitHub shows inline on the pull request's file. `prefix` is the root's path
        below the repository's top (`settings/`), since GitHub places a file by its path in the repository."""
        level = "error" if self.severity is Severity.ERROR else "warning"
        properties = {"file": prefix + self.file, "line": str(self.line), "col": str(self.column), "title": self.rule}
        shown = ",".join(f"{key}={_github_property(value)}" for key, value in properties.items())
        return f"::{level} {shown}::{_github_data(self.message)}"

    @property
    def data(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity.value,
            "rule": self.rule,
            "message": self.message,
        }


def _github_data(text: str) -> str:
    """GitHub's escaping of a workflow command's message (actions/toolkit `escapeData`): a newline cannot
    end the command early, nor start another one."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    """GitHub's escaping of a property value (`escapeProperty`): the message's, and `:` and `,`, which end
    the value."""
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass(frozen=True)
class Document:
    """One kind's data for one environment (after `_base/` merge), with the origin of every value.

    `marks` maps a path to where its value stands; `key_marks` maps a mapping entry's path to
    where its key stands (unknown-key errors point at the key). Paths absent from the marks
    fall back to their nearest marked ancestor (see `mark_of`).
    """

    kind: Kind
    file: str
    data: Mapping[str, Any]
    marks: Mapping[Path_, Mark] = field(default_factory=dict)
    key_marks: Mapping[Path_, Mark] = field(default_factory=dict)

    def mark_of(self, path: Path_, key: bool = False) -> Mark:
        table = self.key_marks if key else self.marks
        probe = tuple(path)
        while probe:
            found = table.get(probe) or self.marks.get(probe)
            if found:
                return found
            probe = probe[:-1]
        return self.marks.get((), Mark(self.file, 1, 1))


@dataclass(frozen=True)
class EnvironmentSpec:
    """One environment as declared: its documents by kind, each merged over `_base/`."""

    name: str
    docs: Mapping[Kind, Document]
    broken: frozenset[Kind] = frozenset()
    """Kinds declared but unreadable (their problems are reported); rules skip what they touch."""

    def data(self, kind: Kind) -> Mapping[str, Any] | None:
        doc = self.docs.get(kind)
        return doc.data if doc else None

    @property
    def config(self) -> Mapping[str, Any]:
        return self.docs[Kind.ENVIRONMENT].data

    @property
    def timezone(self) -> str:
        return str(self.config.get("timezone", "UTC"))

    @property
    def managed(self) -> frozenset[Kind]:
        return frozenset(self.docs)
