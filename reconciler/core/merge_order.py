"""The order of an execute merge's types for one SIS (DESIGN §1): courses, sections, relationships;
PeopleSoft builds sections before courses. Pure; `cli/merge.py` asks it before calling the connector."""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.core.plan import merge_order as sis_order
from reconciler.errors import UsageError
from reconciler.model import MERGE_TYPES


def merge_order(sis: str, types: Iterable[str]) -> list[str]:
    """`types` (each once) in the order `sis` merges them; an unknown type is a UsageError."""
    wanted = list(dict.fromkeys(types))
    unknown = [t for t in wanted if t not in MERGE_TYPES]
    if unknown:
        raise UsageError(f"unknown merge type {unknown[0]!r} (have: {', '.join(MERGE_TYPES)})")
    if not wanted:
        raise UsageError(f"no merge type given (have: {', '.join(MERGE_TYPES)})")
    return [t for t in sis_order(sis) if t in wanted]
