"""Files as bytes → strict YAML → `_base/` merge → JSON Schema → `Document`.

Pure: the edge (`reconciler.repo`) reads the files and the cache; this module only turns
bytes into documents and problems. Every value keeps its mark through the merge, so a
schema error in a value inherited from `_base/` points into `_base/`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

from reconciler.core.secrets import REDACTED, free_key_paths, names_a_secret
from reconciler.core.yamlstrict import DialectError, Parsed, parse
from reconciler.model import API_VERSION, Document, Kind, Mark, Path_, Problem, Severity

EDITOR_PATTERN = "x-editor-pattern"
"""A schema's own `pattern`, kept beside the Python translation the validators run (they ignore unknown
keywords), so a message shows the pattern as the schema file writes it."""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_LOCAL_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2})?\Z")
_TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):[0-5]\d\Z")
_DURATION = re.compile(r"(?=\d)(\d+d)?(\d+h)?(\d+m)?\Z")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_URI = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/?#]+[^\s]*\Z")


def _is_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_local_datetime(value: str) -> bool:
    if not _LOCAL_DATETIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_datetime_with_offset(value: str) -> bool:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


def _is_rrule(value: str) -> bool:
    from dateutil.rrule import rrulestr

    if not value or "\n" in value or value.upper().startswith(("RRULE:", "DTSTART")):
        return False
    # dateutil wants a UTC UNTIL with an aware DTSTART and a floating one otherwise; RFC 5545
    # allows both, so a rule is valid when either reading accepts it.
    for start in (datetime(2026, 1, 1), datetime(2026, 1, 1, tzinfo=UTC)):
        try:
            rrulestr(value, dtstart=start)
        except (ValueError, TypeError):
            continue
        return True
    return False


def _is_timezone(value: str) -> bool:
    from zoneinfo import ZoneInfo

    if not value or value.startswith(("/", ".")) or ".." in value:
        return False
    try:
        ZoneInfo(value)
    except (ValueError, KeyError, OSError):
        return False
    return True


FORMATS: dict[str, Callable[[str], bool]] = {
    "date": _is_date,
    "local-datetime": _is_local_datetime,
    "time-of-day": lambda v: bool(_TIME_OF_DAY.match(v)),
    "duration": lambda v: bool(_DURATION.match(v)),
    "rrule": _is_rrule,
    "timezone": _is_timezone,
    "email": lambda v: bool(_EMAIL.match(v)),
    "date-time": _is_datetime_with_offset,
    "uri": lambda v: bool(_URI.match(v)),
}


class SchemaSet:
    """The kinds' JSON Schemas, with a validator per kind built once and a hash for caches."""

    def __init__(self, schemas: Mapping[str, Mapping[str, Any]]) -> None:
        self.schemas = dict(schemas)
        canonical = json.dumps(self.schemas, sort_keys=True).encode()
        self.digest = hashlib.sha256(canonical).hexdigest()

    @cached_property
    def _checker(self) -> Any:
        from jsonschema import FormatChecker

        checker = FormatChecker(formats=())
        for name, check in FORMATS.items():
            checker.checks(name)(_string_only(check))
        return checker

    @cached_property
    def _validators(self) -> dict[str, Any]:
        from jsonschema import Draft202012Validator

        return {
            name: Draft202012Validator(schema, format_checker=self._checker)
            for name, schema in self.schemas.items()
        }

    @cached_property
    def _fast(self) -> dict[str, Callable[[Any], Any]]:
        import fastjsonschema

        formats = {name: _string_only(check) for name, check in FORMATS.items()}
        return {
            name: fastjsonschema.compile(dict(schema), formats=formats, use_default=False)
            for name, schema in self.schemas.items()
        }

    @cached_property
    def free_keys(self) -> dict[str, frozenset[Path_]]:
        """Per schema, where the user names the keys (roles, permissions): no key there is a secret's name."""
        return {name: free_key_paths(schema) for name, schema in self.schemas.items()}

    def warm_up(self) -> None:
        """Compile the fast validators now (before forking workers that would each compile them)."""
        self._fast  # noqa: B018

    def problems(self, doc: Document) -> list[Problem]:
        """Every schema error of a document; the compiled validator answers the common case."""
        name = doc.kind.schema_name
        if self._is_valid_fast(name, doc.data):
            return []
        free = self.free_keys[name]
        return [_problem(doc, err, free) for err in self._validators[name].iter_errors(doc.data)]

    def _is_valid_fast(self, name: str, data: Any) -> bool:
        import fastjsonschema

        try:
            self._fast[name](data)
        except fastjsonschema.JsonSchemaException:
            return False
        return True


