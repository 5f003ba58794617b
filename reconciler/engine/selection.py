"""Which environments a command handles, at which instant, and the refusal while their YAML has errors.

Flow: the repository (`repo.load_repository`) → `select` (names, `--shard`, `hosting.linked`) →
`refuse_on_errors` (schema and policy, at the command's moment) → the specs a use case works on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ConfigError, TimeInputError
from reconciler.model import EnvironmentSpec, Problem, Severity

if TYPE_CHECKING:
    from reconciler.repo import Repository


@dataclass(frozen=True)
class Selection:
    """The environments a command works on, the instant it works at, and the repository they came from."""

    specs: list[EnvironmentSpec]
    at: datetime
    repo: Repository


def instant(option: str, text: str, tz: Any) -> datetime:
    """`--at T` and the like: an aware datetime, or a TimeInputError that names the option."""
    from reconciler.core.timeline import parse_instant

    try:
        return parse_instant(text, tz)
    except TimeInputError as e:
        raise TimeInputError(f"{option} {text}: {e}") from None


ZONES_NAMED = 3
"""Environments named per zone when a time without an offset is refused (a fleet would fill the line)."""


def fleet_instant(option: str, text: str, specs: Sequence[EnvironmentSpec]) -> datetime:
    """`--at T` and the like for a command handling `specs`: a time without an offset is read in their
    zone, and refused, with the zones named, when they are in more than one (DESIGN §3)."""
    from reconciler.core.clock import has_offset

    by_zone: dict[str, list[str]] = {}
    for spec in specs:
        by_zone.setdefault(spec.timezone, []).append(spec.name)
    zones = sorted(by_zone)
    if len(zones) > 1 and not has_offset(text):
        example = _with_offset(option, text, zones[0])
        named = "; ".join(f"{zone}: {_some(by_zone[zone])}" for zone in zones)
        raise TimeInputError(f"{option} {text} has no UTC offset, and the environments are in different zones "
                             f"({named}); give one, e.g. {example}")
    return instant(option, text, zones[0] if zones else "UTC")


def _with_offset(option: str, text: str, zone: str) -> str:
    """`text` read in `zone` (a time in a gap or fold as RFC 5545 reads it), with its offset: an example."""
    from reconciler.core.timeline import parse_instant

    try:
        return parse_instant(text, zone, strict=False).isoformat(timespec="minutes")
    except TimeInputError as e:
        raise TimeInputError(f"{option} {text}: {e}") from None


def _some(names: list[str]) -> str:
    more = len(names) - ZONES_NAMED
    return ", ".join(names[:ZONES_NAMED]) + (f" and {more} more" if more > 0 else "")


def select(
    root: Path, envs: Sequence[str], at_text: str | None, now: datetime, *, shard: tuple[int, int] | None = None,
    follow_links: bool = False, note: Callable[[str], None] = lambda _: None,
) -> Selection:
    """Validate (refusing on any error) and return the selected specs and the instant: `--at`, else `now`.

    With `follow_links`, a named environment brings along the ones in its `hosting.linked`."""
    from reconciler.repo import load_repository

    repo = load_repository(root)
    if follow_links and envs:
        envs = with_linked(repo.envs, repo.select(envs))
    selected = repo.select(envs, shard)
    at = fleet_instant("--at", at_text, [repo.envs[n] for n in selected if n in repo.envs]) if at_text else now
    refuse_on_errors(root, selected, at, repo, note=note)
    return Selection([repo.envs[name] for name in selected], at, repo)


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


def refuse_on_errors(root: Path, selected: Sequence[str], at: datetime | None, repo: Repository | None = None, *,
                     before: str = "planning", note: Callable[[str], None] = lambda _: None) -> None:
    """Refuse to go on while the selected environments' YAML has errors: each to `note`, one line as the
    reason (`before` says what waits: planning, editing it…)."""
    problems, _ = collect_problems(root, selected, at=at, repo=repo)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors:
        for problem in errors:
            note(str(problem))
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        raise ConfigError(f"the YAML has {count}; fix them (see `reconciler validate`) before {before}")


def collect_problems(root: Path, envs: Sequence[str], *, shard: tuple[int, int] | None = None,
                     at: datetime | None = None, repo: Repository | None = None) -> tuple[list[Problem], list[str]]:
    """Every problem that concerns the selected environments, sorted, each once."""
    from datetime import UTC

    from reconciler.repo import load_repository, policy_problems

    repo = repo or load_repository(root)
    selected = repo.select(envs, shard)
    found = set(repo.problems)
    for name in selected:
        found.update(repo.env_problems.get(name, []))
    for problems in policy_problems(repo, selected, at or datetime.now(UTC)).values():
        found.update(problems)
    return sorted(found), selected
