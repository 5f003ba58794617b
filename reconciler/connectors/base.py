"""The connector protocol: how reconciler reads and writes one environment's live side."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from reconciler.core.plan import Change
from reconciler.errors import ConnectorError

LOCK_WAIT_S = 5.0
"""How long a second holder waits for a lease before giving up (bounded)."""
LEASE_TTL_S = 300.0
"""How long a lease lasts unless released: a killed run frees the live side after this."""


def lease_holder(actor: str = "reconciler") -> str:
    """Who holds a lease, as another run's refusal names it: the actor, the machine and the process."""
    return f"{actor}@{os.uname().nodename}:{os.getpid()}"


@runtime_checkable
class Connector(Protocol):
    """One environment's live side (DESIGN §3, §5)."""

    def read(self) -> dict[str, Any]:
        """The live state document (schemas/live-state.schema.json)."""
        ...

    def apply_changes(self, changes: Sequence[Change], *, record: dict[str, Any]) -> None:
        """Make `changes` in order and record the apply (`applied`: revision, plan_id, at, actor).

        On failure, raise PartialApplyError saying how many changes were made before the one that
        failed (any other exception means: how far it got is unknown)."""
        ...

    def lock(self, holder: str, ttl_s: float) -> AbstractContextManager[None]:
        """A lease on the live side: waits briefly for another holder, then raises LockError naming it."""
        ...

    def append_activity(self, entry: dict[str, Any]) -> None:
        """Add one comment to the live activity log."""
        ...

    def execute_merge(
        self, term: str, types: Sequence[str], *, send_updates: bool, record: dict[str, Any]
    ) -> dict[str, Any]:
        """Pull `term` from the SIS for each merge type, in the order given (the caller orders them for
        the SIS); with `send_updates` False only pull. Appends an activity entry and returns the result:
        {"term", "types", "send_updates", "status"}."""
        ...


class PartialApplyError(ConnectorError):
    """`apply_changes` stopped: the first `applied` changes were made, `failed` was not, the rest were
    not attempted. `cause` is the reason `failed` was refused."""

    def __init__(self, applied: int, failed: Change, cause: BaseException | str) -> None:
        super().__init__(str(cause))
        self.applied = applied
        self.failed = failed
        self.cause = cause
