"""The `activity push` use case: this run's records on the remote's `reconciler/activity`, never one lost.

Two runs record the same repository (apply on merge, the scheduled reconcile): the second to push finds
the remote ahead. Its records (the local commits the remote lacks) are replayed on the remote's tip by
`reconciler.git` (a record whose id the remote holds already is not written twice), the local branch is
moved there with a compare-and-swap, and the push is tried again, a bounded number of times. The push is
a fast-forward or nothing: it is never forced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.activity import BRANCH
from reconciler.errors import GitError

if TYPE_CHECKING:
    from reconciler.engine import Engine

PUSH_ATTEMPTS = 5


@dataclass(frozen=True)
class Pushed:
    """What `activity push` did: `records` pushed; none when there was nothing to push (`reason` says why)."""

    remote: str
    records: int = 0
    reason: str = ""
    replayed: bool = False
    """The records were re-created on the remote's tip, because another run pushed first."""
    skipped: int = 0
    """Records the remote already held (same record id), not written twice."""


def push_activity(engine: Engine, remote: str) -> Pushed:
    """Push the local activity branch to `remote`, replaying its records on the remote's when it moved."""
    from reconciler.engine.records import Recorder

    with Recorder(engine.root, engine.out.note) as records:
        records.flush()  # the records an earlier, stopped run left: pushed with the others
        repo = records.repository()
        if repo is None:
            raise GitError(f"{engine.root} is not in a git repository; there is no {BRANCH} to push")
        for _ in range(PUSH_ATTEMPTS):
            result = _attempt(repo, remote)
            if result is not None:
                return result
    raise GitError(f"cannot push {BRANCH} to {remote!r}: it moved under every one of {PUSH_ATTEMPTS} attempts "
                   "(other runs kept pushing); run `reconciler activity push` again")


def _attempt(repo: Any, remote: str) -> Pushed | None:
    """One round: read both tips, replay if needed, push; None when another writer moved a tip meanwhile."""
    from reconciler import git

    local = git.local_activity_tip(repo)
    if local is None:
        return Pushed(remote, reason=f"there is no local branch {BRANCH}")
    theirs = git.remote_activity_tip(repo, remote)
    if theirs == local:
        return Pushed(remote, reason=f"{BRANCH} is up to date on {remote}")
    if theirs is None or git.holds(repo, theirs, local):
        ahead = git.commits_between(repo, theirs, local)
        return Pushed(remote, ahead) if git.push_activity(repo, remote, local) else None
    onto = git.fetch_activity(repo, remote)
    replayed = git.replay_activity(repo, local, onto)
    if not git.move_activity(repo, replayed.tip, local):
        return None  # a record was written locally meanwhile: start again with it
    if replayed.tip == onto:  # the remote held every record already (or the local branch was behind)
        return Pushed(remote, reason=f"{BRANCH} is up to date on {remote}", skipped=replayed.skipped)
    if not git.push_activity(repo, remote, replayed.tip):
        return None
    return Pushed(remote, replayed.written, replayed=True, skipped=replayed.skipped)
