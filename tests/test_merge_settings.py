"""Merge settings as the platform has them (issue 15): send updates, reference data, source of truth with
field exceptions, saved states that phases use — validate, plan, apply, drift, import, the safe order, the
v2 spelling, term roll, promote and `merge --send-updates`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_drift_status_import import console_edit

import reconciler.engine as engine_clock
from reconciler.core.desired import desired_state, managed_parts, source_of_truth_live
from reconciler.core.plan import Action, Change, apply_change, plan_environment, safe_order
from reconciler.model import REFERENCE_DATA_TYPES, SOURCES_OF_TRUTH, V2_ON_CONFLICT

CHICAGO = ZoneInfo("America/Chicago")
AT = "2026-11-25T12:00"
LATER = datetime(2026, 11, 25, 12, 5, tzinfo=CHICAGO)
V2 = Path(__file__).parent / "fixtures" / "v2_example"
SCHEMAS = Path(__file__).parent.parent / "schemas"


@pytest.fixture
def applied(cli, repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(engine_clock, "now", lambda: LATER)
    result = cli("--root", str(repo), "apply", "--yes")
    assert result.code == 0, result.err
    return repo


def _plan_json(cli, root: Path, at: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = cli("--root", str(root), "plan", "--at", at, "--format", "json")
    assert result.code == 0, result.err
    return json.loads(result.out)  # type: ignore[no-any-return]


# --- the v2 spelling -------------------------------------------------------------------------------


@pytest.mark.parametrize(("at", "fixture"), [
    pytest.param("2026-10-15T12:00", "plan-empty-live-2026-10-15.json", id="open-scheduling"),
    pytest.param("2026-12-05T22:00", "plan-empty-live-2026-12-05.json", id="in-a-window"),
])
def test_a_v2_repository_plans_byte_identically(cli, tmp_path: Path, at: str, fixture: str) -> None:  # type: ignore[no-untyped-def]
    """The example as it was before saved states (captured before the change) plans exactly as it did."""
    root = tmp_path / "v2"
    shutil.copytree(V2 / "environments", root / "environments")
    result = cli("--root", str(root), "plan", "--at", at, "--format", "json")
    assert result.code == 0, result.err
    assert result.out == (V2 / fixture).read_text()


def test_a_v2_repository_validates_with_a_suggestion(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "v2"
    shutil.copytree(V2 / "environments", root / "environments")
    result = cli("--root", str(root), "validate")
    assert result.code == 0, result.out + result.err
    said = result.out + result.err
    assert ("environments/_base/merge-settings.yaml:21:18: warning[deprecated-key]: on_conflict: sis is contract "
            "v2's spelling; write source_of_truth: {default: institution} (the same setting)") in said
    assert cli("--root", str(root), "validate", "--strict").code == 1


def test_v2_and_new_spellings_of_one_setting_plan_the_same(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    base = repo / "environments/_base/merge-settings.yaml"
    new = base.read_text().replace("      default: shared", "      default: institution").replace(
        "      fields:\n        call_number: institution  # ...except the CRN, which only Banner assigns,\n"
        "        room: platform          # and the room, which schedulers place in the platform\n", "")
    base.write_text(new)
    first = _plan_json(cli, repo, AT)
    spelled = ("    source_of_truth:\n"
               "      default: institution           # the most recent change wins, from either side...\n")
    assert spelled in new
    base.write_text(new.replace(spelled, "    on_conflict: sis\n"))
    assert "on_conflict: sis" in base.read_text()
    assert _plan_json(cli, repo, AT) == first
    changes = [c for env in first["environments"] for c in env["changes"] if "on_conflict" in c["path"]]
    assert changes and all(c["value"] == "sis" for c in changes)


@pytest.mark.parametrize(("source", "live"), [
    pytest.param({"default": "institution", "fields": {}}, {"on_conflict": "sis"}, id="v2-institution"),
    pytest.param({"default": "platform", "fields": {}}, {"on_conflict": "platform"}, id="v2-platform"),
    pytest.param({"default": "shared", "fields": {}}, {"source_of_truth": {"default": "shared", "fields": {}}},
                 id="shared"),
    pytest.param({"default": "institution", "fields": {"room": "platform"}},
                 {"source_of_truth": {"default": "institution", "fields": {"room": "platform"}}}, id="exceptions"),
])
def test_source_of_truth_is_kept_in_one_live_spelling(source: dict[str, Any], live: dict[str, Any]) -> None:
    assert source_of_truth_live(source) == live


def test_the_vocabularies_match_the_schemas() -> None:
    """One place for each fact: the reference-data types and the owners in model.py are the schemas'."""
    for name in ("merge-settings.schema.json", "live-state.schema.json"):
        schema = json.loads((SCHEMAS / name).read_text())
        assert tuple(schema["properties"]["reference_data"]["properties"]) == REFERENCE_DATA_TYPES
        assert tuple(schema["$defs"]["sourceValue"]["enum"]) == SOURCES_OF_TRUTH
    merge = json.loads((SCHEMAS / "merge-settings.schema.json").read_text())
    assert set(merge["properties"]["merges"]["properties"]["sections"]["properties"]["on_conflict"]["enum"]) == set(
        V2_ON_CONFLICT)


