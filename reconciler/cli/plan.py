"""EDGE: `reconciler plan` — validate, read live per environment, print the changes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reconciler.cli.options import (
    emit,
    fleet_options,
    format_option,
    instant,
    note,
    resolve_root,
    root_option,
    use_color,
)
from reconciler.errors import ConfigError, UsageError
from reconciler.model import EnvironmentSpec, Severity


@click.command(
    epilog="Example: reconciler plan production --at 2026-12-05T22:00 --out plan.json --detailed-exitcode",
    short_help="Show the changes that take live to the YAML.",
)
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option("--at", "at_text", metavar="T", default=None,
              help="Plan for this instant (ISO 8601; without an offset, the environment's time zone). Default: now.")
@click.option("--out", "out", metavar="FILE", default=None,
              help="Also write the plan as JSON (with its id and checksum) for `apply --plan`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when there are none.")
@format_option("text", "json", "markdown")
@fleet_options
@root_option
def command(envs: tuple[str, ...], at_text: str | None, out: str | None, detailed_exitcode: bool, fmt: str,
            parallel: int | None, shard: tuple[int, int] | None, root: str | None) -> int:
    """Show the changes that take the live side of ENV (default: every environment) to its YAML."""
    return run_plan(resolve_root(root), envs, at_text=at_text, out=out, detailed_exitcode=detailed_exitcode,
                    fmt=fmt, parallel=parallel, shard=shard)


def run_plan(root: Path, envs: Sequence[str], *, at_text: str | None = None, out: str | None = None,
             detailed_exitcode: bool = False, fmt: str = "text", parallel: int | None = None,
             shard: tuple[int, int] | None = None) -> int:
    from reconciler.core.apply import build_plan, saved_data
    from reconciler.core.render import plan_json, plan_markdown, plan_text

    specs, at = prepare(root, envs, at_text, shard, follow_links=True)
    lives = read_lives(root, specs, parallel)
    plan = build_plan(specs, lives, at, git_revision(root))
    if fmt == "json":
        emit(plan_json(plan))
    elif fmt == "markdown":
        emit(plan_markdown(plan))
    else:
        emit(plan_text(plan, use_color()))
    if out:
        try:
            Path(out).write_text(json.dumps(saved_data(plan), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        except OSError as e:
            raise UsageError(f"--out {out}: cannot write the plan: {e.strerror or e}") from e
        note(f"plan written to {out}")
    return 2 if detailed_exitcode and not plan.is_empty else 0


def prepare(
    root: Path, envs: Sequence[str], at_text: str | None, shard: tuple[int, int] | None = None, *,
    follow_links: bool = False, moment: datetime | None = None,
) -> tuple[list[EnvironmentSpec], datetime]:
    """Validate (refusing on any error) and return the selected specs and the instant: `--at`, else
    `moment` (a command's own now), else the clock.

    With `follow_links`, a named environment brings along the ones in its `hosting.linked`."""
    from reconciler.repo import load_repository

    repo = load_repository(root)
    if follow_links and envs:
        envs = with_linked(repo.envs, repo.select(envs))
    selected = repo.select(envs, shard)
    tz = repo.envs[selected[0]].timezone if selected and selected[0] in repo.envs else "UTC"
    at = instant("--at", at_text, tz) if at_text else moment or datetime.now(UTC)
    refuse_on_errors(root, selected, at, repo)
    return [repo.envs[name] for name in selected], at


def with_linked(specs: Mapping[str, EnvironmentSpec], names: Sequence[str]) -> list[str]:
    """`names`, each followed by the environments its `hosting.linked` lists (and theirs), unless
    already selected; in a stable order. Unknown names are left to validation."""
    out: list[str] = []

    def visit(name: str) -> None:
        if name in out:
            return
        out.append(name)
        spec = specs.get(name)
        hosting = (spec.config.get("hosting") or {}) if spec is not None else {}
        linked = hosting.get("linked") if isinstance(hosting, Mapping) else None
        for other in linked if isinstance(linked, list) else []:
            if isinstance(other, str) and other in specs and other not in names:
                visit(other)

    for name in names:
        visit(name)
    return out


def refuse_on_errors(root: Path, selected: Sequence[str], at: datetime | None, repo: Any = None, *,
                     before: str = "planning") -> None:
    """Refuse to go on while the selected environments' YAML has errors: each on stderr, one line as the
    reason (`before` says what waits: planning, editing it…)."""
    from reconciler.cli.validate import collect_problems

    problems, _ = collect_problems(root, selected, at=at, repo=repo)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors:
        for problem in errors:
            note(str(problem))
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        raise ConfigError(f"the YAML has {count}; fix them (see `reconciler validate`) before {before}")


def read_lives(root: Path, specs: Sequence[EnvironmentSpec], parallel: int | None) -> dict[str, dict[str, Any]]:
    from reconciler.connectors import get_connector

    connectors = [get_connector(spec, root) for spec in specs]
    if len(specs) > 1:
        note(f"reading live state of {len(specs)} environments")
    batched = _read_batched(connectors)
    if batched is not None:
        return {spec.name: batched[spec.name] for spec in specs}
    lives: dict[str, dict[str, Any]] = {}
    with progress("reading live state", len(specs)) as advance, \
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


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr for fleet work a person watches: only when stderr is a terminal and
    more than one environment is handled; otherwise (CI, pipes, tests) a no-op. Never on stdout."""
    if total <= 1 or not _stderr_is_tty():
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task(description, total=total)
    with bar:
        yield lambda: bar.advance(task)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def git_revision(root: Path) -> str | None:
    """`git rev-parse HEAD` of the root, or None when it is not a git repository."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def specs_by_name(specs: Sequence[EnvironmentSpec]) -> Mapping[str, EnvironmentSpec]:
    return {spec.name: spec for spec in specs}
