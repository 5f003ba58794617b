"""The saved-plan rules (DESIGN §3 Safety, step 3), as a pure function: is this environment's part of a
saved plan still the plan that the YAML at its revision and this live side give?

Checked under the lease, against live read under it, so nothing can slip in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from reconciler.core.plan import EnvPlan
from reconciler.core.timeline import Transition
from reconciler.errors import PlanError, StalePlanError

MAKE_NEW = "make a new plan"


def saved_plan_problem(saved: EnvPlan, saved_at: datetime, replanned: EnvPlan, revision: str | None,
                       crossed: Sequence[Transition]) -> PlanError | None:
    """Why `saved` may not be applied now, or None.

    `replanned` is the plan made again at the saved plan's instant from the YAML at `revision` against
    live read now; `crossed` the window and phase boundaries between the saved plan's instant and now."""
    name = saved.name
    if saved.revision != revision:
        return StalePlanError(f"{name}: the saved plan is stale: it was made at revision {saved.revision or 'none'}, "
                              f"the repository is at {revision or 'none'}; {MAKE_NEW}")
    if saved.live_fingerprint != replanned.live_fingerprint:
        return StalePlanError(f"{name}: the saved plan is stale: the live side changed since; {MAKE_NEW}")
    if crossed:
        first = crossed[0]
        return StalePlanError(f"{name}: the saved plan is stale: {first.event.value} {first.id} at "
                              f"{first.local_at.isoformat()} lies between the plan's time and now; {MAKE_NEW}")
    if _settings(saved) != _settings(replanned):
        return PlanError(f"{name}: the saved plan's changes are not the ones its revision's YAML gives against "
                         f"this live side (edited by hand?); refused; {MAKE_NEW}")
    return None


def _settings(env_plan: EnvPlan) -> list[dict[str, object]]:
    """The changes without `because`: what is done must match; why was said when the plan was made (from git,
    which the checksum keeps from being edited)."""
    return [{k: v for k, v in c.data.items() if k != "because"} for c in env_plan.changes]
