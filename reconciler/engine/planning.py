"""The plan use case: select, read live with the read-only tokens, plan; with `--base REF`, the
environments whose `live:` a pull request changed are planned without reading live (DESIGN §4, §6).

Flow: `Engine.plan` → **plan** → `select` → (with a base) the YAML at REF through `Engine.repository`
→ `core.standin.unread_environments` → `read_all` for the others only (so no connector, and no token,
is ever made for an environment REF does not point where it points now) → `core.apply.build_plan`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from reconciler.engine.reading import Faults
from reconciler.errors import UsageError
from reconciler.model import EnvironmentSpec

if TYPE_CHECKING:
    from reconciler.core.plan import Plan
    from reconciler.core.standin import Unread
    from reconciler.engine import Engine
    from reconciler.engine.selection import Selection


def plan(engine: Engine, envs: Sequence[str], *, at_text: str | None = None,
         shard: tuple[int, int] | None = None, parallel: int | None = None,
         base: str | None = None) -> tuple[Plan, Faults]:
    """The plan of every environment whose live side could be read (or stood in for), and the faults of
    the others."""
    from reconciler.engine.causes import CauseReader

    chosen = engine.select(envs, at_text, shard=shard, follow_links=True)
    unread = _unread(engine, chosen, base) if base is not None else {}
    lives, faults = engine.read_all([spec for spec in chosen.specs if spec.name not in unread], parallel)
    lives.update({name: item.live for name, item in unread.items()})
    planned = [spec for spec in chosen.specs if spec.name in lives]
    warnings = {name: [item.warning] for name, item in unread.items()}
    return CauseReader(engine.root).build_plan(planned, lives, chosen.at, engine.revision(),
                                               warnings=warnings), faults


def _unread(engine: Engine, chosen: Selection, base: str) -> dict[str, Unread]:
    from reconciler import git
    from reconciler.core.standin import unread_environments

    specs, folders = base_specs(engine, base)
    unread = unread_environments(chosen.specs, specs, folders, base, chosen.at)
    sha = git.commit_of(engine.root, base)
    for item in unread.values():  # as if REF had been applied: a change's cause is a commit since REF
        item.live["applied"] = {"revision": sha, "at": chosen.at.isoformat()}
    return unread


def base_specs(engine: Engine, ref: str) -> tuple[Mapping[str, EnvironmentSpec], list[str]]:
    """The environments at git revision `ref` (the specs that load, and every folder), through the one
    loader; none when `ref` is a commit of this history without `environments/`. An unknown `ref` is a
    usage error."""
    from reconciler import git

    if not ref or ref.startswith("-"):
        raise UsageError(f"--base {ref!r}: give a git revision (a branch, tag or commit), e.g. origin/main")
    repo = engine.repository(ref)
    if repo is not None:
        return repo.envs, list(repo.folders)
    if git.has_revision(engine.root, ref):
        return {}, []  # a commit from before environments/ existed: every environment is new since
    raise UsageError(f"--base {ref}: git cannot read environments/ at that revision (unknown revision, or "
                     "not in this repository's history; fetch it first, e.g. `git fetch origin main`)")
