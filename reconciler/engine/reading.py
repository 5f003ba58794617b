"""Reading live: one connector per environment, a fleet read in parallel (or batched where the
connector offers `read_many`), each answer checked against `schemas/live-state.schema.json`.

An environment whose read fails (unreachable, no token, malformed live) is a *fault* of that
environment, kept by name beside the others' live documents: the rest of the fleet goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from reconciler.engine.reporter import Reporter
from reconciler.errors import LiveError, ReconcilerError
from reconciler.model import EnvironmentSpec


class Connect(Protocol):
    """How the engine makes an environment's connector: `writing` says what for. A reader (plan, drift,
    status, report, import's read) uses the read-only token where one is given; every use that changes
    live (apply, pause, resume, merge, import's adoption) uses the write token."""

    def __call__(self, spec: EnvironmentSpec, root: Path, *, writing: bool) -> Any: ...


Lives = dict[str, dict[str, Any]]
Faults = dict[str, ReconcilerError]


def read_all(root: Path, specs: Sequence[EnvironmentSpec], parallel: int | None, out: Reporter,
             connect: Connect, *, writing: bool = False) -> tuple[Lives, Faults]:
    """Every environment's checked live document, and the faults of those that could not be read (by
    readers, unless `writing`: an apply's own looks use the token it writes with)."""
    if len(specs) > 1:
        out.note(f"reading live state of {len(specs)} environments")
    connectors: dict[str, Any] = {}
    faults: Faults = {}
    for spec in specs:
        try:
            connectors[spec.name] = connect(spec, root, writing=writing)
        except ReconcilerError as e:  # e.g. no token: this environment only
            faults[spec.name] = e
    lives = _read_batched(list(connectors.values()))
    if lives is None:
        lives = _read_each(connectors, parallel, out, faults)
    for name in list(lives):
        try:
            check_live(name, lives[name])
        except LiveError as e:
            faults[name] = e
            del lives[name]
    return {s.name: lives[s.name] for s in specs if s.name in lives}, faults


def _read_each(connectors: Mapping[str, Any], parallel: int | None, out: Reporter, faults: Faults) -> Lives:
    lives: Lives = {}
    workers = max(1, min(parallel or 4, len(connectors) or 1))
    with out.progress("reading live state", len(connectors)) as advance, ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(c.read): name for name, c in connectors.items()}
        for future in as_completed(futures):
            name = futures[future]
            try:
                lives[name] = future.result()
            except ReconcilerError as e:
                faults[name] = e
            advance()
    return lives


def _read_batched(connectors: Sequence[Any]) -> Lives | None:
    """One batched read when every connector is of one class that offers `read_many` (the embedded
    store reads a whole fleet over one connection); None otherwise."""
    kinds = {type(c) for c in connectors}
    if len(kinds) != 1:
        return None
    read_many = getattr(kinds.pop(), "read_many", None)
    return read_many(connectors) if callable(read_many) else None


def check_live(name: str, live: Any) -> None:
    """Refuse a live document whose known parts do not match schemas/live-state.schema.json, in one line."""
    import fastjsonschema

    if not isinstance(live, dict):
        raise LiveError(f"{name}: the live state is malformed: not a JSON object")
    try:
        _live_validator()(live)
    except fastjsonschema.JsonSchemaException as e:
        raise LiveError(f"{name}: the live state is malformed: {_short(str(e))}") from None


def _short(message: str) -> str:
    text = message.replace("data.", "").replace("data ", "the document ")
    return text if len(text) <= 160 else text[:157] + "..."


@cache
def _live_validator() -> Callable[[Any], Any]:
    import json

    import fastjsonschema

    from reconciler.resources import schema_dir

    schema = json.loads((schema_dir() / "live-state.schema.json").read_text(encoding="utf-8"))
    defs = schema.get("$defs") or {}
    checked = _inlined(_open_ended({k: v for k, v in schema.items() if k != "$defs"}), _open_ended(defs))
    return fastjsonschema.compile(checked, use_default=False)  # type: ignore[no-any-return]


def _inlined(schema: Any, defs: Mapping[str, Any]) -> Any:
    """The schema with each `$ref` to its own `$defs` replaced by the definition: fastjsonschema builds
    an error path string for every call of a referenced validator, most of a fleet read's cost."""
    if isinstance(schema, list):
        return [_inlined(v, defs) for v in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and "#/$defs/" in ref:
        target = _inlined(defs[ref.split("#/$defs/", 1)[1]], defs)
        rest = {k: _inlined(v, defs) for k, v in schema.items() if k != "$ref"}
        return {**rest, "allOf": [target]} if rest.keys() - {"description"} else {**target, **rest}
    return {k: _inlined(v, defs) for k, v in schema.items()}


def _open_ended(schema: Any) -> Any:
    """The schema without its `additionalProperties: false`: a field the platform has and the model does
    not know is drift to report (`reconciler drift`), not a malformed document; a known field of the
    wrong shape is."""
    if isinstance(schema, dict):
        return {k: _open_ended(v) for k, v in schema.items() if not (k == "additionalProperties" and v is False)}
    if isinstance(schema, list):
        return [_open_ended(v) for v in schema]
    return schema
