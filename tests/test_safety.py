"""Apply's safety checks (DESIGN §3 Safety) on planned environments: the empty-live guard and the
active-phase guard, each a rule matrix over in-memory specs and live documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reconciler.core.apply import build_plan, safety_problems
from reconciler.core.desired import SECTION_DEFAULTS
from reconciler.core.plan import Action, Change, EnvPlan, fingerprint
from reconciler.model import SCHEDULES, Document, EnvironmentSpec, Kind

CHICAGO = ZoneInfo("America/Chicago")
AT = datetime(2026, 12, 5, 23, 0, tzinfo=CHICAGO)  # inside the window below
APPLIED = {"revision": "abc1234", "plan_id": "plan-0123456789ab", "at": "2026-12-01T10:00:00-06:00", "actor": "ci"}
WINDOW = {"id": "banner-upgrade", "reason": "Banner upgrade", "ticket": "SUP-1234",
          "start": "2026-12-05T22:00", "end": "2026-12-06T06:00"}
SCHEDULE_ON = {"nightly": True, "realtime": True}
PHASE = {"term": "202720", "start": "2026-11-13", "end": "2027-01-11", "editable": ["notes"], "editors": ["registrar"]}


def spec(environment: dict[str, Any] | None = None, **docs: dict[str, Any]) -> EnvironmentSpec:
    """An environment in America/Chicago with the given kinds (merge, phases, windows, access)."""
    kinds = {"merge": Kind.MERGE_SETTINGS, "phases": Kind.PHASES, "windows": Kind.MAINTENANCE, "access": Kind.ACCESS}
    env = {"name": "production", "sis": "banner", "timezone": "America/Chicago", **(environment or {})}
    made = {Kind.ENVIRONMENT: Document(Kind.ENVIRONMENT, "production/environment.yaml", env)}
    made |= {kinds[k]: Document(kinds[k], f"production/{kinds[k].filename}", v) for k, v in docs.items()}
    return EnvironmentSpec("production", made)


def refusals(s: EnvironmentSpec, live: dict[str, Any], at: datetime = AT, **kw: Any) -> list[str]:
    env_plan = build_plan([s], {"production": live}, at, None).environments[0]
    assert env_plan.changes, "each case plans something"
    return safety_problems(env_plan, s, live, at, **kw)


SCHEDULES_ONLY = spec(merge={"schedule": SCHEDULE_ON}, windows={"windows": [WINDOW]})
MERGES = spec(merge={"schedule": SCHEDULE_ON, "merges": {"courses": {"terms": ["202710"]}}})
FIRST_PHASES = spec(merge={"schedule": SCHEDULE_ON}, phases={"phases": [{"name": "final-review", **PHASE}]})


# --- the empty-live guard ---------------------------------------------------------------------

APPLIED_SCHEDULES = {"schedule": SCHEDULE_ON, "merges": {"sections": dict(SECTION_DEFAULTS)}, "applied": APPLIED}
"""What an environment of schedules and windows reads as after its first apply (no term, phase or user)."""


@pytest.mark.parametrize(
    ("s", "live"),
    [
        pytest.param(SCHEDULES_ONLY, APPLIED_SCHEDULES, id="window-pause-in-an-environment-of-schedules-and-windows"),
        pytest.param(FIRST_PHASES, APPLIED_SCHEDULES, id="first-phases-added-to-an-environment-of-schedules"),
    ],
)
def test_the_empty_live_guard_lets_through(s: EnvironmentSpec, live: dict[str, Any]) -> None:
    assert refusals(s, live, applied_before=True) == []


@pytest.mark.parametrize(
    ("live", "applied_before"),
    [
        pytest.param({"applied": APPLIED}, False, id="live-has-only-its-applied-record"),
        pytest.param({}, True, id="deleted-store-known-from-the-activity-branch"),
    ],
)
def test_a_plan_of_schedules_alone_is_never_refused_as_empty_live(live: dict[str, Any], applied_before: bool) -> None:
    pauses = tuple(Change(Action.CHANGE, f"schedule.{name}", before=None, after=False) for name in SCHEDULES)
    env_plan = EnvPlan("production", None, fingerprint(live), pauses)
    assert safety_problems(env_plan, SCHEDULES_ONLY, live, AT, applied_before=applied_before) == []


@pytest.mark.parametrize(
    ("live", "applied_before", "known_from"),
    [
        pytest.param({}, True, "the activity branch", id="deleted-store-known-from-the-activity-branch"),
        pytest.param({"activity": [{"at": "2026-12-01T10:00:00-06:00", "actor": "ci", "message": "applied"}],
                      "available_terms": ["202710"]}, True, "the activity branch",
                     id="live-row-with-read-only-parts-only"),
        pytest.param({"access": {"users": {"a@x.edu": {"products": ["events"]}}}, "applied": APPLIED}, False,
                     "live's applied record", id="managed-parts-absent-unmanaged-present"),
    ],
)
def test_the_empty_live_guard_refuses(live: dict[str, Any], applied_before: bool, known_from: str) -> None:
    reasons = refusals(MERGES, live, applied_before=applied_before)
    assert reasons == [
        f"production: the live side reads as empty although {known_from} shows an earlier apply; the plan "
        "would re-add 3 items (a platform answering with nothing, or a deleted store, is a fault, not a desire)"
    ]  # the term and the two section options MergeSettings always enforces; the schedules are not counted


# --- the active-phase guard -------------------------------------------------------------------

# 202720 and its phase final-review were removed from the YAML in one commit; live still has both.
DROPPED = spec(merge={"merges": {"courses": {"terms": ["202710"]}}}, phases={"phases": []})


@pytest.mark.parametrize(
    ("phase", "active_at", "over_at"),
    [
        pytest.param(PHASE, datetime(2026, 11, 25, 12, 0, tzinfo=CHICAGO), datetime(2027, 2, 1, 12, 0, tzinfo=CHICAGO),
                     id="term-and-its-phase-removed-together"),
        pytest.param(PHASE, datetime(2026, 11, 13, 0, 30, tzinfo=CHICAGO),  # 06:30 UTC
                     datetime(2026, 11, 12, 23, 30, tzinfo=CHICAGO),  # 05:30 UTC on the 13th: not yet, in Chicago
                     id="starts-at-local-midnight"),
        pytest.param(PHASE, datetime(2027, 1, 10, 23, 30, tzinfo=CHICAGO),  # 05:30 UTC on the 11th: still on
                     datetime(2027, 1, 11, 0, 30, tzinfo=CHICAGO), id="ends-at-local-midnight"),
    ],
)
def test_a_live_phase_guards_its_term(phase: dict[str, Any], active_at: datetime, over_at: datetime) -> None:
    live = {"merges": {"courses": {"terms": ["202710", "202720"]}}, "phases": {"final-review": phase}}
    active = [r for r in refusals(DROPPED, live, active_at) if "is active" in r]
    assert active == [
        "production: removing term 202720 from merges.courses.terms while its phase 'final-review' is active in live"
    ]
    assert [r for r in refusals(DROPPED, live, over_at) if "is active" in r] == []
