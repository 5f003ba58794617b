"""The plan: (effective desired state, live state) → the ordered changes that reconcile them.

Flow: `desired.desired_state` (at T) and a connector's live read → **plan_environment** →
`Plan` → `apply` / `render`. Pure: no I/O and no clock (the instant `at` is an argument).

The diff is typed and domain-aware rather than generic: merge term scopes are sets (one
change per term), phases and users are replaced whole, role permissions one at a time, and
update requests are submitted, edited while still pending, or cancelled (their status is
read-only to us). Only the parts named in `managed` are compared.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from reconciler.model import MERGE_TYPES, REFERENCE_DATA_TYPES, SCHEDULES

FORMAT_VERSION = 1
CANCELLABLE = ("To Be Scheduled", "Scheduled")
FINISHED = ("Completed", "Cancelled", "Unable to Complete")
"""Statuses of a request that is over: absent from the YAML, it is history, not something to cancel."""
NEW_REQUEST_STATUS = "To Be Scheduled"
CANCELLED = "Cancelled"
REQUEST_FIELDS = ("site", "action", "version", "source", "preferred")
"""What a request says. Live adds its status, and a platform may add more: only these are compared."""
UNFINGERPRINTED = ("activity", "applied")
"""Parts that move without the settings moving (comments, the record of the last apply)."""


class Action(str, Enum):
    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"
    REQUEST = "request"
    CANCEL = "cancel"


@dataclass(frozen=True)
class Change:
    """One step: `before`/`after` for change, `value` for add, remove, request and cancel."""

    action: Action
    path: str
    before: Any = None
    after: Any = None
    value: Any = None
    because: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action.value, "path": self.path}
        if self.action is Action.CHANGE:
            out["before"] = self.before
            out["after"] = self.after
        else:
            out["value"] = self.value
        if self.because is not None:
            out["because"] = self.because
        return out


@dataclass(frozen=True)
class Blocked:
    """A change that cannot be made yet (not an error): shown, counted, never applied."""

    path: str
    value: Any
    why: str

    @property
    def data(self) -> dict[str, Any]:
        return {"path": self.path, "value": self.value, "why": self.why}


@dataclass(frozen=True)
class EnvPlan:
    name: str
    revision: str | None
    live_fingerprint: str
    changes: tuple[Change, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "revision": self.revision,
            "live_fingerprint": self.live_fingerprint,
            "changes": [c.data for c in self.changes],
            "blocked": [b.data for b in self.blocked],
            "warnings": list(self.warnings),
        }

    @property
    def is_empty(self) -> bool:
        return not self.changes


@dataclass(frozen=True)
class Plan:
    at: datetime
    environments: tuple[EnvPlan, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("a plan's instant needs a UTC offset")

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(c.action.value for env in self.environments for c in env.changes)
        out = {action.value: counts.get(action.value, 0) for action in Action}
        out["blocked"] = sum(len(env.blocked) for env in self.environments)
        return out

    @property
    def data(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "at": self.at.isoformat(),
            "environments": [env.data for env in self.environments],
            "summary": self.summary,
        }

    @property
    def checksum(self) -> str:
        return digest(self.data)

    @property
    def is_empty(self) -> bool:
        """No change to apply anywhere (blocked entries are not changes)."""
        return all(env.is_empty for env in self.environments)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    """`sha256:` and the hash of the value's canonical JSON (plan checksums, live fingerprints)."""
    return "sha256:" + hashlib.sha256(canonical_json(value).encode()).hexdigest()


def fingerprint(live: Mapping[str, Any]) -> str:
    """sha256 of the live settings, ignoring the activity log and the record of the last apply."""
    settings = {k: v for k, v in live.items() if k not in UNFINGERPRINTED}
    return digest(settings)


# --- the diff ---------------------------------------------------------------------------------


def plan_environment(
    name: str,
    desired: Mapping[str, Any],
    live: Mapping[str, Any],
    *,
    because: Mapping[str, str] | None = None,
    sis: str = "banner",
    revision: str | None = None,
    managed: frozenset[str],
) -> EnvPlan:
    """The changes taking `live` to `desired` for the `managed` parts, in the safe order."""
    because = because or {}
    changes: list[Change] = []
    blocked: list[Blocked] = []
    parts = managed & set(desired)
    if "schedule" in parts:
        changes += _diff_schedule(desired["schedule"], live.get("schedule") or {})
    if "send_updates" in parts:
        changes += _diff_value("send_updates", desired["send_updates"], live)
    if "reference_data" in parts:
        changes += _diff_reference_data(desired["reference_data"] or {}, live.get("reference_data") or {})
    if "merges" in parts:
        _diff_merges(desired["merges"], live, changes, blocked)
    if "merge_states" in parts:
        states = live.get("merge_states") or {}
        changes += _diff_whole("merge_states", desired["merge_states"] or {}, states, _norm_deep)
    if "phases" in parts:
        changes += _diff_whole("phases", desired["phases"] or {}, live.get("phases") or {}, _norm_lists)
    if "access" in parts:
        changes += _diff_access(desired["access"] or {}, live.get("access") or {})
    if "version" in parts and desired["version"] != live.get("version"):
        changes.append(Change(Action.CHANGE, "version", before=live.get("version"), after=desired["version"]))
    if "update_requests" in parts:
        _diff_requests(desired["update_requests"] or {}, live.get("update_requests") or {}, changes, blocked)
    changes = [_with_because(c, because) for c in changes]
    changes.sort(key=lambda c: safe_order(c, sis))
    return EnvPlan(name, revision, fingerprint(live), tuple(changes), tuple(blocked))


