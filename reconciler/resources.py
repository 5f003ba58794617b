"""EDGE: the files shipped with the package — JSON Schemas and the example repository.

One source: in a source checkout they are the project's own `schemas/`, `environments/` and
`.github/workflows/`; a built wheel carries those same folders under `reconciler/_data/`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from reconciler.core.load import EDITOR_PATTERN

_PACKAGE = Path(__file__).resolve().parent
_SOURCE = _PACKAGE.parent


def data_dir() -> Path:
    """Where the shipped folders are: `_data/` in an install, the project root in a checkout."""
    packaged = _PACKAGE / "_data"
    return packaged if (packaged / "schemas").is_dir() else _SOURCE


def schema_dir() -> Path:
    return data_dir() / "schemas"


def example_dirs() -> dict[str, Path]:
    """What `reconciler init` copies, by its place in a new repository."""
    base = data_dir()
    return {
        "environments": base / "environments",
        "schemas": base / "schemas",
        ".github/workflows": base / ".github" / "workflows",
    }


@cache
def load_schemas() -> dict[str, dict[str, Any]]:
    """Every `*.schema.json`, by file name, its patterns made to mean in Python what they mean in
    the editors' ECMA-262 (see `python_pattern`)."""
    return {
        path.name: _python_patterns(json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(schema_dir().glob("*.schema.json"))
    }


def python_pattern(pattern: str) -> str:
    """An ECMA-262 regular expression (JSON Schema's dialect) for Python's `re`, which both validators
    use with `search`: `$` is the end of the text (Python's `$` also matches before a final newline,
    so `^[0-9]+$` let "202710\\n" through) and `\\d` is an ASCII digit (Python's is any digit)."""
    out: list[str] = []
    in_class, i = False, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            pair = pattern[i : i + 2]
            out.append(("0-9" if in_class else "[0-9]") if pair == "\\d" else pair)
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append("\\Z" if ch == "$" and not in_class else ch)
        i += 1
    return "".join(out)


def _python_patterns(node: Any) -> Any:
    """The schema with every `pattern` and `patternProperties` key translated by `python_pattern`."""
    if isinstance(node, list):
        return [_python_patterns(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "pattern" and isinstance(value, str):
            out[key] = python_pattern(value)
            out[EDITOR_PATTERN] = value  # what a message shows: the pattern as the schema file writes it
        elif key == "patternProperties" and isinstance(value, dict):
            out[key] = {python_pattern(k): _python_patterns(v) for k, v in value.items()}
        else:
            out[key] = _python_patterns(value)
    return out