def test_every_new_property_has_a_description() -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in (node.get("properties") or {}).items():
                assert isinstance(value, dict) and value.get("description"), f"{where}.{key}"
            for key, value in node.items():
                walk(value, f"{where}.{key}")

    for name in ("merge-settings.schema.json", "live-state.schema.json", "phases.schema.json"):
        walk(json.loads((SCHEMAS / name).read_text()), name)


# --- plan and apply --------------------------------------------------------------------------------


def test_the_example_plans_the_new_paths_and_apply_converges(cli, applied: Path) -> None:  # type: ignore[no-untyped-def]
    live = json.loads(cli("--root", str(applied), "plan", "--at", AT, "--format", "json").out)
    assert live["summary"]["add"] == 0 and live["summary"]["change"] == 0
    import sqlite3

    from reconciler.connectors.embedded import store_path

    with closing(sqlite3.connect(store_path(applied))) as conn, conn:
        doc = json.loads(conn.execute("SELECT doc FROM live WHERE env = 'production'").fetchone()[0])
    assert doc["send_updates"] is True
    assert doc["reference_data"] == dict.fromkeys(REFERENCE_DATA_TYPES, True)
    assert doc["merges"]["courses"]["only_selected_terms"] is False
    assert doc["merges"]["sections"]["source_of_truth"] == {
        "default": "shared", "fields": {"call_number": "institution", "room": "platform"}}
    assert "on_conflict" not in doc["merges"]["sections"]
    assert doc["merge_states"] == {"frozen": {"send_updates": False}}
    assert doc["phases"]["final-review"]["merge_state"] == "frozen"
    assert "merge_state" not in doc["phases"]["open-scheduling"]


def _order(changes: list[Change]) -> list[str]:
    return [c.path for c in sorted(changes, key=safe_order)]


def test_send_updates_go_off_before_term_scopes_move_and_back_on_after() -> None:
    changes = [
        Change(Action.ADD, "merges.sections.terms", value="202730"),
        Change(Action.CHANGE, "send_updates", before=False, after=True),
        Change(Action.CHANGE, "merges.relationships.send_updates", before=True, after=False),
        Change(Action.REMOVE, "merges.courses.terms", value="202710"),
        Change(Action.CHANGE, "schedule.nightly", before=False, after=True),
        Change(Action.ADD, "phases.final-review", value={}),
        Change(Action.ADD, "merge_states.frozen", value={}),
        Change(Action.REMOVE, "merge_states.old", value={}),
        Change(Action.CHANGE, "schedule.realtime", before=True, after=False),
    ]
    assert _order(changes) == [
        "schedule.realtime", "merges.relationships.send_updates", "merges.sections.terms", "merges.courses.terms",
        "merge_states.frozen", "phases.final-review", "merge_states.old", "schedule.nightly", "send_updates"]


def test_a_console_spelling_of_the_source_of_truth_is_replaced(specs_of) -> None:  # type: ignore[no-untyped-def]
    spec = specs_of("production")
    desired = desired_state(spec)
    live = json.loads(json.dumps(desired))
    live["merges"]["sections"].pop("source_of_truth")
    live["merges"]["sections"]["on_conflict"] = "platform"
    plan = plan_environment("production", desired, live, managed=managed_parts(spec))
    assert [(c.action.value, c.path) for c in plan.changes] == [
        ("remove", "merges.sections.on_conflict"), ("add", "merges.sections.source_of_truth")]
    after = live
    for change in plan.changes:
        after = apply_change(after, change)
    assert plan_environment("production", desired, after, managed=managed_parts(spec)).is_empty


@pytest.fixture
def specs_of(repo: Path) -> Callable[[str], Any]:
    from reconciler.repo import load_repository

    loaded = load_repository(repo)

    def get(name: str) -> Any:
        return loaded.envs[name]

    return get


# --- drift and import of each new path ------------------------------------------------------------


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        node = doc
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    return edit


