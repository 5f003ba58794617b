"""THE APPLICATION LAYER (octoDNS's `Manager`): one object per command run that holds the root, the
clock, the connectors and the reporter, with one method per use case.

Flow: cli/<cmd> parses options → `Engine(root, out=…)` → `engine.plan(…)`, `.apply(…)`, `.drift(…)`,
`.status(…)`, `.import_env(…)`, `.pause(…)`, `.resume(…)`, `.merge(…)` → a result the command renders.
The pure decisions live in `reconciler.core`; the engine sequences them with the edges (connectors,
git, the edit pipeline). `watch` calls the same methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.engine.reading import Connect, Faults, Lives
from reconciler.engine.reporter import Quiet, Reporter
from reconciler.engine.selection import Selection
from reconciler.model import EnvironmentSpec

if TYPE_CHECKING:
    from reconciler.core.plan import Plan
    from reconciler.engine.activity import Pushed
    from reconciler.repo import Repository


def now() -> datetime:
    """The system clock, the engine's default (one place, so a test can fix every command's now)."""
    return datetime.now(UTC)


def default_connect(spec: EnvironmentSpec, root: Path, *, writing: bool) -> Any:
    from reconciler.connectors import get_connector

    return get_connector(spec, root, writing=writing)


class Engine:
    """The use cases of one repository root."""

    def __init__(self, root: Path, *, out: Reporter | None = None, clock: Callable[[], datetime] | None = None,
                 connect: Connect | None = None) -> None:
        self.root = root
        self.out: Reporter = out or Quiet()
        self._clock = clock
        self.connect: Connect = connect or default_connect
        self.selected: Selection | None = None
        """The latest selection (and the repository it loaded), for rendering what the command just did."""
        """`connect(spec, root, writing=…)`: a reader (writing=False) or a writer's connector."""

    def now(self) -> datetime:
        return self._clock() if self._clock is not None else now()

    def revision(self) -> str | None:
        from reconciler import git

        return git.revision(self.root)

    def repository(self, revision: str | None = None) -> Repository | None:
        """The YAML of the work tree, or `environments/` as it stood at a git revision (None when git
        cannot say), through the one loader."""
        from reconciler import git
        from reconciler.repo import load_repository

        if revision is None:
            return load_repository(self.root)
        return git.with_tree_at(self.root, revision, load_repository)

    # --- selecting and reading --------------------------------------------------------------

    def select(self, envs: Sequence[str], at_text: str | None = None, *, shard: tuple[int, int] | None = None,
               follow_links: bool = False, moment: datetime | None = None) -> Selection:
        from reconciler.engine.selection import select

        self.selected = select(self.root, envs, at_text, moment or self.now(), shard=shard,
                               follow_links=follow_links, note=self.out.note)
        return self.selected

    def read_all(self, specs: Sequence[EnvironmentSpec], parallel: int | None = None, *,
                 writing: bool = False) -> tuple[Lives, Faults]:
        """Each environment's checked live document, and the faults of those that could not be read; read
        with the read-only tokens unless `writing` (an apply's own looks)."""
        from reconciler.engine.reading import read_all

        return read_all(self.root, specs, parallel, self.out, self.connect, writing=writing)

    def read_lives(self, specs: Sequence[EnvironmentSpec], parallel: int | None = None) -> Lives:
        """Every environment's live document (read-only), or the first environment's fault."""
        lives, faults = self.read_all(specs, parallel)
        for spec in specs:
            if spec.name in faults:
                raise faults[spec.name]
        return lives

    # --- the use cases ----------------------------------------------------------------------

    def plan(self, envs: Sequence[str], *, at_text: str | None = None, shard: tuple[int, int] | None = None,
             parallel: int | None = None, base: str | None = None) -> tuple[Plan, Faults]:
        """The plan of every environment whose live side could be read, and the faults of the others. With
        `base` (a git revision), environments whose `live:` differs from that revision's are planned
        against it instead of being read (engine/planning.py)."""
        from reconciler.engine.planning import plan

        return plan(self, envs, at_text=at_text, shard=shard, parallel=parallel, base=base)

    def apply(self, envs: Sequence[str], **options: Any) -> int:
        from reconciler.engine.apply import apply

        return apply(self, envs, **options)

    def guided(self, envs: Sequence[str], guide: Any) -> int:
        """apply --guided: console steps for a person, then live watched until they are done."""
        from reconciler.engine.guided import guided

        return guided(self, envs, guide)

    def drift(self, envs: Sequence[str], *, parallel: int | None = None,
              shard: tuple[int, int] | None = None) -> list[dict[str, Any]]:
        from reconciler.engine.drift import drift

        return drift(self, envs, parallel=parallel, shard=shard)

    def status(self, envs: Sequence[str], *, at_text: str | None = None, parallel: int | None = None,
               shard: tuple[int, int] | None = None) -> tuple[datetime, list[dict[str, Any]]]:
        from reconciler.engine.status import status

        return status(self, envs, at_text=at_text, parallel=parallel, shard=shard)

    def import_env(self, env: str) -> int:
        from reconciler.engine.importing import import_env

        return import_env(self, env)

    def pause(self, env: str, **options: Any) -> int:
        from reconciler.engine.pause import pause

        return pause(self, env, **options)

    def resume(self, env: str, **options: Any) -> int:
        from reconciler.engine.pause import resume

        return resume(self, env, **options)

    def log(self, env: str | None, **options: Any) -> list[Any]:
        from reconciler.engine.log import log

        return log(self, env, **options)

    def watch(self, envs: Sequence[str], **options: Any) -> int:
        from reconciler.engine.watch import watch

        return watch(self, envs, **options)

    def merge(self, env: str, **options: Any) -> int:
        from reconciler.engine.merge import merge

        return merge(self, env, **options)

    def push_activity(self, remote: str) -> Pushed:
        """Push `reconciler/activity` to `remote`, replaying this run's records when another run pushed first."""
        from reconciler.engine.activity import push_activity

        return push_activity(self, remote)


__all__ = ["Engine", "Quiet", "Reporter", "Selection", "now"]
