"""Renderers: terminal text (with and without colour), the JSON document, the Markdown comment."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema

from reconciler.core.plan import Action, Blocked, Change, EnvPlan, Plan
from reconciler.core.render import plan_json, plan_markdown, plan_text

PROJECT = Path(__file__).resolve().parents[1]
AT = datetime(2026, 12, 5, 22, 0, tzinfo=timezone(timedelta(hours=-6)))
FP = "sha256:" + "ab" * 32
WHY = "maintenance window banner-upgrade-2026-12 (SUP-1234)"


def sample() -> Plan:
    env = EnvPlan(
        "production",
        "0123456789abcdef",
        FP,
        changes=(
            Change(Action.CHANGE, "schedule.nightly", before=True, after=False, because=WHY),
            Change(Action.ADD, "merges.sections.terms", value="202730"),
        ),
        blocked=(Blocked("merges.courses.terms", "202730", "term 202730 is not yet rolled in the SIS"),),
        warnings=("phase early of 202730 starts in 2 days",),
    )
    return Plan(AT, (env, EnvPlan("sandbox", None, FP)))


def test_text_lines_and_summary() -> None:
    text = plan_text(sample(), color=False)
    lines = text.splitlines()
    assert "production @ 0123456789ab" in lines
    assert f"  ~ schedule.nightly: true → false  ({WHY})" in lines
    assert "  + merges.sections.terms 202730" in lines
    assert "  ! merges.courses.terms 202730: term 202730 is not yet rolled in the SIS" in lines
    assert "  warning: phase early of 202730 starts in 2 days" in lines
    assert lines[-1] == "Plan: 1 to add, 1 to change, 0 to remove, 0 requests, 0 cancels, 1 blocked."
    assert "\033[" not in text


def test_text_remove_request_cancel() -> None:
    env = EnvPlan(
        "production",
        None,
        FP,
        changes=(
            Change(Action.REMOVE, "phases.early", value={"term": "202710"}),
            Change(Action.REQUEST, "update_requests.rel", value={"action": "update"}),
            Change(Action.CANCEL, "update_requests.old", value="old"),
        ),
    )
    lines = plan_text(Plan(AT, (env,))).splitlines()
    assert '  - phases.early {"term": "202710"}' in lines
    assert '  + update_requests.rel {"action": "update"}  [request]' in lines
    assert "  - update_requests.old old  [cancel]" in lines
    assert lines[-1] == "Plan: 0 to add, 0 to change, 1 to remove, 1 request, 1 cancel, 0 blocked."


def test_text_colour_only_when_asked() -> None:
    coloured = plan_text(sample(), color=True)
    assert "\033[32m+ merges.sections.terms 202730\033[0m" in coloured
    assert "\033[33m~ schedule.nightly" in coloured
    assert "\033[35m! merges.courses.terms" in coloured


def test_text_no_changes() -> None:
    text = plan_text(Plan(AT, (EnvPlan("production", None, FP),)), color=True)
    assert text.splitlines()[-1] == "No changes. Live matches the desired state."
    assert "  no changes" in text.splitlines()


def test_json_is_the_plan_document() -> None:
    plan = sample()
    out = plan_json(plan)
    assert json.loads(out) == plan.data
    assert out.startswith('{\n  "format_version": 1,')
    schema = json.loads((PROJECT / "schemas" / "plan.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(out))


def test_markdown_table_blocked_and_warnings() -> None:
    md = plan_markdown(sample())
    lines = md.splitlines()
    assert lines[0] == "**Plan: 1 to add, 1 to change, 0 to remove, 0 requests, 0 cancels, 1 blocked.**"
    assert "### production" in lines and "### sandbox" in lines
    assert "| action | setting | from | to | why |" in lines
    assert f"| change | `schedule.nightly` | `true` | `false` | {WHY} |" in lines
    assert "| add | `merges.sections.terms` |  | `202730` |  |" in lines
    assert "- `merges.courses.terms` `202730`: term 202730 is not yet rolled in the SIS" in lines
    assert "- phase early of 202730 starts in 2 days" in lines
    assert "<details>" not in md


def test_markdown_escapes_pipes_and_folds_big_environments() -> None:
    many = tuple(Change(Action.ADD, f"access.users.u{i}@x.edu", value={"products": ["a|b"]}) for i in range(21))
    md = plan_markdown(Plan(AT, (EnvPlan("production", None, FP, changes=many),)))
    assert "<details>" in md and "<summary>production: 21 changes</summary>" in md
    assert md.index("<details>") < md.index("| add |") < md.index("</details>")
    assert '`{"products": ["a\\|b"]}`' in md
    twenty = plan_markdown(Plan(AT, (EnvPlan("production", None, FP, changes=many[:20]),)))
    assert "<details>" not in twenty


def test_markdown_no_changes() -> None:
    md = plan_markdown(Plan(AT, (EnvPlan("production", None, FP),)))
    assert md.splitlines()[0] == "**No changes. Live matches the desired state.**"
    assert "No changes." in md.splitlines()
