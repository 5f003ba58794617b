"""Reading live: one connector per environment, a fleet read in parallel (or batched where the
connector offers `read_many`), each answer kept by environment name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from reconciler.engine.reporter import Reporter
from reconciler.model import EnvironmentSpec

Connect = Callable[[EnvironmentSpec, Path], Any]


def read_lives(root: Path, specs: Sequence[EnvironmentSpec], parallel: int | None, out: Reporter,
               connect: Connect) -> dict[str, dict[str, Any]]:
    connectors = [connect(spec, root) for spec in specs]
    if len(specs) > 1:
        out.note(f"reading live state of {len(specs)} environments")
    batched = _read_batched(connectors)
    if batched is not None:
        return {spec.name: batched[spec.name] for spec in specs}
    lives: dict[str, dict[str, Any]] = {}
    with out.progress("reading live state", len(specs)) as advance, \
            ThreadPoolExecutor(max_workers=max(1, min(parallel or 4, len(specs) or 1))) as pool:
        futures = {pool.submit(c.read): spec.name for spec, c in zip(specs, connectors, strict=True)}
        for future in as_completed(futures):
            lives[futures[future]] = future.result()
            advance()
    return {spec.name: lives[spec.name] for spec in specs}


def _read_batched(connectors: Sequence[Any]) -> dict[str, dict[str, Any]] | None:
    """One batched read when every connector is of one class that offers `read_many` (the embedded
    store reads a whole fleet over one connection); None otherwise."""
    kinds = {type(c) for c in connectors}
    if len(kinds) != 1:
        return None
    read_many = getattr(kinds.pop(), "read_many", None)
    return read_many(connectors) if callable(read_many) else None
