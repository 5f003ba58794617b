"""The `validate` use case: every problem of the selected environments (`selection.collect_problems`), and
three facts a CI job asks beside them — which of them only a person can apply (a read-only connector,
`validate --list read-only`), whether any of those environments has a live side a runner keeps
(`validate --require-live`), and where the root stands in its git work tree (GitHub places an annotation
by the file's path in the repository, `validate --format github`).

Whether live is configured is read from the loaded repository, after `_base/` layering, through the one
function that picks a connector (`connectors.connector_name`): a grep of environment.yaml would miss a
`live:` given in `_base/`, and the default (`embedded`) that a missing `live:` means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from reconciler.model import Problem

EMBEDDED = "embedded"


@dataclass(frozen=True)
class Validation:
    """What `validate` found for the environments it selected."""

    problems: list[Problem]
    selected: list[str]
    embedded: list[str]
    """The selected environments whose live side is the embedded store: a SQLite file under the root,
    which a CI runner starts empty and throws away after the run."""
    read_only: list[str] = field(default_factory=list)
    """The selected environments whose connector cannot write (the platform's read API): applied by a person
    through `apply --guided`, never by `apply`."""

    @property
    def live_configured(self) -> bool:
        """At least one selected environment has its live side somewhere that outlasts the run."""
        return len(self.embedded) < len(self.selected)


def validate(root: Path, envs: Sequence[str], *, shard: tuple[int, int] | None = None,
             at: datetime | None = None) -> Validation:
    from reconciler.connectors import can_write, connector_name
    from reconciler.engine.selection import collect_problems
    from reconciler.repo import load_repository

    repo = load_repository(root)
    problems, selected = collect_problems(root, envs, shard=shard, at=at, repo=repo)
    embedded = [name for name in selected if name in repo.envs and connector_name(repo.envs[name]) == EMBEDDED]
    read_only = [name for name in selected if name in repo.envs and not can_write(repo.envs[name])]
    return Validation(problems, selected, embedded, read_only)


def path_prefix(root: Path) -> str:
    """The root's path below the top of its git work tree, ending in `/` (`settings/`); `` when the root is
    the top or not in a git work tree (then paths relative to the root are the best there is)."""
    from reconciler import git
    from reconciler.errors import GitError

    try:
        tree = git.open_work_tree(root)
        rel = tree.rel(root) if tree is not None else "."
    except (GitError, ValueError, OSError):  # an unreadable repository, or a root outside its top (a link)
        return ""
    return "" if rel in (".", "") else rel + "/"
