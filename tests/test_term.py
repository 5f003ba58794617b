"""`reconciler term roll` / `term expire`: every environment and _base/ edited, comments kept, still valid."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from reconciler.core import rollover
from reconciler.core.rollover import NewTerm, YamlFile
from reconciler.errors import UsageError
from reconciler.model import Kind
from reconciler.repo import load_repository


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "environments").rglob("*.yaml"))}


def changed(before: dict[str, bytes], root: Path) -> list[str]:
    after = snapshot(root)
    return sorted(k for k in after if before.get(k) != after[k])


def test_roll_edits_every_environment_and_base_and_validates(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(repo)
    result = cli("--root", str(repo), "term", "roll", "202820", "--like", "202720")
    assert result.code == 0, result.err
    assert result.lines[0] == "term roll 202820 (Spring 2028, 2028-01-11..2028-05-07, like 202720):"
    assert changed(before, repo) == [
        "environments/_base/merge-settings.yaml",
        "environments/_base/terms.yaml",
        "environments/production/phases.yaml",
        "environments/sandbox/merge-settings.yaml",
        "environments/sandbox/phases.yaml",
        "environments/staging/merge-settings.yaml",
        "environments/staging/phases.yaml",
    ]
    assert "not committed" in result.out
    validate = cli("--root", str(repo), "validate")
    assert validate.code == 0, validate.out + validate.err
    repository = load_repository(repo)
    for name in ("production", "staging", "sandbox"):
        spec = repository.envs[name]
        assert "202820" in spec.data(Kind.MERGE_SETTINGS)["merges"]["courses"]["terms"]
        phases = {p["name"]: p for p in spec.data(Kind.PHASES)["phases"]}
        assert phases["final-review-202820"] == {
            "name": "final-review-202820", "term": "202820", "start": "2027-11-13", "end": "2028-01-11",
            "editable": ["enrollment_cap", "notes"], "editors": ["registrar"],
            "merge_state": "frozen"}  # the new term's final phase is frozen like the one it was rolled from
    terms = {t["code"]: t for t in repository.envs["production"].data(Kind.TERMS)["terms"]}
    assert terms["202820"] == {"code": "202820", "name": "Spring 2028", "start": "2028-01-11", "end": "2028-05-07"}


def test_roll_keeps_comments_and_layout(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    base = repo / "environments/_base/merge-settings.yaml"
    terms = repo / "environments/_base/terms.yaml"
    old_base, old_terms = base.read_text(), terms.read_text()
    assert cli("--root", str(repo), "term", "roll", "202810", "--like", "202710").code == 0
    assert base.read_text() == old_base.replace('terms: ["202710", "202720"]', 'terms: ["202710", "202720", "202810"]')
    assert terms.read_text() == old_terms + (
        '  - {code: "202810", name: Fall 2027, start: 2027-08-24, end: 2027-12-18}\n')


def test_roll_defaults_to_the_latest_term(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "term", "roll", "202830")
    assert result.code == 0, result.err
    assert "(Summer 2028, 2028-05-24..2028-08-06, like 202730)" in result.out
    sandbox = load_repository(repo).envs["sandbox"]
    names = [p["name"] for p in sandbox.data(Kind.PHASES)["phases"]]
    assert "summer-open-scheduling-202830" in names
    staging = load_repository(repo).envs["staging"].data(Kind.MERGE_SETTINGS)["merges"]
    assert staging["courses"]["terms"][-1] == "202830"
    assert "202830" not in staging["sections"]["terms"]  # staging's sections do not hold 202730
    assert cli("--root", str(repo), "validate").code == 0


def test_roll_with_given_dates_shifts_phases_by_as_much(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "term", "roll", "202820", "--like", "202720", "--name", "Spring 2028",
                 "--start", "2028-01-18", "--end", "2028-05-12")
    assert result.code == 0, result.err
    phases = {p["name"]: p for p in load_repository(repo).envs["production"].data(Kind.PHASES)["phases"]}
    assert phases["registrar-preview-202820"]["start"] == "2027-10-03"  # a year and a week after 2026-09-26
    assert cli("--root", str(repo), "validate").code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["202720"], "term 202720 is already listed in Terms", id="new-present"),
        pytest.param(["202910", "--like", "199910"], "--like 199910: no such term", id="old-unknown"),
        pytest.param(["202910", "--start", "2029-02-01", "--end", "2029-01-01"], "would end (2029-01-01) before",
                     id="end-before-start"),
        pytest.param(["202910", "--start", "2029-02-30"], "--start 2029-02-30: not a date", id="bad-date"),
        pytest.param(["bad code!"], "term code 'bad code!' is not valid", id="bad-code"),
    ],
)
def test_roll_refusals_write_nothing(cli, repo: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(repo)
    result = cli("--root", str(repo), "term", "roll", *args)
    assert result.code == 1
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert snapshot(repo) == before


def test_roll_refuses_a_repository_with_errors(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    env = repo / "environments/staging/environment.yaml"
    env.write_text(env.read_text().replace("name: staging", "name: stage"))
    before = snapshot(repo)
    result = cli("--root", str(repo), "term", "roll", "202910")
    assert result.code == 1
    assert "before editing it" in result.err
    assert snapshot(repo) == before


def test_expire_removes_ended_terms_everywhere(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(repo)
    result = cli("--root", str(repo), "term", "expire", "--at", "2026-12-19")
    assert result.code == 0, result.err
    assert "environments/_base/merge-settings.yaml: merges.courses.terms - 202710 (ended)" in result.out
    assert changed(before, repo) == [
        "environments/_base/merge-settings.yaml",
        "environments/sandbox/merge-settings.yaml",
        "environments/staging/merge-settings.yaml",
    ]
    for name, spec in load_repository(repo).envs.items():
        for mtype, scope in spec.data(Kind.MERGE_SETTINGS)["merges"].items():
            assert "202710" not in scope["terms"], (name, mtype)
            assert "202720" in scope["terms"]
    assert cli("--root", str(repo), "validate").code == 0


def test_expire_keeps_a_term_on_its_last_day(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(repo)
    result = cli("--root", str(repo), "term", "expire", "--at", "2026-12-18T23:59")
    assert result.code == 0
    assert "nothing written" in result.out
    assert snapshot(repo) == before


# --- the pure parts ------------------------------------------------------------------------------


def _files() -> list[YamlFile]:
    terms = {"terms": [{"code": "2272", "name": "Fall Term", "start": "2027-08-23", "end": "2027-12-17"},
                       {"code": "2274", "name": "Spring 2028", "start": "2028-01-10", "end": "2028-05-05"}]}
    return [YamlFile("environments/_base/terms.yaml", Kind.TERMS, terms)]


def test_new_term_needs_a_name_when_the_old_one_has_no_year() -> None:
    with pytest.raises(UsageError, match="pass --name"):
        rollover.new_term(_files(), "2282", "2272", None, None, None)
    made = rollover.new_term(_files(), "2282", "2272", "Fall 2028", None, None)
    assert (made.start, made.end) == (date(2028, 8, 23), date(2028, 12, 17))


def test_new_term_with_only_a_start_keeps_the_length() -> None:
    made = rollover.new_term(_files(), "2284", None, None, date(2029, 1, 15), None)
    assert made.like == "2274" and made.name == "Spring 2029"
    assert made.end - made.start == date(2028, 5, 5) - date(2028, 1, 10)


@pytest.mark.parametrize(
    ("old", "taken", "expected"),
    [
        pytest.param("open-scheduling", set(), "open-scheduling-2282", id="code-appended"),
        pytest.param("fall-2027-review", set(), "fall-2028-review", id="year-moved"),
        pytest.param("review-2272", set(), "review-2282", id="code-replaced"),
        pytest.param("open-scheduling", {"open-scheduling-2282"}, "open-scheduling-2282-2", id="unique"),
    ],
)
def test_phase_names_for_the_new_term(old: str, taken: set[str], expected: str) -> None:
    term = NewTerm("2282", "Fall 2028", date(2028, 8, 23), date(2028, 12, 17), "2272", date(2027, 8, 23))
    assert rollover.phase_name(old, term, taken) == expected


def test_a_leap_day_moves_to_the_28th() -> None:
    assert rollover.next_year(date(2028, 2, 29)) == date(2029, 2, 28)