EDITS = [
    pytest.param(("send_updates",), False, "send_updates: false", id="send_updates"),
    pytest.param(("reference_data", "rooms"), False, "rooms: false", id="reference_data"),
    pytest.param(("merges", "sections", "send_updates"), False, "send_updates: false", id="type-send_updates"),
    pytest.param(("merges", "courses", "only_selected_terms"), True, "only_selected_terms: true",
                 id="only_selected_terms"),
    pytest.param(("merges", "sections", "source_of_truth"),
                 {"default": "shared", "fields": {"call_number": "institution", "room": "shared"}},
                 "room: shared", id="source_of_truth"),
    pytest.param(("merge_states", "frozen"), {"send_updates": False, "sections": {"post_fields": ["rooms"]}},
                 "post_fields: [rooms]", id="merge_state"),
    pytest.param(("merge_states", "post-only"), {"sections": {"post_fields": ["instructors", "rooms"]}},
                 "post-only", id="new-merge-state"),
    pytest.param(("phases", "open-scheduling", "merge_state"), "frozen", "merge_state: frozen", id="phase-state"),
]


@pytest.mark.parametrize(("path", "value", "written"), EDITS)
def test_a_console_edit_is_drift_and_import_adopts_it(  # type: ignore[no-untyped-def]
        cli, applied: Path, path: tuple[str, ...], value: Any, written: str) -> None:
    console_edit(applied, "production", _set(path, value))
    drift = cli("--root", str(applied), "drift", "production")
    assert drift.code != 0, drift.out
    assert ".".join(path[:2]) in drift.out
    result = cli("--root", str(applied), "import", "production")
    assert result.code == 0, result.err
    texts = "".join(p.read_text() for p in (applied / "environments/production").glob("*.yaml"))
    assert written in texts, texts
    assert cli("--root", str(applied), "validate").code == 0
    plan = cli("--root", str(applied), "plan", "production", "--at", AT, "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err


# --- policy -----------------------------------------------------------------------------------------


def test_unknown_state_points_at_the_phase(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    phases = repo / "environments/staging/phases.yaml"
    phases.write_text(phases.read_text().replace("merge_state: frozen", "merge_state: thawed"))
    result = cli("--root", str(repo), "validate")
    assert result.code == 1
    assert ("environments/staging/phases.yaml:36:18: error[unknown-state]: phase 'final-review' uses merge_state "
            "'thawed', not in saved_states (have: frozen)") in result.out + result.err


def test_reference_data_off_is_a_warning(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    base = repo / "environments/_base/merge-settings.yaml"
    base.write_text(base.read_text().replace("  buildings: true", "  buildings: false"))
    result = cli("--root", str(repo), "validate")
    assert result.code == 0, result.out + result.err
    assert "environments/_base/merge-settings.yaml:20:14: warning[reference-data-off]: the buildings merge is off" in (
        result.out + result.err)


def test_the_example_validates_without_warnings(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "validate", "--strict")
    assert result.code == 0, result.out + result.err


def test_removing_saved_states_counts_toward_the_safety_limit() -> None:
    from reconciler.core.plan import live_item_count

    live = {"merge_states": {"a": {}, "b": {}}, "phases": {"p": {}}}
    assert live_item_count(live) == 3


# --- term roll, promote, merge ---------------------------------------------------------------------


def test_term_roll_keeps_the_saved_state_of_a_phase(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "term", "roll", "202820", "--like", "202720", "--name", "Spring 2028")
    assert result.code == 0, result.out + result.err
    text = (repo / "environments/production/phases.yaml").read_text()
    new = text[text.index('term: "202820"'):]
    assert "merge_state: frozen" in new.split("- name:")[-1] or new.count("merge_state: frozen") == 1
    assert text.count("merge_state: frozen") == 2


def test_promote_brings_the_saved_state_use(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    staging = repo / "environments/staging/phases.yaml"
    staging.write_text(staging.read_text().replace("    merge_state: frozen\n", ""))
    assert "merge_state" not in staging.read_text()
    result = cli("--root", str(repo), "promote", "sandbox", "staging")
    assert result.code == 0, result.out + result.err
    assert "merge_state: frozen" in staging.read_text()
    production = repo / "environments/production/phases.yaml"
    result = cli("--root", str(repo), "promote", "production", "staging")
    assert result.code == 0, result.out + result.err
    production.write_text(production.read_text().replace("    merge_state: frozen\n", ""))
    result = cli("--root", str(repo), "promote", "production", "staging")
    assert result.code == 0, result.out + result.err
    assert "merge_state" not in staging.read_text()


@pytest.mark.parametrize(("at", "flag", "expected"), [
    pytest.param("2026-10-15T10:00", None, ["courses, sections, relationships (pull and send updates)"],
                 id="yaml-open-scheduling"),
    pytest.param("2026-10-15T10:00", "courses-pull-only",
                 ["courses (pull only)", "sections, relationships (pull and send updates)"], id="per-type"),
    pytest.param("2026-12-02T10:00", None, ["courses, sections, relationships (pull only)"], id="frozen-phase"),
    pytest.param("2026-12-02T10:00", "--send-updates", ["courses, sections, relationships (pull and send updates)"],
                 id="flag-wins"),
])
def test_merge_follows_each_types_send_updates(  # type: ignore[no-untyped-def]
        cli, repo: Path, at: str, flag: str | None, expected: list[str]) -> None:
    if flag == "courses-pull-only":
        base = repo / "environments/_base/merge-settings.yaml"
        base.write_text(base.read_text().replace("    only_selected_terms: false", "    send_updates: false\n"
                                                 "    only_selected_terms: false"))
        flag = None
    args = ["--root", str(repo), "merge", "production", "--term", "202720", "--at", at, *([flag] if flag else [])]
    result = cli(*args)
    assert result.code == 0, result.err
    assert result.lines == [f"production: merge of term 202720 completed: {e}" for e in expected]


# --- hypothesis: plan after apply is empty, with the new paths in the mix ---------------------------

_bools = st.booleans()
_sources = st.fixed_dictionaries({"default": st.sampled_from(SOURCES_OF_TRUTH)},
                                 optional={"fields": st.dictionaries(st.sampled_from(["call_number", "room", "title"]),
                                                                     st.sampled_from(SOURCES_OF_TRUTH), max_size=2)})
_states = st.dictionaries(st.sampled_from(["frozen", "post-only"]), st.fixed_dictionaries(
    {}, optional={"send_updates": _bools, "sections": st.fixed_dictionaries(
        {}, optional={"send_updates": _bools, "post_fields": st.lists(st.sampled_from(["rooms", "instructors"]),
                                                                      unique=True)})}), max_size=2)
_settings = st.fixed_dictionaries({}, optional={
    "send_updates": _bools,
    "reference_data": st.dictionaries(st.sampled_from(REFERENCE_DATA_TYPES), _bools),
    "saved_states": _states,
    "merges": st.fixed_dictionaries({}, optional={
        "courses": st.fixed_dictionaries({}, optional={"send_updates": _bools, "only_selected_terms": _bools,
                                                       "source_of_truth": _sources}),
        "sections": st.fixed_dictionaries({}, optional={"send_updates": _bools, "source_of_truth": _sources,
                                                        "on_conflict": st.sampled_from(sorted(V2_ON_CONFLICT))}),
    }),
})
_lives = st.fixed_dictionaries({}, optional={
    "send_updates": _bools,
    "reference_data": st.dictionaries(st.sampled_from(REFERENCE_DATA_TYPES), _bools),
    "merge_states": st.dictionaries(st.sampled_from(["frozen", "old"]), st.just({"send_updates": True}), max_size=2),
    "merges": st.fixed_dictionaries({}, optional={"sections": st.fixed_dictionaries({}, optional={
        "on_conflict": st.sampled_from(sorted(V2_ON_CONFLICT)),
        "source_of_truth": st.just({"default": "shared", "fields": {}}), "send_updates": _bools})}),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_settings, live=_lives)
def test_plan_after_apply_is_empty_with_the_new_paths(data: dict[str, Any], live: dict[str, Any]) -> None:
    from reconciler.model import Document, EnvironmentSpec, Kind

    if "on_conflict" in (data.get("merges") or {}).get("sections", {}):
        data["merges"]["sections"].pop("source_of_truth", None)
    docs = {Kind.ENVIRONMENT: Document(Kind.ENVIRONMENT, "e", {"name": "x"}),
            Kind.MERGE_SETTINGS: Document(Kind.MERGE_SETTINGS, "m", data)}
    spec = EnvironmentSpec("x", docs)
    desired, managed = desired_state(spec), managed_parts(spec)
    plan = plan_environment("x", desired, live, managed=managed)
    after: dict[str, Any] = live
    for change in plan.changes:
        after = apply_change(after, change)
    assert plan_environment("x", desired, after, managed=managed).is_empty
    offs = [i for i, c in enumerate(plan.changes) if c.path.endswith("send_updates") and c.value is False]
    scopes = [i for i, c in enumerate(plan.changes) if c.path.endswith(".terms")]
    assert all(o < s for o in offs for s in scopes)
