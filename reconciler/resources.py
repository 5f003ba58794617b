"""EDGE: the files shipped with the package — JSON Schemas and the example repository.

One source: in a source checkout they are the project's own `schemas/`, `environments/` and
`.github/workflows/`; a built wheel carries those same folders under `reconciler/_data/`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

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
    """Every `*.schema.json`, by file name."""
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(schema_dir().glob("*.schema.json"))
    }
