"""The planning core: desired projection, the typed diff, the safe order, apply_change, safety."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.core.desired import desired_state, managed_parts
from reconciler.core.plan import (
    Action,
    Blocked,
    Change,
    EnvPlan,
    Plan,
    apply_change,
    fingerprint,
    plan_environment,
    removals_exceed,
)
from reconciler.model import Document, EnvironmentSpec, Kind

PROJECT = Path(__file__).resolve().parents[1]

ALL = frozenset({"schedule", "merges", "phases", "access", "version", "update_requests"})
CST = timezone(timedelta(hours=-6))
AT = datetime(2026, 12, 5, 22, 0, tzinfo=CST)


def plan(desired: dict[str, Any], live: dict[str, Any], **kw: Any) -> EnvPlan:
    kw.setdefault("managed", ALL)
    return plan_environment("production", desired, live, **kw)


def only(env: EnvPlan) -> Change:
    assert len(env.changes) == 1, env.changes
    return env.changes[0]


def spec(**docs: dict[str, Any]) -> EnvironmentSpec:
    kinds = {
        "environment": Kind.ENVIRONMENT,
        "merge": Kind.MERGE_SETTINGS,
        "phases": Kind.PHASES,
        "access": Kind.ACCESS,
        "updates": Kind.UPDATES,
    }
    return EnvironmentSpec(
        "production", {kinds[k]: Document(kinds[k], f"production/{kinds[k].filename}", v) for k, v in docs.items()}
    )


# --- desired_state ----------------------------------------------------------------------------


def test_desired_state_projects_every_managed_kind() -> None:
    s = spec(
        environment={"name": "production", "sis": "banner", "hosting": {"plan": "hosted", "version": "E.1505.2"}},
        merge={
            "schedule": {"nightly": True, "realtime": False},
            "merges": {
                "courses": {"terms": ["202720", "202710"]},
                "sections": {"terms": ["202710"], "post_fields": ["rooms", "instructors"], "on_delete": "cancel"},
                "relationships": {"terms": []},
            },
        },
        phases={
            "phases": [
                {
                    "name": "p1",
                    "term": "202710",
                    "start": "2026-10-01",
                    "end": "2026-11-01",
                    "editable": ["rooms", "instructors"],
                    "editors": ["scheduler"],
                }
            ]
        },
        access={
            "users": [{"email": "a.b@x.edu", "products": ["scheduling", "admin"]}],
            "roles": {"scheduler": {"edit_sections": "allow"}},
        },
        updates={
            "requests": [
                {
                    "id": "spring-release",
                    "site": "production",
                    "action": "update",
                    "version": "E.1505.2",
                    "preferred": "2027-01-03T04:00",
                },
                {"id": "refresh", "site": "staging", "action": "db-refresh", "preferred": "2026-12-13T02:00"},
            ]
        },
    )
    assert managed_parts(s) == ALL
    assert desired_state(s) == {
        "schedule": {"nightly": True, "realtime": False},
        "merges": {
            "courses": {"terms": ["202710", "202720"]},
            "sections": {
                "terms": ["202710"],
                "post_fields": ["instructors", "rooms"],
                "on_delete": "cancel",
                "on_conflict": "sis",
                "allow_empty": False,
            },
            "relationships": {"terms": []},
        },
        "phases": {
            "p1": {
                "term": "202710",
                "start": "2026-10-01",
                "end": "2026-11-01",
                "editable": ["instructors", "rooms"],
                "editors": ["scheduler"],
            }
        },
        "access": {
            "users": {"a.b@x.edu": {"products": ["admin", "scheduling"]}},
            "roles": {"scheduler": {"edit_sections": "allow"}},
        },
        "version": "E.1505.2",
        "update_requests": {
            "spring-release": {
                "site": "production",
                "action": "update",
                "version": "E.1505.2",
                "preferred": "2027-01-03T04:00",
            },
            "refresh": {
                "site": "staging",
                "action": "db-refresh",
                "source": "production",
                "preferred": "2026-12-13T02:00",
            },
        },
    }


def test_managed_parts_follow_the_declared_kinds() -> None:
    s = spec(environment={"name": "production", "hosting": {"plan": "cloud"}}, phases={"phases": []})
    assert managed_parts(s) == {"phases"}
    assert desired_state(s) == {"phases": {}}


def test_a_broken_kind_is_not_managed() -> None:
    s = spec(environment={"name": "production"}, merge={"merges": {}})
    broken = EnvironmentSpec(s.name, s.docs, broken=frozenset({Kind.MERGE_SETTINGS}))
    assert "merges" in managed_parts(s)
    assert managed_parts(broken) == frozenset()


# --- the diff rules ---------------------------------------------------------------------------


def test_schedule_change_carries_its_because() -> None:
    why = "maintenance window banner-upgrade-2026-12 (SUP-1234)"
    env = plan(
        {"schedule": {"nightly": False}},
        {"schedule": {"nightly": True, "realtime": True}},
        because={"schedule.nightly": why},
    )
    assert only(env) == Change(Action.CHANGE, "schedule.nightly", before=True, after=False, because=why)


def test_terms_are_compared_as_sets_one_change_per_term() -> None:
    live = {"merges": {"sections": {"terms": ["202720", "202710"]}}}
    assert plan({"merges": {"sections": {"terms": ["202710", "202720"]}}}, live).changes == ()
    env = plan({"merges": {"sections": {"terms": ["202710", "202730", "202740"]}}}, live)
    assert env.changes == (
        Change(Action.ADD, "merges.sections.terms", value="202730"),
        Change(Action.ADD, "merges.sections.terms", value="202740"),
        Change(Action.REMOVE, "merges.sections.terms", value="202720"),
    )


def test_a_term_not_rolled_in_the_sis_is_blocked_not_added() -> None:
    live = {"merges": {"courses": {"terms": []}, "sections": {"terms": []}}, "available_terms": ["202710"]}
    env = plan({"merges": {"courses": {"terms": ["202730"]}, "sections": {"terms": ["202710"]}}}, live)
    assert env.changes == (Change(Action.ADD, "merges.sections.terms", value="202710"),)
    assert env.blocked == (Blocked("merges.courses.terms", "202730", "term 202730 is not yet rolled in the SIS"),)


def test_without_available_terms_nothing_is_blocked() -> None:
    env = plan({"merges": {"courses": {"terms": ["202730"]}}}, {})
    assert env.blocked == () and only(env).value == "202730"


@pytest.mark.parametrize(
    ("live_sections", "expected"),
    [
        pytest.param({}, Change(Action.ADD, "merges.sections.on_delete", value="cancel"), id="absent-is-add"),
        pytest.param(
            {"on_delete": "delete"},
            Change(Action.CHANGE, "merges.sections.on_delete", "delete", "cancel"),
            id="different-is-change",
        ),
    ],
)
def test_section_options(live_sections: dict[str, Any], expected: Change) -> None:
    assert (
        only(plan({"merges": {"sections": {"on_delete": "cancel"}}}, {"merges": {"sections": live_sections}}))
        == expected
    )


def test_post_fields_order_does_not_matter() -> None:
    live = {"merges": {"sections": {"post_fields": ["rooms", "instructors"]}}}
    assert plan({"merges": {"sections": {"post_fields": ["instructors", "rooms"]}}}, live).changes == ()


PHASE = {"term": "202710", "start": "2026-10-01", "end": "2026-11-01", "editable": ["*"], "editors": ["scheduler"]}


@pytest.mark.parametrize(
    ("desired", "live", "expected"),
    [
        pytest.param({"p": PHASE}, {}, Change(Action.ADD, "phases.p", value=PHASE), id="add"),
        pytest.param({}, {"p": PHASE}, Change(Action.REMOVE, "phases.p", value=PHASE), id="remove"),
        pytest.param(
            {"p": {**PHASE, "end": "2026-11-02"}},
            {"p": PHASE},
            Change(Action.CHANGE, "phases.p", before=PHASE, after={**PHASE, "end": "2026-11-02"}),
            id="change",
        ),
    ],
)
def test_phases_are_replaced_whole(desired: dict[str, Any], live: dict[str, Any], expected: Change) -> None:
    assert only(plan({"phases": desired}, {"phases": live})) == expected


@pytest.mark.parametrize(
    ("desired", "live", "expected"),
    [
        pytest.param(
            {"users": {"a.b@x.edu": {"products": ["events"]}}},
            {},
            Change(Action.ADD, "access.users.a.b@x.edu", value={"products": ["events"]}),
            id="user-add",
        ),
        pytest.param(
            {"users": {}},
            {"users": {"a@x.edu": {"products": ["events"]}}},
            Change(Action.REMOVE, "access.users.a@x.edu", value={"products": ["events"]}),
            id="user-remove",
        ),
        pytest.param(
            {"users": {"a@x.edu": {"products": ["catalog"]}}},
            {"users": {"a@x.edu": {"products": ["events"]}}},
            Change(Action.CHANGE, "access.users.a@x.edu", {"products": ["events"]}, {"products": ["catalog"]}),
            id="user-change",
        ),
        pytest.param(
            {"roles": {"r": {"p": "allow"}}}, {}, Change(Action.ADD, "access.roles.r.p", value="allow"), id="perm-add"
        ),
        pytest.param(
            {"roles": {"r": {"p": "deny"}}},
            {"roles": {"r": {"p": "allow"}}},
            Change(Action.CHANGE, "access.roles.r.p", "allow", "deny"),
            id="perm-change",
        ),
        pytest.param(
            {"roles": {}},
            {"roles": {"r": {"p": "allow"}}},
            Change(Action.REMOVE, "access.roles.r.p", value="allow"),
            id="perm-remove",
        ),
    ],
)
def test_access(desired: dict[str, Any], live: dict[str, Any], expected: Change) -> None:
    assert only(plan({"access": desired}, {"access": live})) == expected


def test_product_order_does_not_matter() -> None:
    live = {"access": {"users": {"a@x.edu": {"products": ["events", "admin"]}}}}
    assert plan({"access": {"users": {"a@x.edu": {"products": ["admin", "events"]}}}}, live).changes == ()


def test_roles_left_alone_when_access_omits_them() -> None:
    live = {"access": {"roles": {"r": {"p": "allow"}}, "users": {}}}
    assert plan({"access": {"users": {}}}, live).changes == ()


def test_version_change() -> None:
    assert only(plan({"version": "E.1505.2"}, {"version": "E.1504.9"})) == Change(
        Action.CHANGE, "version", "E.1504.9", "E.1505.2"
    )


REQ = {"site": "production", "action": "update", "version": "E.1505.2", "preferred": "2027-01-03T04:00"}


def test_a_new_request_is_requested() -> None:
    assert only(plan({"update_requests": {"rel": REQ}}, {})) == Change(Action.REQUEST, "update_requests.rel", value=REQ)


@pytest.mark.parametrize("status", ["To Be Scheduled", "Scheduled"])
def test_a_dropped_pending_request_is_cancelled(status: str) -> None:
    env = plan({"update_requests": {}}, {"update_requests": {"rel": {**REQ, "status": status}}})
    assert only(env) == Change(Action.CANCEL, "update_requests.rel", value="rel")


def test_a_dropped_running_request_is_blocked() -> None:
    env = plan({"update_requests": {}}, {"update_requests": {"rel": {**REQ, "status": "In Progress"}}})
    assert env.changes == ()
    assert env.blocked == (
        Blocked(
            "update_requests.rel",
            "rel",
            "update request rel is In Progress; only To Be Scheduled or Scheduled can be cancelled",
        ),
    )


@pytest.mark.parametrize("status", ["Completed", "Cancelled", "Unable to Complete"])
def test_a_dropped_finished_request_is_history(status: str) -> None:
    env = plan({"update_requests": {}}, {"update_requests": {"rel": {**REQ, "status": status}}})
    assert env.changes == () and env.blocked == ()


@pytest.mark.parametrize("status", ["To Be Scheduled", "Scheduled", "In Progress", "Completed"])
def test_an_unchanged_request_is_left_alone(status: str) -> None:
    live = {"update_requests": {"rel": {**REQ, "status": status}}}
    env = plan({"update_requests": {"rel": REQ}}, live)
    assert env.changes == () and env.blocked == ()


EDITED = {**REQ, "version": "E.1506.0", "preferred": "2027-01-10T04:00"}
CANCELLED_WHY = "update request rel was cancelled; give the new request a new id"


@pytest.mark.parametrize(
    ("status", "desired", "expected"),
    [
        pytest.param(
            "To Be Scheduled",
            {**REQ, "preferred": "2027-01-10T04:00"},
            Change(Action.CHANGE, "update_requests.rel", before=REQ, after={**REQ, "preferred": "2027-01-10T04:00"}),
            id="preferred-edited-while-to-be-scheduled",
        ),
        pytest.param(
            "Scheduled",
            {**REQ, "version": "E.1506.0"},
            Change(Action.CHANGE, "update_requests.rel", before=REQ, after={**REQ, "version": "E.1506.0"}),
            id="version-edited-while-scheduled",
        ),
        pytest.param(
            "In Progress",
            EDITED,
            Blocked(
                "update_requests.rel",
                "rel",
                "update request rel is In Progress; only To Be Scheduled or Scheduled can be changed "
                "(changed: version, preferred); give the changed request a new id",
            ),
            id="edited-while-in-progress",
        ),
        pytest.param(
            "Completed",
            {**REQ, "version": "E.1506.0"},
            Blocked(
                "update_requests.rel",
                "rel",
                "update request rel is Completed; only To Be Scheduled or Scheduled can be changed "
                "(changed: version); give the changed request a new id",
            ),
            id="edited-after-completed",
        ),
        pytest.param("Cancelled", REQ, Blocked("update_requests.rel", "rel", CANCELLED_WHY), id="cancelled-re-added"),
        pytest.param(
            "Cancelled", EDITED, Blocked("update_requests.rel", "rel", CANCELLED_WHY), id="cancelled-re-added-edited"
        ),
    ],
)
def test_a_request_on_both_sides(status: str, desired: dict[str, Any], expected: Change | Blocked) -> None:
    env = plan({"update_requests": {"rel": desired}}, {"update_requests": {"rel": {**REQ, "status": status}}})
    assert (env.changes, env.blocked) == (((expected,), ()) if isinstance(expected, Change) else ((), (expected,)))


def test_an_edited_request_is_compared_without_status_or_what_the_platform_adds() -> None:
    """Plan, apply with apply_change, plan again: empty, also once the platform has echoed the time with
    seconds, added a field of its own and scheduled the request."""
    live = {"update_requests": {"rel": {**REQ, "status": "Scheduled"}}}
    env = plan({"update_requests": {"rel": EDITED}}, live)
    assert env.changes == (Change(Action.CHANGE, "update_requests.rel", before=REQ, after=EDITED),)
    after = apply_change(live, env.changes[0])
    assert after["update_requests"]["rel"] == {**EDITED, "status": "To Be Scheduled"}
    assert plan({"update_requests": {"rel": EDITED}}, after).changes == ()
    echoed = {**EDITED, "preferred": "2027-01-10T04:00:00", "ticket": "HOST-77", "status": "Scheduled"}
    assert plan({"update_requests": {"rel": EDITED}}, {"update_requests": {"rel": echoed}}).is_empty


def test_an_edited_request_applies_through_the_emulator_store(tmp_path: Path) -> None:
    """The emulator's /changes makes a plan's changes in its store and checks the document against the
    live-state schema after each one (which requires a request's status)."""
    from reconciler.connectors.embedded import LiveStore
    from reconciler.emulator.contract import LiveChecker

    store = LiveStore(tmp_path / "live.sqlite", "production")
    with store.transaction() as conn:
        store.write_doc(conn, {"update_requests": {"rel": {**REQ, "status": "Scheduled"}}})
    env = plan({"update_requests": {"rel": EDITED}}, {"update_requests": {"rel": {**REQ, "status": "Scheduled"}}})
    assert [c.action for c in env.changes] == [Action.CHANGE]
    record = {"revision": None, "plan_id": "plan-test", "at": "2026-12-05T22:00:00-06:00", "actor": "tester"}
    with store.transaction() as conn:
        store.apply_changes(conn, env.changes, record, check=LiveChecker())
    with store.transaction(write=False) as conn:
        live = store.live(conn)
    assert live["update_requests"]["rel"] == {**EDITED, "status": "To Be Scheduled"}
    assert plan({"update_requests": {"rel": EDITED}}, live).is_empty


def test_unmanaged_parts_are_never_touched() -> None:
    desired = {"schedule": {"nightly": False}, "version": "E.2", "phases": {}}
    live = {"schedule": {"nightly": True}, "version": "E.1", "phases": {"p": PHASE}, "access": {"users": {}}}
    env = plan(desired, live, managed=frozenset({"version"}))
    assert [c.path for c in env.changes] == ["version"]


# --- the safe order ---------------------------------------------------------------------------

ORDER_DESIRED = {
    "schedule": {"nightly": False, "realtime": True},
    "merges": {k: {"terms": ["202730"]} for k in ("courses", "sections", "relationships")}
    | {"sections": {"terms": ["202730"], "on_delete": "cancel"}},
    "phases": {"p": PHASE},
    "version": "E.2",
    "update_requests": {"rel": REQ},
}
ORDER_LIVE = {
    "schedule": {"nightly": True, "realtime": False},
    "merges": {k: {"terms": ["202710"]} for k in ("courses", "sections", "relationships")},
    "version": "E.1",
}


@pytest.mark.parametrize(
    ("sis", "adds", "removes"),
    [
        pytest.param(
            "banner", ["courses", "sections", "relationships"], ["relationships", "sections", "courses"], id="banner"
        ),
        pytest.param(
            "peoplesoft",
            ["sections", "courses", "relationships"],
            ["relationships", "courses", "sections"],
            id="peoplesoft",
        ),
    ],
)
def test_safe_order(sis: str, adds: list[str], removes: list[str]) -> None:
    env = plan(ORDER_DESIRED, ORDER_LIVE, sis=sis)
    steps = [(c.action.value, c.path) for c in env.changes]
    assert steps == [
        ("change", "schedule.nightly"),
        *[("add", f"merges.{k}.terms") for k in adds],
        *[("remove", f"merges.{k}.terms") for k in removes],
        ("add", "merges.sections.on_delete"),
        ("add", "phases.p"),
        ("change", "version"),
        ("request", "update_requests.rel"),
        ("change", "schedule.realtime"),
    ]


# --- apply_change, fingerprint ----------------------------------------------------------------


def test_apply_change_is_pure_and_plan_after_apply_is_empty() -> None:
    live = json.loads(json.dumps(ORDER_LIVE))
    env = plan(ORDER_DESIRED, live)
    after = live
    for change in env.changes:
        after = apply_change(after, change)
    assert live == ORDER_LIVE
    assert after["update_requests"]["rel"]["status"] == "To Be Scheduled"
    assert plan(ORDER_DESIRED, after).changes == ()


def test_cancel_marks_the_request_cancelled_and_is_not_repeated() -> None:
    live = {"update_requests": {"rel": {**REQ, "status": "Scheduled"}}}
    after = apply_change(live, only(plan({"update_requests": {}}, live)))
    assert after["update_requests"]["rel"]["status"] == "Cancelled"
    assert plan({"update_requests": {}}, after).changes == ()
    assert plan({"update_requests": {"rel": REQ}}, after).changes == ()


def test_plan_after_apply_is_empty_with_edited_cancelled_and_running_requests() -> None:
    desired = {
        "update_requests": {
            "edited": EDITED,  # pending and edited: changed
            "back": REQ,  # cancelled before: blocked, not re-requested
            "running": EDITED,  # taken up by the hosting team: blocked
            "new": REQ,
        }
    }
    live = {
        "update_requests": {
            "edited": {**REQ, "status": "To Be Scheduled"},
            "back": {**REQ, "status": "Cancelled"},
            "running": {**REQ, "status": "In Progress"},
            "dropped": {**REQ, "status": "Scheduled"},
        }
    }
    env = plan(desired, live)
    assert [(c.action, c.path) for c in env.changes] == [
        (Action.CANCEL, "update_requests.dropped"),
        (Action.CHANGE, "update_requests.edited"),
        (Action.REQUEST, "update_requests.new"),
    ]
    assert [b.path for b in env.blocked] == ["update_requests.back", "update_requests.running"]
    after = live
    for change in env.changes:
        after = apply_change(after, change)
    again = plan(desired, after)
    assert again.changes == ()
    assert again.blocked == env.blocked


def test_fingerprint_ignores_activity_and_applied() -> None:
    live = {"version": "E.1", "activity": [], "applied": None}
    noisy = {
        **live,
        "activity": [{"at": "2026-12-05T22:00:00-06:00", "actor": "x", "message": "hi"}],
        "applied": {"revision": "abc", "plan_id": None, "at": "2026-12-05T22:00:00-06:00", "actor": "x"},
    }
    assert fingerprint(live) == fingerprint(noisy)
    assert fingerprint(live) != fingerprint({**live, "version": "E.2"})
    assert fingerprint(live).startswith("sha256:") and len(fingerprint(live)) == 7 + 64


# --- Plan ---------------------------------------------------------------------------------------


def test_plan_data_summary_checksum_and_schema() -> None:
    live = {
        "schedule": {"nightly": True},
        "merges": {"courses": {"terms": []}, "sections": {"terms": []}},
        "available_terms": ["202710"],
    }
    desired = {
        "schedule": {"nightly": False},
        "merges": {"sections": {"terms": ["202710"]}, "courses": {"terms": ["202730"]}},
    }
    p = Plan(AT, (plan(desired, live, because={"schedule.nightly": "window w"}, revision="abc"),))
    assert p.summary == {"add": 1, "change": 1, "remove": 0, "request": 0, "cancel": 0, "blocked": 1}
    data = p.data
    assert data["format_version"] == 1 and data["at"] == "2026-12-05T22:00:00-06:00"
    assert data["environments"][0]["changes"][0] == {
        "action": "change",
        "path": "schedule.nightly",
        "before": True,
        "after": False,
        "because": "window w",
    }
    assert data["environments"][0]["changes"][1] == {
        "action": "add",
        "path": "merges.sections.terms",
        "value": "202710",
    }
    schema = json.loads((PROJECT / "schemas" / "plan.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    jsonschema.Draft202012Validator(schema).validate({**data, "checksum": p.checksum})
    assert p.checksum == Plan(AT, p.environments).checksum
    assert p.checksum != Plan(AT + timedelta(seconds=1), p.environments).checksum
    assert not p.is_empty
    assert Plan(AT, (plan({}, {}),)).is_empty


def test_a_plan_needs_an_offset() -> None:
    with pytest.raises(ValueError, match="offset"):
        Plan(datetime(2026, 12, 5, 22, 0))


# --- safety -------------------------------------------------------------------------------------


def _removals(n: int) -> EnvPlan:
    changes = tuple(Change(Action.REMOVE, "merges.courses.terms", value=str(i)) for i in range(n))
    return EnvPlan("production", None, "sha256:" + "0" * 64, changes)


def test_safety_count_limit() -> None:
    live = {"merges": {"courses": {"terms": [str(i) for i in range(100)]}}}
    assert removals_exceed(_removals(10), live) is None
    reason = removals_exceed(_removals(11), live)
    assert reason is not None and "11" in reason and "10" in reason


def test_safety_ratio_limit_counts_every_live_item() -> None:
    live = {
        "merges": {"courses": {"terms": ["1", "2"]}, "sections": {"terms": ["1"]}},
        "phases": {"p": PHASE},
        "access": {"users": {"a@x.edu": {"products": ["events"]}}, "roles": {"r": {"p": "allow", "q": "deny"}}},
        "update_requests": {"rel": {**REQ, "status": "Completed"}},
    }  # 8 items
    assert removals_exceed(_removals(2), live) is None
    reason = removals_exceed(_removals(3), live)
    assert reason is not None and "3 of 8" in reason
    cancel = EnvPlan("p", None, "sha256:" + "0" * 64, (Change(Action.CANCEL, "update_requests.x", value="x"),) * 3)
    assert removals_exceed(cancel, live) is not None
    assert removals_exceed(_removals(3), {}) is None  # nothing live: the ratio does not apply


# --- properties ---------------------------------------------------------------------------------

TERMS = ["202710", "202720", "202730", "202740"]
KINDS = ["courses", "sections", "relationships"]
STATUSES = ["To Be Scheduled", "Scheduled", "In Progress", "Completed", "Cancelled", "Deferred"]
terms = st.lists(st.sampled_from(TERMS), unique=True)
phase = st.fixed_dictionaries(
    {
        "term": st.sampled_from(TERMS),
        "start": st.sampled_from(["2026-10-01", "2026-10-02"]),
        "end": st.just("2026-12-01"),
        "editable": st.sampled_from([["*"], [], ["rooms"]]),
        "editors": st.sampled_from([["scheduler"], []]),
    }
)
users = st.dictionaries(
    st.sampled_from(["a@x.edu", "b.c@x.edu", "d@y.org"]),
    st.fixed_dictionaries(
        {"products": st.lists(st.sampled_from(["admin", "events", "catalog"]), min_size=1, unique=True)}
    ),
)
roles = st.dictionaries(
    st.sampled_from(["scheduler", "dean"]),
    st.dictionaries(st.sampled_from(["edit_sections", "view_status"]), st.sampled_from(["allow", "deny"])),
)
request = st.fixed_dictionaries(
    {
        "site": st.just("production"),
        "action": st.just("update"),
        "version": st.sampled_from(["E.1", "E.2"]),
        "preferred": st.just("2027-01-03T04:00"),
    }
)
section_opts = st.fixed_dictionaries(
    {},
    optional={
        "on_delete": st.sampled_from(["delete", "cancel"]),
        "on_conflict": st.sampled_from(["sis", "platform"]),
        "allow_empty": st.booleans(),
        "post_fields": st.lists(st.sampled_from(["rooms", "title"]), unique=True),
    },
)


@st.composite
def states(draw: st.DrawFn, live: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "schedule": draw(st.fixed_dictionaries({}, optional={"nightly": st.booleans(), "realtime": st.booleans()})),
        "merges": {
            k: {"terms": draw(terms)} | (draw(section_opts) if k == "sections" else {})
            for k in draw(st.lists(st.sampled_from(KINDS), unique=True))
        },
        "phases": draw(st.dictionaries(st.sampled_from(["early", "late", "final"]), phase)),
        "access": draw(st.fixed_dictionaries({}, optional={"users": users, "roles": roles})),
        "version": draw(st.sampled_from(["E.1", "E.2", None] if live else ["E.1", "E.2"])),
    }
    if live:
        reqs = st.dictionaries(
            st.sampled_from(["r1", "r.2", "r3"]),
            request.flatmap(lambda r: st.sampled_from(STATUSES).map(lambda s: {**r, "status": s})),
        )
        out["update_requests"] = draw(reqs)
        if draw(st.booleans()):
            out["available_terms"] = draw(terms)
    else:
        out["update_requests"] = draw(st.dictionaries(st.sampled_from(["r1", "r.2", "r3"]), request))
    return out


scenario = st.tuples(
    states(live=False),
    states(live=True),
    st.frozensets(st.sampled_from(sorted(ALL))),
    st.sampled_from(["banner", "peoplesoft", "colleague"]),
)
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenario)
def test_plan_after_apply_is_empty(case: tuple[dict[str, Any], dict[str, Any], frozenset[str], str]) -> None:
    desired, live, managed, sis = case
    env = plan(desired, live, managed=managed, sis=sis)
    after = live
    for change in env.changes:
        after = apply_change(after, change)
    again = plan(desired, after, managed=managed, sis=sis)
    assert again.changes == ()
    assert again.blocked == env.blocked  # what was blocked stays blocked, and nothing new is


@PROPERTY
@given(scenario)
def test_unmanaged_parts_never_appear(case: tuple[dict[str, Any], dict[str, Any], frozenset[str], str]) -> None:
    desired, live, managed, sis = case
    env = plan(desired, live, managed=managed, sis=sis)
    touched = {c.path.split(".")[0] for c in env.changes} | {b.path.split(".")[0] for b in env.blocked}
    assert touched <= managed
    after = live
    for change in env.changes:
        after = apply_change(after, change)
    for part in set(live) - managed:
        assert after.get(part) == live[part]


@PROPERTY
@given(scenario)
def test_order_rules_always_hold(case: tuple[dict[str, Any], dict[str, Any], frozenset[str], str]) -> None:
    desired, live, managed, sis = case
    env = plan(desired, live, managed=managed, sis=sis)
    merge = ["sections", "courses", "relationships"] if sis == "peoplesoft" else KINDS

    def group(c: Change) -> str:
        if c.path.startswith("schedule."):
            return "pause" if c.after is False else "resume"
        if c.path.endswith(".terms"):
            return "term-add" if c.action is Action.ADD else "term-remove"
        return "other"

    groups = [group(c) for c in env.changes]
    rank = {"pause": 0, "term-add": 1, "term-remove": 2, "other": 3, "resume": 4}
    assert [rank[g] for g in groups] == sorted(rank[g] for g in groups)
    adds = [merge.index(c.path.split(".")[1]) for c in env.changes if group(c) == "term-add"]
    removes = [merge.index(c.path.split(".")[1]) for c in env.changes if group(c) == "term-remove"]
    assert adds == sorted(adds)
    assert removes == sorted(removes, reverse=True)
    others = [c.path for c in env.changes if group(c) == "other"]
    later = [p for p in others if p == "version" or p.startswith("update_requests.")]
    assert others[len(others) - len(later) :] == later  # version and requests after options, phases, access