def _with_because(change: Change, because: Mapping[str, str]) -> Change:
    reason = because.get(change.path)
    if reason is None or change.because is not None:
        return change
    return Change(change.action, change.path, change.before, change.after, change.value, reason)


def _diff_schedule(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[Change]:
    return [
        Change(Action.CHANGE, f"schedule.{name}", before=live.get(name), after=desired[name])
        for name in SCHEDULES
        if name in desired and live.get(name) != desired[name]
    ]


def _diff_value(path: str, want: Any, have: Mapping[str, Any]) -> list[Change]:
    """One setting at `have[path's last key]`: added when live lacks it, changed when it differs."""
    key = path.rsplit(".", 1)[-1]
    if key not in have:
        return [Change(Action.ADD, path, value=copy.deepcopy(want))]
    if _norm_deep(have[key]) != _norm_deep(want):
        return [Change(Action.CHANGE, path, before=copy.deepcopy(have[key]), after=copy.deepcopy(want))]
    return []


def _diff_reference_data(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[Change]:
    out: list[Change] = []
    for kind in REFERENCE_DATA_TYPES:
        if kind in desired:
            out += _diff_value(f"reference_data.{kind}", desired[kind], live)
    return out


def _diff_merges(
    desired: Mapping[str, Any], live: Mapping[str, Any], changes: list[Change], blocked: list[Blocked]
) -> None:
    live_merges = live.get("merges") or {}
    rolled = set(live["available_terms"]) if live.get("available_terms") is not None else None
    for kind in MERGE_TYPES:
        if kind not in desired:
            continue
        want, have = desired[kind] or {}, live_merges.get(kind) or {}
        path = f"merges.{kind}.terms"
        if "terms" in want:
            wanted, current = set(want["terms"] or []), set(have.get("terms") or [])
            for term in sorted(wanted - current):
                if rolled is not None and term not in rolled:
                    blocked.append(Blocked(path, term, f"term {term} is not yet rolled in the SIS"))
                else:
                    changes.append(Change(Action.ADD, path, value=term))
            changes += [Change(Action.REMOVE, path, value=term) for term in sorted(current - wanted)]
        for option in sorted(k for k in want if k != "terms"):
            changes += _diff_value(f"merges.{kind}.{option}", want[option], have)
        changes += _other_spelling(kind, want, have)


SOURCE_KEYS = ("on_conflict", "source_of_truth")
"""A merge type's source of truth in live is one of these two spellings (see `desired`)."""


def _other_spelling(kind: str, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[Change]:
    """The live spelling of the source of truth that the desired one replaces (a console that wrote the other)."""
    if not any(key in want for key in SOURCE_KEYS):
        return []
    return [Change(Action.REMOVE, f"merges.{kind}.{key}", value=copy.deepcopy(have[key]))
            for key in SOURCE_KEYS if key in have and key not in want]


def _norm_option(value: Any) -> Any:
    # post_fields is a set of field names: its order carries no meaning.
    return sorted(value) if isinstance(value, list) else value


def _norm_deep(value: Any) -> Any:
    """A value with every list in it as a set (post_fields inside a saved state too)."""
    if isinstance(value, Mapping):
        return {k: _norm_deep(v) for k, v in value.items()}
    return _norm_option(value)


def _norm_lists(item: Any) -> Any:
    """A phase or a user with its lists (editors, products…) as sets: their order carries no meaning."""
    if not isinstance(item, Mapping):
        return item
    return {k: sorted(v) if isinstance(v, list) else v for k, v in item.items()}


def _diff_whole(prefix: str, desired: Mapping[str, Any], live: Mapping[str, Any], norm: Any) -> list[Change]:
    """Items replaced whole (a phase, a user): add, change or remove by key."""
    out: list[Change] = []
    for key in sorted(set(desired) | set(live)):
        path = f"{prefix}.{key}"
        if key not in live:
            out.append(Change(Action.ADD, path, value=copy.deepcopy(desired[key])))
        elif key not in desired:
            out.append(Change(Action.REMOVE, path, value=copy.deepcopy(live[key])))
        elif norm(desired[key]) != norm(live[key]):
            out.append(Change(Action.CHANGE, path, before=copy.deepcopy(live[key]), after=copy.deepcopy(desired[key])))
    return out


def _diff_access(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[Change]:
    out: list[Change] = []
    if "users" in desired:
        out += _diff_whole("access.users", desired["users"] or {}, live.get("users") or {}, _norm_lists)
    if "roles" in desired:
        want, have = desired["roles"] or {}, live.get("roles") or {}
        for role in sorted(set(want) | set(have)):
            out += _diff_whole(f"access.roles.{role}", want.get(role) or {}, have.get(role) or {}, lambda v: v)
    return out


def _diff_requests(
    desired: Mapping[str, Any], live: Mapping[str, Any], changes: list[Change], blocked: list[Blocked]
) -> None:
    for rid in sorted(set(desired) | set(live)):
        path = f"update_requests.{rid}"
        if rid not in live:
            changes.append(Change(Action.REQUEST, path, value=copy.deepcopy(desired[rid])))
        elif rid not in desired:
            status = (live[rid] or {}).get("status")
            if status in CANCELLABLE:
                changes.append(Change(Action.CANCEL, path, value=rid))
            elif status not in FINISHED:
                why = f"update request {rid} is {status}; only To Be Scheduled or Scheduled can be cancelled"
                blocked.append(Blocked(path, rid, why))
        else:
            _diff_request(rid, desired[rid] or {}, live[rid] or {}, changes, blocked)


def _diff_request(
    rid: str, want: Mapping[str, Any], have: Mapping[str, Any], changes: list[Change], blocked: list[Blocked]
) -> None:
    """A request on both sides. Edited while pending: one `change` (a connector makes it as `apply_change`
    does, the status back to To Be Scheduled). A cancelled id cannot come back, and a request the hosting
    team has taken up can no longer be edited: both are blocked, saying what to do."""
    path = f"update_requests.{rid}"
    status = have.get("status")
    if status == CANCELLED:
        blocked.append(Blocked(path, rid, f"update request {rid} was cancelled; give the new request a new id"))
        return
    edited = [k for k in REQUEST_FIELDS if _norm_request_field(k, want.get(k)) != _norm_request_field(k, have.get(k))]
    if not edited:
        return
    if status in CANCELLABLE:
        before = {k: copy.deepcopy(have[k]) for k in REQUEST_FIELDS if k in have}
        changes.append(Change(Action.CHANGE, path, before=before, after=copy.deepcopy(dict(want))))
    else:
        why = (
            f"update request {rid} is {status}; only To Be Scheduled or Scheduled can be changed "
            f"(changed: {', '.join(edited)}); give the changed request a new id"
        )
        blocked.append(Blocked(path, rid, why))


def _norm_request_field(name: str, value: Any) -> Any:
    # A platform may echo 2027-01-03T04:00 back as 2027-01-03T04:00:00: the same preferred time.
    if name == "preferred" and isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


# --- the safe order ---------------------------------------------------------------------------

MERGE_ORDER: Mapping[str, tuple[str, ...]] = {
    "banner": MERGE_TYPES,
    # PeopleSoft builds courses from its sections (class) data: sections must be in scope first.
    "peoplesoft": ("sections", "courses", "relationships"),
}


def merge_order(sis: str) -> tuple[str, ...]:
    return MERGE_ORDER.get(sis, MERGE_TYPES)


def safe_order(change: Change, sis: str = "banner") -> tuple[int, int, str, str]:
    """Sort key of the safe order (DESIGN §3), smallest first:

    0. pauses (a schedule switched off), then sending updates to the SIS switched off, so nothing merges or
       posts while scopes move;
    1. term additions, in merge order (courses, sections, relationships; PeopleSoft sections first);
    2. term removals, in the reverse of that order (dependants leave before what they depend on);
    3. merge options, then reference data, then saved states added or changed (before a phase names them);
    4. phases, then saved states removed (after the phases that named them);  5. access (users, then roles);
    6. the hosted version;  7. update requests (submitted, edited or cancelled);
    8. resumed schedules (switched on) last, once everything they would merge is in place, then sending
       updates switched back on.
    Ties keep a stable, readable order by path then value.
    """
    order = merge_order(sis)
    path, tail = change.path, str(change.value if change.value is not None else "")
    if path.startswith("schedule."):
        return (8 if change.after else 0, 0, path, tail)
    if path == "send_updates" or (path.startswith("merges.") and path.endswith(".send_updates")):
        return (8 if _switched_on(change) else 0, 1, path, tail)
    if path.startswith("reference_data."):
        return (3, 1, path, tail)
    if path.startswith("merge_states."):
        return (4, 1, path, tail) if change.action is Action.REMOVE else (3, 2, path, tail)
    if path.startswith("merges.") and path.endswith(".terms"):
        kind = path.split(".")[1]
        index = order.index(kind) if kind in order else len(order)
        if change.action is Action.REMOVE:
            return (2, len(order) - index, path, tail)
        return (1, index, path, tail)
    if path.startswith("merges."):
        return (3, 0, path, tail)
    if path.startswith("phases."):
        return (4, 0, path, tail)
    if path.startswith("access.users."):
        return (5, 0, path, tail)
    if path.startswith("access."):
        return (5, 1, path, tail)
    if path == "version":
        return (6, 0, path, tail)
    return (7, 0, path, tail)


def _switched_on(change: Change) -> bool:
    """A switch left on or turned on (removing one leaves the platform's default, on)."""
    if change.action is Action.CHANGE:
        return bool(change.after)
    return change.action is Action.REMOVE or bool(change.value)


# --- applying one change to a live value (pure) -----------------------------------------------


def split_path(path: str) -> tuple[str, ...]:
    """Split a dotted live path, keeping dots inside e-mail addresses, request ids and phase names."""
    for prefix in ("access.users.", "update_requests.", "phases.", "merge_states."):
        if path.startswith(prefix) and len(path) > len(prefix):
            return (*prefix.rstrip(".").split("."), path[len(prefix) :])
    return tuple(path.split("."))


def apply_change(live: Mapping[str, Any], change: Change) -> dict[str, Any]:
    """A new live state with `change` made, as a faithful connector would make it."""
    out = copy.deepcopy(dict(live))
    keys = split_path(change.path)
    parent: dict[str, Any] = out
    for key in keys[:-1]:
        parent = parent.setdefault(key, {})
    last = keys[-1]
    if change.path.startswith("merges.") and last == "terms":
        terms = set(parent.get("terms") or [])
        terms = terms | {change.value} if change.action is Action.ADD else terms - {change.value}
        parent["terms"] = sorted(terms)
    elif change.action is Action.CHANGE and keys[0] == "update_requests":
        # An edited request goes back into the hosting team's queue, as a resubmitted one would.
        parent[last] = {**copy.deepcopy(change.after), "status": NEW_REQUEST_STATUS}
    elif change.action is Action.CHANGE:
        parent[last] = copy.deepcopy(change.after)
    elif change.action is Action.ADD:
        parent[last] = copy.deepcopy(change.value)
    elif change.action is Action.REMOVE:
        parent.pop(last, None)
    elif change.action is Action.REQUEST:
        parent[last] = {**copy.deepcopy(change.value), "status": NEW_REQUEST_STATUS}
    elif change.action is Action.CANCEL:
        parent[last] = {**parent[last], "status": CANCELLED}
    return out


# --- safety -----------------------------------------------------------------------------------


def live_item_count(live: Mapping[str, Any]) -> int:
    """Items a removal can take away: scoped terms, saved states, phases, users, role permissions, requests."""
    merges = live.get("merges") or {}
    access = live.get("access") or {}
    return (
        sum(len((merges.get(kind) or {}).get("terms") or []) for kind in MERGE_TYPES)
        + len(live.get("merge_states") or {})
        + len(live.get("phases") or {})
        + len(access.get("users") or {})
        + sum(len(perms or {}) for perms in (access.get("roles") or {}).values())
        + len(live.get("update_requests") or {})
    )


def removals_exceed(
    env_plan: EnvPlan, live: Mapping[str, Any], max_removals: int = 10, max_ratio: float = 0.25
) -> str | None:
    """Why the plan removes too much (refused without --force), or None."""
    removals = sum(1 for c in env_plan.changes if c.action in (Action.REMOVE, Action.CANCEL))
    if removals > max_removals:
        return f"{env_plan.name}: the plan removes {removals} items, more than the limit of {max_removals}"
    total = live_item_count(live)
    if total > 0 and removals / total > max_ratio:
        return (
            f"{env_plan.name}: the plan removes {removals} of {total} live items "
            f"({removals / total:.0%}), more than the limit of {max_ratio:.0%}"
        )
    return None


def only_schedules(env_plan: EnvPlan) -> bool:
    """Every change pauses, resumes or sets a schedule (the empty-live guard never refuses such a plan)."""
    return all(c.path.startswith("schedule.") for c in env_plan.changes)


def live_reads_empty(live: Mapping[str, Any], managed: frozenset[str]) -> bool:
    """No setting of a `managed` part is in live: what a deleted store, or a platform answering with
    nothing, reads as. Read-only parts (the applied record, activity, rolled terms) do not count."""
    return not any(_holds_a_setting(live.get(part)) for part in managed)


def _holds_a_setting(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_holds_a_setting(item) for item in value.values())
    if isinstance(value, list):
        return bool(value)
    return value is not None