def _string_only(check: Callable[[str], bool]) -> Callable[[Any], bool]:
    return lambda value: not isinstance(value, str) or check(value)


def dotted(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _problem(doc: Document, err: Any, free: frozenset[Path_] = frozenset()) -> Problem:
    path: Path_ = tuple(err.absolute_path)
    secret = names_a_secret(path, free)
    where = dotted(path)
    if err.validator == "additionalProperties":
        extra = _extra_keys(err)
        mark = doc.mark_of((*path, extra[0]), key=True) if extra else doc.mark_of(path)
        allowed = sorted(err.schema.get("properties", {}))
        hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        names = ", ".join(repr(k) for k in extra)
        return Problem.at(mark, Severity.ERROR, "schema", f"{where}: unknown key {names}{hint}")
    if err.validator == "type" and isinstance(err.instance, str) and err.validator_value == "boolean":
        message = f"{where}: {_shown(err.instance, secret)} is not a boolean; write true or false"
        return Problem.at(doc.mark_of(path), Severity.ERROR, "schema", message)
    if err.validator == "not" and "description" in err.schema:
        return Problem.at(doc.mark_of(path), Severity.ERROR, "schema", f"{where}: {err.schema['description']}")
    if err.validator == "format":
        message = f"{where}: {_shown(err.instance, secret)} is not a valid {err.validator_value}"
        return Problem.at(doc.mark_of(path), Severity.ERROR, "schema", message)
    if err.validator == "pattern" and isinstance(err.schema.get(EDITOR_PATTERN), str):
        message = f"{_shown(err.instance, secret)} does not match {err.schema[EDITOR_PATTERN]!r}"
    else:
        message = err.message.replace(repr(err.instance), _shown(err.instance, secret), 1)
    return Problem.at(doc.mark_of(path), Severity.ERROR, "schema", f"{where}: {message}")


def _shown(value: Any, secret: bool) -> str:
    """A value as a message shows it: never the value of a key named like a secret (`token_env` holds a
    variable's name, unless a token was pasted there), nor the insides of a mapping or list (the
    credential shapes anywhere else are redacted by the loader, `secrets.redacted`)."""
    if secret:
        return repr(REDACTED)
    if isinstance(value, (dict, list)) and value:
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def _extra_keys(err: Any) -> list[str]:
    props = err.schema.get("properties", {})
    patterns = [re.compile(p) for p in err.schema.get("patternProperties", {})]
    instance = err.instance if isinstance(err.instance, dict) else {}
    return [k for k in instance if k not in props and not any(p.search(k) for p in patterns)]


def parse_file(raw: bytes, file: str) -> Parsed | Problem:
    """Strict-parse one file and check that it is a mapping of the right apiVersion."""
    try:
        parsed = parse(raw, file)
    except DialectError as exc:
        return Problem.at(exc.mark, Severity.ERROR, "yaml", exc.message)
    if not isinstance(parsed.data, dict):
        shape = "a list" if isinstance(parsed.data, list) else "a single value"
        return Problem(file, 1, 1, Severity.ERROR, "yaml", f"the document is {shape}; expected a mapping")
    return parsed


def check_header(parsed: Parsed, file: str, expected: Kind) -> Problem | None:
    """apiVersion and kind come first; a wrong one makes the rest meaningless."""
    data = parsed.data
    mark = parsed.marks.get(("apiVersion",), Mark(file, 1, 1))
    if data.get("apiVersion") != API_VERSION:
        got = data.get("apiVersion")
        text = "apiVersion is missing" if got is None else f"apiVersion {got!r} is not supported"
        return Problem.at(mark, Severity.ERROR, "schema", f"{text}; expected {API_VERSION!r}")
    kind = data.get("kind")
    if kind != expected.value:
        where = parsed.marks.get(("kind",), Mark(file, 1, 1))
        known = ", ".join(k.value for k in Kind)
        if kind not in {k.value for k in Kind}:
            return Problem.at(where, Severity.ERROR, "schema", f"unknown kind {kind!r}; known: {known}")
        message = f"kind {kind!r} does not belong in {expected.filename} (expected {expected.value!r})"
        return Problem.at(where, Severity.ERROR, "schema", message)
    return None


def merge(base: Parsed | None, over: Parsed) -> Parsed:
    """Deep-merge `over` onto `base`: mappings key by key, anything else replaced whole."""
    if base is None:
        return over
    marks: dict[Path_, Mark] = {}
    key_marks: dict[Path_, Mark] = {}
    data = _merge_node(base, over, (), marks, key_marks)
    return Parsed(data, marks, key_marks)


def _merge_node(
    base: Parsed, over: Parsed, path: Path_, marks: dict[Path_, Mark], key_marks: dict[Path_, Mark]
) -> Any:
    b, o = _at(base.data, path), _at(over.data, path)
    if not (isinstance(b, dict) and isinstance(o, dict)):
        _copy_marks(over, path, marks, key_marks)
        return o
    marks[path] = over.marks.get(path) or base.marks[path]
    merged: dict[str, Any] = {}
    for key in [*b, *(k for k in o if k not in b)]:
        child = (*path, key)
        if key not in o:
            merged[key] = b[key]
            _copy_marks(base, child, marks, key_marks)
        elif key not in b:
            merged[key] = o[key]
            _copy_marks(over, child, marks, key_marks)
        else:
            merged[key] = _merge_node(base, over, child, marks, key_marks)
            key_marks[child] = over.key_marks[child]
    return merged


def _at(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def _copy_marks(
    src: Parsed, path: Path_, marks: dict[Path_, Mark], key_marks: dict[Path_, Mark]
) -> None:
    n = len(path)
    for table, out in ((src.marks, marks), (src.key_marks, key_marks)):
        for p, m in table.items():
            if p[:n] == path:
                out[p] = m


def to_json(doc: Document) -> dict[str, Any]:
    """A plain-data form of a document for the warm cache (never pickle)."""
    files = sorted({m.file for m in doc.marks.values()} | {m.file for m in doc.key_marks.values()})
    index = {f: i for i, f in enumerate(files)}
    return {
        "kind": doc.kind.value,
        "file": doc.file,
        "data": doc.data,
        "files": files,
        # Nested JSON text: a warm run decodes the marks only when a problem needs a position.
        "marks": json.dumps([[list(p), index[m.file], m.line, m.column] for p, m in doc.marks.items()]),
        "keys": json.dumps([[list(p), index[m.file], m.line, m.column] for p, m in doc.key_marks.items()]),
    }


class _LazyMarks(Mapping[Path_, Mark]):
    """Mark rows from the cache, turned into a table only when a problem needs a position."""

    def __init__(self, files: list[str], rows: str) -> None:
        self._files = files
        self._rows = rows

    @cached_property
    def _table(self) -> dict[Path_, Mark]:
        files = self._files
        return {tuple(p): Mark(files[f], line, col) for p, f, line, col in json.loads(self._rows)}

    def __getitem__(self, key: Path_) -> Mark:
        return self._table[key]

    def __iter__(self) -> Any:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


def from_json(entry: Mapping[str, Any]) -> Document:
    files = entry["files"]
    return Document(
        Kind(entry["kind"]), entry["file"], entry["data"],
        _LazyMarks(files, entry["marks"]), _LazyMarks(files, entry["keys"]),
    )
