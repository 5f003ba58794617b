"""EDGE: `reconciler report` — read live state, plan, and write one static HTML page into a folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click

from reconciler.cli.options import emit, engine, fleet_options, resolve_root, root_option
from reconciler.errors import UsageError

DEFAULT_OUT = "reconciler-report"
DEFAULT_DAYS = 28
PAGE = "index.html"


def now() -> datetime:
    """The generation instant (a seam for tests)."""
    return datetime.now(UTC)


@click.command(
    epilog="Example: reconciler report production staging --at 2026-12-01T00:00 --days 14 --out site",
    short_help="Write a static HTML report of the environments.",
)
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option("--out", "out", metavar="DIR", default=DEFAULT_OUT, show_default=True,
              help="The folder to write index.html into (created if missing; relative to the current folder).")
@click.option("--at", "at_text", metavar="T", default=None,
              help="Report the state at this instant and start the timeline there (ISO 8601; without an offset, "
                   "the environment's time zone). Default: now.")
@click.option("--days", type=click.IntRange(1, 3660), default=DEFAULT_DAYS, show_default=True,
              help="How many days of terms, phases and windows the timeline shows.")
@fleet_options
@root_option
def command(envs: tuple[str, ...], out: str, at_text: str | None, days: int, parallel: int | None,
            shard: tuple[int, int] | None, root: str | None) -> int:
    """Write an HTML page on ENV (default: every environment): environments, a timeline of terms, phases
    and windows, the pending plan, recent activity."""
    return run_report(resolve_root(root), envs, out=out, at_text=at_text, days=days, parallel=parallel,
                      shard=shard)


def run_report(root: Path, envs: Sequence[str], *, out: str = DEFAULT_OUT, at_text: str | None = None,
               days: int = DEFAULT_DAYS, parallel: int | None = None, shard: tuple[int, int] | None = None) -> int:
    from reconciler.core.report import environment_view, report_html
    from reconciler.engine.causes import CauseReader

    folder = _out_folder(out)  # refused before any work; created only once there is a page to write
    run = engine(root)
    chosen = run.select(envs, at_text, shard=shard)
    specs, at = chosen.specs, chosen.at
    lives = run.read_lives(specs, parallel)
    plan = CauseReader(run.root).build_plan(specs, lives, at, run.revision())
    views = [environment_view(spec, lives[spec.name], env_plan, at, days)
             for spec, env_plan in zip(specs, plan.environments, strict=True)]
    page = _write(folder, report_html(views, at=at, days=days, generated=now()))
    emit(f"report written to {page}")
    return 0


def _out_folder(out: str) -> Path:
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    return folder


def _write(folder: Path, text: str) -> Path:
    """Write index.html in `folder` through a temporary file renamed over it: a reader never sees half a
    page, and a symbolic link named index.html is replaced, never followed out of the folder."""
    page = folder / PAGE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".index-", suffix=".html", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(temp, 0o644)
            os.replace(temp, page)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise UsageError(f"--out {folder}: cannot write {PAGE}: {e.strerror or e}") from e
    return page
