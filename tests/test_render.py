"""Renderers: terminal text (with and without colour), the JSON document, the Markdown comment."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from reconciler.core.plan import Action, Blocked, Change, EnvPlan, Plan
from reconciler.core.render import CUT_MARK, blocked_line, change_line, plan_json, plan_markdown, plan_text
from reconciler.core.words import Words, path_label

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
    assert "### production · revision `0123456789ab`" in lines and "No changes in sandbox." in lines
    assert not any(line.startswith("### sandbox") for line in lines)  # unchanged: one line, no section
    assert "| action | setting | from | to | why |" in lines
    assert f"| change | Nightly merges | `true` | `false` | {WHY} |" in lines
    assert "| add | Sections merge · terms |  | `202730` |  |" in lines
    assert "- Courses merge · terms `202730`: term 202730 is not yet rolled in the SIS" in lines
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
    assert "No changes in production." in md.splitlines()


WORDS = Words(terms={"production": {"202730": "Summer 2027"}}, zones={"production": AT.tzinfo, "sandbox": AT.tzinfo},
              protected=frozenset({"production"}))  # type: ignore[dict-item]


def test_text_names_terms_and_marks_protected() -> None:
    lines = plan_text(sample(), words=WORDS).splitlines()
    assert "production @ 0123456789ab (protected)" in lines
    assert "  + merges.sections.terms Summer 2027 (202730)" in lines
    assert ("  ! merges.courses.terms Summer 2027 (202730): term Summer 2027 (202730) is not yet rolled in the SIS"
            in lines)


def test_markdown_blocked_names_the_term_it_waits_for() -> None:
    lines = plan_markdown(sample(), WORDS).splitlines()
    assert ("- Courses merge · terms `Summer 2027 (202730)`: term Summer 2027 (202730) is not yet rolled in the SIS"
            in lines)


def test_phase_values_name_their_term_in_text_and_markdown() -> None:
    before, after = {"term": "202730", "editors": ["registrar"]}, {"term": "202730", "editors": ["dept"]}
    env = EnvPlan("production", None, FP, changes=(
        Change(Action.ADD, "phases.early", value={"term": "202730"}),
        Change(Action.CHANGE, "phases.late", before=before, after=after),
    ))
    text = plan_text(Plan(AT, (env,)), words=WORDS).splitlines()
    assert '  + phases.early {"term": "Summer 2027 (202730)"}' in text
    assert ('  ~ phases.late: {"editors": ["registrar"], "term": "Summer 2027 (202730)"} → '
            '{"editors": ["dept"], "term": "Summer 2027 (202730)"}') in text
    md = plan_markdown(Plan(AT, (env,)), WORDS).splitlines()
    assert '| add | Phase · early |  | `{"term": "Summer 2027 (202730)"}` |  |' in md


def test_a_phase_term_and_an_unnamed_term_in_words() -> None:
    moved = Change(Action.CHANGE, "phases.early.term", before="202720", after="202730")  # as drift says it
    assert change_line(moved, {"202730": "Summer 2027"}) == "~ phases.early.term: 202720 → Summer 2027 (202730)"
    unnamed = Blocked("merges.courses.terms", "209910", "term 209910 is not yet rolled in the SIS")
    assert blocked_line(unnamed, {}) == "! merges.courses.terms 209910: term 209910 is not yet rolled in the SIS"


def test_markdown_summary_first_with_revision_time_and_protected() -> None:
    lines = plan_markdown(sample(), WORDS).splitlines()
    assert lines[2:5] == ["- **Changed (1):** production 🔒", "- **Unchanged (1):** sandbox",
                          "- **Blocked (1):** production 🔒"]
    assert lines[6].startswith("Revision `0123456789ab` · planned for Sat 2026-12-05 22:00 -06:00")
    assert "### production 🔒 protected · revision `0123456789ab`" in lines
    assert "| add | Sections merge · terms |  | `Summer 2027 (202730)` |  |" in lines
    assert lines.index("- **Changed (1):** production 🔒") < lines.index("| action | setting | from | to | why |")


def test_json_keeps_raw_codes() -> None:
    assert "Summer 2027" not in plan_json(sample())


@pytest.mark.parametrize(("path", "label"), [
    pytest.param("merges.sections.terms", "Sections merge · terms", id="term-scope"),
    pytest.param("schedule.nightly", "Nightly merges", id="nightly"),
    pytest.param("schedule.realtime", "Real-time merges", id="realtime"),
    pytest.param("merges.sections.on_delete", "Sections merge · when a section is deleted", id="option"),
    pytest.param("access.roles.course-editor.view", "Role · course-editor · view", id="role"),
    pytest.param("phases.final-review", "Phase · final-review", id="phase"),
    pytest.param("something.new", "something.new", id="unknown-kept"),
])
def test_path_labels(path: str, label: str) -> None:
    assert path_label(path) == label


def test_markdown_stays_under_the_comment_limit_and_points_to_the_job_summary() -> None:
    def env(n: int) -> EnvPlan:
        changes = tuple(Change(Action.ADD, f"access.users.u{i}@x.edu", value={"products": ["scheduling"] * 20})
                        for i in range(150))
        return EnvPlan(f"env-{n:02d}", "0123456789abcdef", FP, changes=changes)

    md = plan_markdown(Plan(AT, tuple(env(n) for n in range(12))), WORDS)
    comment = md.split(CUT_MARK)[0]
    assert len(md) > 65_536 and len(comment) < 60_000
    assert "too long for a comment; the whole plan is in this run's job summary" in comment
    assert "### env-00" in comment and "### env-11" not in comment and "### env-11" in md
