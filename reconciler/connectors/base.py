"""The connector protocol, and the base every built-in connector shares (STYLE rule 2).

Flow: the engine takes a connector's `lock()` (the lease), then `read`s, then `apply_changes`. What is
the same for every connector is written once here, in **BaseConnector**: the lease loop (wait briefly,
then LockError naming the holder), re-entrance (only the outermost exit releases), taking over a lease
whose holder is a dead process on this host, releasing a lease whose answer was lost, and the
capabilities check. A subclass implements two lease primitives, `_try_lease` and `_release_lease`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Hashable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from reconciler.core.plan import Change
from reconciler.errors import ConnectorError, LockError, ReconcilerError, UnreachableError

log = logging.getLogger(__name__)

LOCK_WAIT_S = 5.0
"""How long a second holder waits for a lease before giving up (bounded)."""
LEASE_TTL_S = 300.0
"""How long a lease lasts unless released: a killed run frees the live side after this."""
LOCK_POLL_S = 0.1
"""How often a waiting holder asks again."""

CAPABILITIES: dict[str, str] = {
    "write": "apply changes",
    "lease": "take a lease on the live side",
    "activity": "keep an activity log",
    "batched_read": "read several environments at once",
    "merge": "run an execute merge",
}
"""What a connector may declare in `capabilities`, and what it cannot do without it (the error's words)."""

LeaseAnswer = tuple[bool, str, float | None]
"""What `_try_lease` answers: (taken, the holder now, when that lease expires — None when not said)."""


def _node() -> str:
    return os.uname().nodename


def lease_holder(actor: str = "reconciler", pid: int | None = None) -> str:
    """Who holds a lease, as another run's refusal names it: the actor, the machine and the process."""
    return f"{actor}@{_node()}:{os.getpid() if pid is None else pid}"


def parse_holder(holder: str) -> tuple[str, str, int] | None:
    """(actor, node, pid) of a `lease_holder()`, or None. Read from the right: an actor may hold '@',
    ':' and spaces ("Ada <ada@x.edu>@ci-7:4242")."""
    actor, at, rest = holder.rpartition("@")
    node, colon, pid = rest.rpartition(":")
    if not (actor and at and node and colon and pid.isascii() and pid.isdigit()):
        return None
    return actor, node, int(pid)


def holder_is_dead(holder: str) -> bool:
    """True only when `holder` names a process on this host that no longer runs (anything else: unknown)."""
    parsed = parse_holder(holder)
    if parsed is None or parsed[1] != _node():
        return False
    return not _running(parsed[2])


def _running(pid: int) -> bool:
    if pid <= 0:
        return True  # 0 and negatives name process groups, never a holder: do not take it over
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process, running
    except OverflowError:
        return False  # no process can have that id
    return True


@dataclass(frozen=True)
class Lease:
    """A lease held: by whom, until when (epoch seconds, None when the live side did not say), and the
    dead holder it replaced, if any (the caller prints a note)."""

    holder: str
    expires: float | None
    took_over: str | None = None


@runtime_checkable
class Connector(Protocol):
    """One environment's live side (DESIGN §3, §5)."""

    capabilities: frozenset[str]
    """What it can do: names from CAPABILITIES."""

    def require(self, capability: str) -> None:
        """Raise ConnectorError "ENV: connector NAME cannot …" unless `capability` is declared."""
        ...

    def read(self) -> dict[str, Any]:
        """The live state document (schemas/live-state.schema.json)."""
        ...

    def apply_changes(self, changes: Sequence[Change], *, record: dict[str, Any]) -> None:
        """Make `changes` in order and record the apply (`applied`: revision, plan_id, at, actor).

        On failure, raise PartialApplyError saying how many changes were made before the one that
        failed (any other exception means: how far it got is unknown)."""
        ...

    def lock(self, holder: str, ttl_s: float) -> AbstractContextManager[Lease]:
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


_DEPTH: dict[tuple[Hashable, str], int] = {}
"""How deep each (live side, holder) is in its own lease in this process: only the outermost exit releases."""
_DEPTH_LOCK = threading.Lock()


def _enter(key: tuple[Hashable, str]) -> int:
    with _DEPTH_LOCK:
        _DEPTH[key] = _DEPTH.get(key, 0) + 1
        return _DEPTH[key]


def _leave(key: tuple[Hashable, str]) -> int:
    with _DEPTH_LOCK:
        left = _DEPTH.pop(key, 1) - 1
        if left:
            _DEPTH[key] = left
        return left


def _depth(key: tuple[Hashable, str]) -> int:
    with _DEPTH_LOCK:
        return _DEPTH.get(key, 0)


class BaseConnector:
    """What every connector shares. A subclass sets `name`, `env` and `capabilities`, implements `read`
    and what its capabilities promise, and for "lease" the primitives `_try_lease` and `_release_lease`."""

    name = "connector"
    """The connector's name as `live.connector` spells it (used in messages)."""
    capabilities: frozenset[str] = frozenset()
    env: str
    holder: str | None = None
    """The holder of this connector's lease while inside `lock()` (a write may name it)."""

    # --- capabilities ------------------------------------------------------------------------

    def require(self, capability: str) -> None:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown connector capability {capability!r} (have: {', '.join(CAPABILITIES)})")
        if capability not in self.capabilities:
            raise ConnectorError(f"{self.env}: connector {self.name} cannot {CAPABILITIES[capability]}")

    def _missing(self, capability: str, method: str) -> ConnectorError:
        """A capability declared but not built: the plugin's author's error, said in one line."""
        self.require(capability)
        return ConnectorError(f"{self.env}: connector {self.name} declares that it can {CAPABILITIES[capability]} "
                              f"but does not define {type(self).__name__}.{method}")

    def read(self) -> dict[str, Any]:
        raise ConnectorError(f"{self.env}: connector {self.name} does not define {type(self).__name__}.read")

    def apply_changes(self, changes: Sequence[Change], *, record: dict[str, Any]) -> None:
        raise self._missing("write", "apply_changes")

    def append_activity(self, entry: dict[str, Any]) -> None:
        raise self._missing("activity", "append_activity")

    def execute_merge(
        self, term: str, types: Sequence[str], *, send_updates: bool, record: dict[str, Any]
    ) -> dict[str, Any]:
        raise self._missing("merge", "execute_merge")

    # --- the lease primitives a subclass implements --------------------------------------------

    def _try_lease(self, holder: str, ttl_s: float, takeover: str | None = None) -> LeaseAnswer:
        """In one atomic step, take the lease for `ttl_s` if it is free, expired, already `holder`'s, or
        held by exactly `takeover` (a dead holder): (True, holder, expires); else (False, theirs, expires)."""
        raise self._missing("lease", "_try_lease")

    def _release_lease(self, holder: str) -> None:
        """Drop the lease if `holder` holds it (a no-op otherwise)."""
        raise self._missing("lease", "_release_lease")

    def _lease_scope(self) -> Hashable:
        """What names this live side, so two connector objects on one live side share re-entrance
        (override when one process may reach two live sides whose environments share a name)."""
        return type(self).__qualname__, self.env

    def _wait_bound(self) -> float:
        return LOCK_WAIT_S

    def _now(self) -> float:
        """The clock lease expiries are read against."""
        return time.time()

    # --- the lease -----------------------------------------------------------------------------

    @contextmanager
    def lock(self, holder: str, ttl_s: float, *, wait_s: float = LOCK_WAIT_S) -> Iterator[Lease]:
        """Hold the lease: waits at most `wait_s` (bounded by LOCK_WAIT_S) for another holder, then raises
        LockError naming it. The same holder may lock again inside; only the outermost exit releases."""
        self.require("lease")
        key = (self._lease_scope(), holder)
        lease = self._acquire(holder, ttl_s, wait_s, outermost=_depth(key) == 0)
        _enter(key)
        previous, self.holder = self.holder, holder
        try:
            yield lease
        finally:
            self.holder = previous
            if _leave(key) == 0:
                self._release_quietly(holder)

    def _acquire(self, holder: str, ttl_s: float, wait_s: float, *, outermost: bool) -> Lease:
        deadline = time.monotonic() + max(0.0, min(wait_s, self._wait_bound()))
        while True:
            taken, current, expires, took_over = self._attempt(holder, ttl_s, outermost=outermost)
            if taken:
                if took_over:
                    log.info("%s: took over the lease of %s, which no longer runs", self.env, took_over)
                return Lease(holder, expires, took_over)
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockError(self._lock_refused(current, expires))
            time.sleep(min(LOCK_POLL_S, left))

    def _attempt(self, holder: str, ttl_s: float, *, outermost: bool) -> tuple[bool, str, float | None, str | None]:
        """One try, taking over a dead holder at once; an attempt whose answer was lost is released, so it
        cannot hold the live side for the TTL (not when re-entering: the outer block still holds it)."""
        try:
            taken, current, expires = self._try_lease(holder, ttl_s)
            if taken or not holder_is_dead(current):
                return taken, current, expires, None
            dead = current
            taken, current, expires = self._try_lease(holder, ttl_s, takeover=dead)
            return taken, current, expires, dead if taken else None
        except BaseException as e:
            if outermost and _answer_lost(e):
                self._release_quietly(holder)
            raise

    def _release_quietly(self, holder: str) -> None:
        try:
            self._release_lease(holder)
        except Exception as e:  # the lease expires anyway; the caller's own outcome is what matters
            log.warning("%s: could not release the lease of %s (it expires on its own): %s", self.env, holder, e)

    def _lock_refused(self, current: str, expires: float | None) -> str:
        left = "" if expires is None else f" (lease expires in {max(0.0, expires - self._now()):.0f}s)"
        return f"{self.env}: the live side is locked by {current}{left}"


def _answer_lost(error: BaseException) -> bool:
    """Whether a failed lease request may have been granted all the same (no answer, or a broken one)."""
    return isinstance(error, UnreachableError) or not isinstance(error, ReconcilerError)
