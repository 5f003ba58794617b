"""`plan --base REF`'s pure part (DESIGN §6): which environments a pull request re-pointed, and what they
are planned against instead of their live side.

Flow: the selected specs and the same environments' specs at REF (the engine loads them from git) →
**unread_environments** → the engine reads live only for the others → `apply.build_plan`, these ones
against their **stand_in** and with their warning. A pull request that changes `live.url` or a token's
variable can so never make `plan` send a token to a host it names: such an environment's connector is
not even made. No I/O here: the instant and both sides' specs are arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from typing import Any

from reconciler.core.apply import plan_one
from reconciler.core.plan import apply_change
from reconciler.model import EnvironmentSpec

NOT_READ = "live was not read and no token was used"


@dataclass(frozen=True)
class Unread:
    """An environment planned without reading live: the stand-in for live, and why (the plan's warning)."""

    live: dict[str, Any]
    warning: str


def live_settings(spec: EnvironmentSpec) -> dict[str, Any]:
    """The environment's `live:` mapping as loaded (after `_base/`), with the connector's default spelled out."""
    live = spec.config.get("live")
    return {"connector": "embedded", **(dict(live) if isinstance(live, Mapping) else {})}


def changed_keys(now: EnvironmentSpec, then: EnvironmentSpec) -> list[str]:
    """The `live.` keys whose value differs between the two specs (added and removed ones included)."""
    before, after = live_settings(then), live_settings(now)
    return [f"live.{key}" for key in sorted(before.keys() | after.keys()) if before.get(key) != after.get(key)]


def stand_in(spec: EnvironmentSpec | None, at: datetime) -> dict[str, Any]:
    """The live side as if `spec` (the environment's YAML at REF) had been applied at `at` to an empty
    platform: each change of that plan made as a faithful connector makes it. Empty without a spec."""
    if spec is None:
        return {}
    return reduce(apply_change, plan_one(spec, {}, at, None).changes, {})


def unread_environments(specs: Sequence[EnvironmentSpec], at_base: Mapping[str, EnvironmentSpec],
                        base_folders: Sequence[str], ref: str, at: datetime) -> dict[str, Unread]:
    """The selected environments whose `live:` differs from REF's, or that REF does not have (or whose
    YAML at REF does not load), each with its stand-in and its warning; the rest are read as usual."""
    out: dict[str, Unread] = {}
    for spec in specs:
        then = at_base.get(spec.name)
        if then is None:
            where = (f"{ref}'s YAML of {spec.name} does not load" if spec.name in base_folders
                     else f"{spec.name} is not in {ref}'s YAML")
            out[spec.name] = Unread({}, f"{where}: planned against an empty live; {NOT_READ}")
            continue
        changed = changed_keys(spec, then)
        if changed:
            warning = (f"live settings differ from {ref}'s ({', '.join(changed)} changed): planned against "
                       f"{ref}'s YAML; {NOT_READ}")
            out[spec.name] = Unread(stand_in(then, at), warning)
    return out
