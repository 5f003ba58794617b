"""Issue 13's validation: duplicates, date order, ranges, anchored patterns, the YAML dialect's last
traps, floods and never-ending windows, names of environments that do not exist, and times over
environments in different zones.

Every case of the table writes one mistake into a copy of the example repository, next to an
independent problem planted in another environment (a warning, so that a warning case still exits 0),
and checks the exit code, the rule at FILE:LINE:COL, and that the planted problem is still reported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HEADER = "apiVersion: reconciler/v1\n"
PLANTED = "environments/staging/maintenance.yaml:5:5: warning[window-overlap]"
PLANTED_FILE = HEADER + """kind: MaintenanceWindows
windows:
  - {id: planted-a, reason: planted, start: 2020-01-01T00:00, end: 2020-01-01T02:00}
  - {id: planted-b, reason: planted, start: 2020-01-01T01:00, end: 2020-01-01T03:00}
"""


def write(root: Path, rel: str, text: str) -> None:
    path = root / "environments" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / "environments" / rel
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (rel, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


# --- the documents the cases write --------------------------------------------------------------

def access(*users: str) -> str:
    lines = "".join(f"  - {{email: {u}, products: [scheduling]}}\n" for u in users)
    return HEADER + "kind: Access\nusers:\n" + lines


def phases(*rows: tuple[str, str, str]) -> str:
    lines = "".join(
        f'  - {{name: {name}, term: "202720", start: {start}, end: {end}, editable: ["*"], editors: [registrar]}}\n'
        for name, start, end in rows
    )
    return HEADER + "kind: Phases\nphases:\n" + lines


def terms(*rows: tuple[str, str, str]) -> str:
    lines = "".join(f'  - {{code: "{code}", name: T, start: {start}, end: {end}}}\n' for code, start, end in rows)
    return HEADER + "kind: Terms\nterms:\n" + lines


ONE_TERM = ("202720", "2027-01-11", "2027-05-07")
OTHER_TERMS = (("202710", "2026-08-24", "2026-12-18"), ("202730", "2027-05-24", "2027-08-06"))


def windows(*rows: str) -> str:
    return HEADER + "kind: MaintenanceWindows\nwindows:\n" + "".join(f"  - {{{row}}}\n" for row in rows)


def weekly(wid: str = "w", every: str = "FREQ=WEEKLY;BYDAY=SU", start: str = '"04:00"', duration: str = "5h") -> str:
    return f'id: {wid}, reason: r, every: "{every}", start: {start}, duration: {duration}'


def once(wid: str = "o", start: str = "2027-02-01T20:00", end: str = "2027-02-01T22:00") -> str:
    return f"id: {wid}, reason: r, start: {start}, end: {end}"


def requests(*rows: str) -> str:
    return HEADER + "kind: UpdateRequests\nrequests:\n" + "".join(f"  - {{{row}}}\n" for row in rows)


def refresh(rid: str = "r1", site: str = "staging", source: str = "production") -> str:
    return f"id: {rid}, site: {site}, action: db-refresh, source: {source}, preferred: 2027-01-03T04:00"


def sandbox_env(extra: str = "", **values: str) -> str:
    fields = {"name": "sandbox", "timezone": "America/Chicago", **values}
    return HEADER + (
        "kind: Environment\n"
        f"name: {fields['name']}\n"
        "sis: banner\n"
        f"timezone: {fields['timezone']}\n"
    ) + extra


# (files to write, exit code, "FILE:LINE:COL: severity[rule]", words in the message)
CASES = [
    # --- duplicate-id: the five, then layered, case-folded and repeated ones ---
    pytest.param({"sandbox/access.yaml": access("a@example.edu", "b@example.edu", "a@example.edu")}, 1,
                 "environments/sandbox/access.yaml:6:13: error[duplicate-id]",
                 "user email 'a@example.edu' is given twice (first on line 4)", id="duplicate-user"),
    pytest.param({"sandbox/phases.yaml": phases(("p", "2026-10-01", "2026-10-05"), ("p", "2026-11-01", "2026-11-05"))},
                 1, "environments/sandbox/phases.yaml:5:12: error[duplicate-id]", "phase name 'p' is given twice",
                 id="duplicate-phase"),
    pytest.param({"sandbox/maintenance.yaml": windows(once("x"), once("x", "2027-03-01T20:00", "2027-03-01T21:00"))},
                 1, "environments/sandbox/maintenance.yaml:5:10: error[duplicate-id]", "window id 'x' is given twice",
                 id="duplicate-window"),
    pytest.param({"sandbox/updates.yaml": requests(refresh("r1"), refresh("r1"))}, 1,
                 "environments/sandbox/updates.yaml:5:10: error[duplicate-id]", "request id 'r1' is given twice",
                 id="duplicate-request"),
    pytest.param({"sandbox/terms.yaml": terms(*OTHER_TERMS, ONE_TERM, ONE_TERM)}, 1,
                 "environments/sandbox/terms.yaml:7:12: error[duplicate-id]", "term code '202720' is given twice",
                 id="duplicate-term"),
    pytest.param({"_base/terms.yaml": terms(("202710", "2026-08-24", "2026-12-18"), ONE_TERM,
                                            ("202730", "2027-05-24", "2027-08-06"), ONE_TERM)}, 1,
                 "environments/_base/terms.yaml:7:12: error[duplicate-id]",
                 "term code '202720' is given twice (first on line 5)",
                 id="duplicate-term-in-base"),
    pytest.param({"sandbox/access.yaml": access("a@example.edu", "A@Example.edu")}, 1,
                 "environments/sandbox/access.yaml:5:13: error[duplicate-id]", "(first on line 4 as 'a@example.edu')",
                 id="duplicate-user-case"),
    pytest.param({"sandbox/access.yaml": access("a@example.edu", "a@example.edu", "a@example.edu")}, 1,
                 "environments/sandbox/access.yaml:6:13: error[duplicate-id]", "(first on line 4)",
                 id="duplicate-user-thrice"),
    # --- date-order ---
    pytest.param({"sandbox/phases.yaml": phases(("p", "2026-11-05", "2026-11-01"))}, 1,
                 "environments/sandbox/phases.yaml:4:55: error[date-order]",
                 "phase 'p' ends (2026-11-01) before it starts (2026-11-05)", id="phase-ends-first"),
    pytest.param({"sandbox/phases.yaml": phases(("p", "2026-11-05", "2026-11-05"))}, 1,
                 "environments/sandbox/phases.yaml:4:55: error[date-order]",
                 "phase 'p' ends on the day it starts (2026-11-05)", id="phase-equal-dates"),
    pytest.param({"sandbox/terms.yaml": terms(*OTHER_TERMS, ("202720", "2027-05-07", "2027-01-11"))}, 1,
                 "environments/sandbox/terms.yaml:6:55: error[date-order]",
                 "term '202720' ends (2027-01-11) before it starts (2027-05-07)", id="term-ends-first"),
    pytest.param({"sandbox/terms.yaml": terms(*OTHER_TERMS, ("202720", "2027-01-11", "2027-01-11"))}, 1,
                 "environments/sandbox/terms.yaml:6:55: error[date-order]", "ends on the day it starts",
                 id="term-equal-dates"),
    # --- ranges: NaN, infinity, too big, years, durations ---
    pytest.param({"sandbox/environment.yaml": sandbox_env("safety: {max_removal_ratio: .nan}\n")}, 1,
                 "environments/sandbox/environment.yaml:6:29: error[schema]", "'.nan' is not of type 'number'",
                 id="nan-ratio"),
    pytest.param({"sandbox/environment.yaml": sandbox_env("safety: {max_removal_ratio: .inf}\n")}, 1,
                 "environments/sandbox/environment.yaml:6:29: error[schema]", "'.inf' is not of type 'number'",
                 id="inf-ratio"),
    pytest.param({"sandbox/environment.yaml": sandbox_env("safety: {max_removal_ratio: -.Inf}\n")}, 1,
                 "environments/sandbox/environment.yaml:6:29: error[schema]", "is not of type 'number'",
                 id="minus-inf-ratio"),
    pytest.param({"sandbox/environment.yaml": sandbox_env("safety: {max_removal_ratio: 1e999}\n")}, 1,
                 "environments/sandbox/environment.yaml:6:29: error[schema]", "'1e999' is not of type 'number'",
                 id="float-overflow"),
    pytest.param({"sandbox/environment.yaml": sandbox_env("safety: {max_removals: 10000000}\n")}, 1,
                 "environments/sandbox/environment.yaml:6:24: error[schema]", "is greater than the maximum",
                 id="removals-too-many"),
    pytest.param({"sandbox/environment.yaml": sandbox_env("safety: {max_removals: " + "9" * 5000 + "}\n")}, 1,
                 "environments/sandbox/environment.yaml:6:24: error[schema]", "is not of type 'integer'",
                 id="integer-too-long"),
    pytest.param({"sandbox/maintenance.yaml": windows(once(end="9999-12-31T23:00"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:54: error[schema]",
                 "windows[0].end: must be a date and time in the years 1900 to 2200", id="year-9999"),
    pytest.param({"sandbox/terms.yaml": terms(*OTHER_TERMS, ("202720", "1899-12-31", "2027-05-07"))}, 1,
                 "environments/sandbox/terms.yaml:6:38: error[schema]",
                 "terms[2].start: must be a date in the years 1900 to 2200", id="year-1899"),
    pytest.param({"sandbox/phases.yaml": phases(("p", "2026-11-01", "2201-01-01"))}, 1,
                 "environments/sandbox/phases.yaml:4:55: error[schema]", "must be a date in", id="year-2201"),
    pytest.param({"sandbox/updates.yaml": requests(refresh().replace("2027-01-03T04:00", "0001-01-01T00:00"))}, 1,
                 "environments/sandbox/updates.yaml:4:80: error[schema]", "must be a date and time in", id="year-1"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(every="FREQ=WEEKLY;BYDAY=SU;UNTIL=99991231"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:31: error[schema]", "UNTIL=99991231 is outside the years",
                 id="until-9999"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(every="FREQ=WEEKLY;INTERVAL=2;BYDAY=SU",
                                                             start="9999-01-03T04:00"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:73: error[schema]", "is not valid under any",
                 id="start-9999"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(duration="99999999d"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:81: error[schema]", "does not match", id="duration-huge"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(duration="367d"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:81: error[schema]", "'367d' is longer than 366 days",
                 id="duration-over-a-year"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(duration="-5h"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:81: error[schema]", "does not match", id="duration-negative"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(duration="PT5H"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:81: error[schema]", "does not match", id="duration-iso"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(duration="0h"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:81: error[window-order]", "not positive", id="duration-zero"),
    # --- patterns anchored at both ends: a trailing newline on every patterned field ---
    pytest.param({"sandbox/terms.yaml": terms(*OTHER_TERMS, ("202720\\n", "2027-01-11", "2027-05-07"))}, 1,
                 "environments/sandbox/terms.yaml:6:12: error[schema]", "does not match", id="newline-term-code"),
    pytest.param({"sandbox/phases.yaml": phases(("'p\\n'", "2026-10-01", "2026-10-05")).replace("'p\\n'", '"p\\n"')},
                 1, "environments/sandbox/phases.yaml:4:12: error[schema]", "does not match", id="newline-phase-name"),
    pytest.param({"sandbox/maintenance.yaml": windows(once('"w\\n"'))}, 1,
                 "environments/sandbox/maintenance.yaml:4:10: error[schema]", "does not match", id="newline-window-id"),
    pytest.param({"sandbox/access.yaml": access('"a@example.edu\\n"')}, 1,
                 "environments/sandbox/access.yaml:4:13: error[schema]", "does not match", id="newline-email"),
    pytest.param({"sandbox/updates.yaml": requests(refresh('"r1\\n"'))}, 1,
                 "environments/sandbox/updates.yaml:4:10: error[schema]", "does not match", id="newline-request-id"),
    pytest.param({"sandbox/updates.yaml": requests(refresh(site='"staging\\n"'))}, 1,
                 "environments/sandbox/updates.yaml:4:20: error[schema]", "does not match", id="newline-site"),
    pytest.param({"sandbox/environment.yaml": sandbox_env('promotes_from: "staging\\n"\n')}, 1,
                 "environments/sandbox/environment.yaml:6:16: error[schema]", "does not match",
                 id="newline-promotes-from"),
    pytest.param({"sandbox/environment.yaml": sandbox_env('hosting: {plan: hosted, version: "E.1505.2\\n"}\n')}, 1,
                 "environments/sandbox/environment.yaml:6:34: error[schema]", "does not match", id="newline-version"),
    pytest.param({"sandbox/environment.yaml": sandbox_env('live: {connector: embedded, token_env: "TOKEN\\n"}\n')},
                 1, "environments/sandbox/environment.yaml:6:40: error[schema]", "does not match",
                 id="newline-token-env"),
    pytest.param({"sandbox/environment.yaml": sandbox_env('live: {connector: "http\\n", url: "https://x.edu"}\n')},
                 1, "environments/sandbox/environment.yaml:6:19: error[schema]", "does not match",
                 id="newline-connector"),
    pytest.param({"sandbox/environment.yaml": sandbox_env('live: {connector: http, url: "https://x.edu/api\\n"}\n')},
                 1, "environments/sandbox/environment.yaml:6:30: error[schema]", "does not match", id="newline-url"),
    pytest.param({"sandbox/merge-settings.yaml": HEADER + 'kind: MergeSettings\nmerges:\n'
                  '  courses: {terms: ["202710\\n"]}\n'}, 1,
                 "environments/sandbox/merge-settings.yaml:4:21: error[schema]", "does not match",
                 id="newline-scope-term"),
    pytest.param({"sandbox/phases.yaml": phases(("p", "2026-10-01", "2026-10-05")).replace(
        'editable: ["*"]', 'editable: ["rooms\\n"]')}, 1,
                 "environments/sandbox/phases.yaml:4:78: error[schema]", "does not match", id="newline-field-name"),
    pytest.param({"sandbox/access.yaml": HEADER + 'kind: Access\nroles:\n  "registrar\\n": {edit_sections: allow}\n'},
                 1, "environments/sandbox/access.yaml:4:3: error[schema]", "does not match", id="newline-role-name"),
    pytest.param({"sandbox/maintenance.yaml": windows(once(start='"2027-02-01T20:00\\n"'))}, 1,
                 "environments/sandbox/maintenance.yaml:4:31: error[schema]", "is not a valid local-datetime",
                 id="newline-datetime"),
    # --- the dialect: tags, and YAML 1.2 line breaks ---
    pytest.param({"sandbox/access.yaml": HEADER + "kind: Access\nusers: ! 123\n"}, 1,
                 "environments/sandbox/access.yaml:3:8: error[yaml]", "tags are not allowed (!)", id="bare-tag"),
    pytest.param({"sandbox/access.yaml": HEADER + "kind: Access\nusers: !!seq []\n"}, 1,
                 "environments/sandbox/access.yaml:3:8: error[yaml]", "tags are not allowed", id="core-tag"),
    pytest.param({"sandbox/access.yaml": access("a@example.edu", "a@example.edu").replace(
        "kind: Access\n", "kind: Access # pasted\u2028users: [] \u2029 NEL\x85: x\n")}, 1,
                 "environments/sandbox/access.yaml:5:13: error[duplicate-id]", "", id="line-separators-in-a-comment"),
    # --- windows: floods, never ending, BYHOUR over start, DST gap, RRULE: prefix, overlaps ---
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(every="FREQ=DAILY;BYHOUR=1,2,3,4,5,6;BYMINUTE=0,30",
                                                             duration="10m"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:31: error[window-flood]",
                 "starts more than 2,000 times a year", id="flood-byhour-byminute"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(every="FREQ=HOURLY;BYSECOND=0,30", duration="1m"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:31: error[window-flood]", "2,000", id="flood-bysecond"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(every="FREQ=HOURLY", duration="10m"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:31: error[window-flood]", "2,000", id="flood-hourly"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly("bad", every="FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"),
                                                      weekly(every="FREQ=HOURLY", duration="10m"))}, 1,
                 "environments/sandbox/maintenance.yaml:5:31: error[window-flood]", "2,000",
                 id="flood-next-to-an-unreadable-window"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(every="FREQ=DAILY", duration="25h"))}, 0,
                 "environments/sandbox/maintenance.yaml:4:71: warning[window-always]",
                 "lasts 25h, as long as the 1d between its starts or longer", id="always-daily-25h"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(duration="7d"))}, 0,
                 "environments/sandbox/maintenance.yaml:4:81: warning[window-always]", "lasts 7d",
                 id="always-weekly-7d"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(every="FREQ=DAILY;BYHOUR=3"))}, 0,
                 "environments/sandbox/maintenance.yaml:4:31: warning[window-start]",
                 "BYHOUR=3 in its rule sets when each occurrence starts, not start '04:00'", id="byhour-over-start"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(every="FREQ=DAILY;BYMINUTE=15"))}, 0,
                 "environments/sandbox/maintenance.yaml:4:31: warning[window-start]", "BYMINUTE=15",
                 id="byminute-over-start"),
    pytest.param({"sandbox/maintenance.yaml": windows(once(start="2027-03-14T02:30", end="2027-03-14T03:10"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:54: error[window-order]",
                 "starts at 2027-03-14T02:30, a time that does not exist in America/Chicago (clocks go forward); "
                 "it is read as 2027-03-14T03:30-05:00", id="dst-gap"),
    pytest.param({"sandbox/maintenance.yaml": windows(once(start="2027-03-14T03:10", end="2027-03-14T02:30"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:54: error[window-order]", "ends (2027-03-14T02:30) before it",
                 id="reversed-near-gap"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(every="RRULE:FREQ=WEEKLY;BYDAY=XX"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:31: error[schema]", "is not an RRULE", id="rrule-prefix-bad"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly(every="FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"))}, 1,
                 "environments/sandbox/maintenance.yaml:4:31: error[schema]", "never occurs", id="rule-never-occurs"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly("a"), weekly("b", start='"08:00"'))}, 0,
                 "environments/sandbox/maintenance.yaml:5:5: warning[window-overlap]", "window 'b' overlaps 'a' on",
                 id="overlap-recurring"),
    pytest.param({"sandbox/maintenance.yaml": windows(weekly("a"), once("b", "2027-01-03T08:00", "2027-01-03T10:00"))},
                 0, "environments/sandbox/maintenance.yaml:5:5: warning[window-overlap]",
                 "overlaps 'a' on 2027-01-03T08:00-06:00", id="overlap-one-off-in-recurring"),
    # --- unknown-site: request site and source, hosting.linked; promotes_from itself and cycles ---
    pytest.param({"sandbox/updates.yaml": requests(refresh(site="stagin"))}, 1,
                 "environments/sandbox/updates.yaml:4:20: error[unknown-site]",
                 "site names 'stagin', which is no loadable environment (did you mean 'staging'?)",
                 id="request-site"),
    pytest.param({"sandbox/updates.yaml": requests(refresh(source="prod"))}, 1,
                 "environments/sandbox/updates.yaml:4:57: error[unknown-site]", "source names 'prod'",
                 id="request-source"),
    pytest.param({"sandbox/environment.yaml": sandbox_env("hosting: {plan: hosted, linked: [staging, qa]}\n")}, 1,
                 "environments/sandbox/environment.yaml:6:43: error[unknown-site]", "hosting.linked names 'qa'",
                 id="linked-nothing"),
    pytest.param({"sandbox/environment.yaml": sandbox_env("promotes_from: sandbox\n")}, 1,
                 "environments/sandbox/environment.yaml:6:16: error[unknown-site]",
                 "promotes_from names this environment itself", id="promotes-from-itself"),
    pytest.param({"sandbox/environment.yaml": sandbox_env("promotes_from: staging\n")}, 1,
                 "environments/sandbox/environment.yaml:6:16: error[unknown-site]",
                 "promotes_from names a cycle: sandbox → staging → sandbox", id="promotion-cycle-2"),
    pytest.param({"sandbox/environment.yaml": sandbox_env("promotes_from: production\n")}, 1,
                 "environments/sandbox/environment.yaml:6:16: error[unknown-site]",
                 "a cycle: sandbox → production → staging → sandbox", id="promotion-cycle-3"),
]


@pytest.mark.parametrize(("files", "code", "expected", "words"), CASES)
def test_each_mistake_is_reported_at_its_value(repo: Path, cli, files: dict[str, str], code: int, expected: str,
                                               words: str) -> None:
    write(repo, "staging/maintenance.yaml", PLANTED_FILE)
    for rel, text in files.items():
        write(repo, rel, text)
    result = cli("--root", str(repo), "validate")
    hits = [line for line in result.lines if line.startswith(expected)]
    assert hits and words in hits[0], result.lines
    assert any(line.startswith(PLANTED) for line in result.lines), result.lines  # nothing lost
    assert result.code == code, result.out + result.err
    assert "Traceback" not in result.out + result.err


def test_a_cycle_is_reported_in_every_environment_of_it(repo: Path, cli) -> None:
    write(repo, "sandbox/environment.yaml", sandbox_env("promotes_from: production\n"))
    result = cli("--root", str(repo), "validate")
    cycles = [line.split(":")[0] for line in result.lines if "error[unknown-site]: promotes_from names a cycle" in line]
    assert cycles == [f"environments/{env}/environment.yaml" for env in ("production", "sandbox", "staging")]


@pytest.mark.parametrize("every", ["RRULE:FREQ=WEEKLY;BYDAY=SU", "FREQ=WEEKLY;BYDAY=SA,SU"])
def test_valid_windows_stay_clean(repo: Path, cli, every: str) -> None:
    """The RRULE: prefix calendars write is a rule; a weekend window of 30h resumes midweek."""
    write(repo, "sandbox/maintenance.yaml", windows(weekly(every=every, duration="30h")))
    result = cli("--root", str(repo), "validate", "--strict")
    assert result.code == 0, result.lines
    assert result.lines == []


def test_line_separators_are_plain_characters_in_values(repo: Path, cli) -> None:
    write(repo, "sandbox/maintenance.yaml", windows(once().replace("reason: r", "reason: a\u2028b\x85c")))
    assert cli("--root", str(repo), "validate", "--strict", "sandbox").code == 0
    from reconciler.model import Kind
    from reconciler.repo import load_repository

    spec = load_repository(repo).envs["sandbox"]
    assert (spec.data(Kind.MAINTENANCE) or {})["windows"][0]["reason"] == "a\u2028b\x85c"


def test_every_schema_pattern_is_anchored_and_refuses_a_trailing_newline() -> None:
    from reconciler.resources import load_schemas, python_pattern, schema_dir

    for path in sorted(schema_dir().glob("*.schema.json")):
        for pattern in _patterns(json.loads(path.read_text(encoding="utf-8"))):
            assert pattern.startswith("^") and pattern.endswith("$"), (path.name, pattern)
            re.compile(python_pattern(pattern))
    translated = [p for schema in load_schemas().values() for p in _patterns(schema)]
    assert translated and all("$" not in p for p in translated)
    assert re.search(python_pattern("^[0-9]+$"), "202710\n") is None
    assert re.search(python_pattern(r"^\d$"), "\u0663") is None  # ECMA's \d is ASCII


def _patterns(node: object) -> list[str]:
    if isinstance(node, list):
        return [p for item in node for p in _patterns(item)]
    if not isinstance(node, dict):
        return []
    found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
    found += list(node.get("patternProperties", {}))
    # A pattern under `not` refuses what it finds (a query string in a URL, a year out of range): it searches.
    return found + [p for key, value in node.items() if key != "not" for p in _patterns(value)]


def test_the_duration_grammar_is_one_fact() -> None:
    from reconciler.core.clock import DURATION_PATTERN
    from reconciler.resources import schema_dir

    schema = json.loads((schema_dir() / "maintenance.schema.json").read_text(encoding="utf-8"))
    window = schema["properties"]["windows"]["items"]["properties"]
    assert window["duration"]["pattern"] == f"^{DURATION_PATTERN}$"


# --- times over environments in different zones ---------------------------------------------------

def _london_sandbox(repo: Path) -> None:
    edit(repo, "sandbox/environment.yaml", "timezone: America/Chicago", "timezone: Europe/London")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("plan", "--at", "2026-12-05T22:00"), id="plan-at"),
        pytest.param(("status", "--at", "2026-12-05T22:00"), id="status-at"),
        pytest.param(("schedule", "--from", "2026-12-01"), id="schedule-from"),
        pytest.param(("schedule", "--from", "2026-12-01T00:00Z", "--to", "2026-12-05T22:00"), id="schedule-to"),
        pytest.param(("term", "expire", "--at", "2027-01-01"), id="term-expire-at"),
    ],
)
def test_a_time_without_offset_over_several_zones_is_refused(repo: Path, cli, args: tuple[str, ...]) -> None:
    _london_sandbox(repo)
    result = cli("--root", str(repo), *args)
    assert result.code == 1, result.out + result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    assert "has no UTC offset, and the environments are in different zones" in lines[0]
    assert "America/Chicago: production, staging; Europe/London: sandbox" in lines[0]


def test_a_time_with_an_offset_or_one_zone_is_read(repo: Path, cli) -> None:
    _london_sandbox(repo)
    assert cli("--root", str(repo), "plan", "--at", "2026-12-05T22:00-06:00").code == 0
    assert cli("--root", str(repo), "status", "production", "staging", "--at", "2026-12-05T22:00").code == 0
    at = json.loads(cli("--root", str(repo), "plan", "sandbox", "--at", "2026-12-05T22:00", "--format", "json").out)
    assert at["at"].startswith("2026-12-05T22:00:00+00:00")


@pytest.mark.parametrize("text", ["9999-12-31T23:00", "0001-01-01"])
def test_an_option_outside_the_years_is_one_line(repo: Path, cli, text: str) -> None:
    result = cli("--root", str(repo), "plan", "production", "--at", text)
    assert result.code == 1
    assert "is outside the years 1900 to 2200" in result.err and "Traceback" not in result.err


# --- speed of the comparing rules: the sweep, not pairs (figures in bench/, no timing here) ------

def test_many_windows_are_compared_by_one_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    """600 weekly windows: the occurrences are expanded once each, not once per pair."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from reconciler.core import window_checks
    from reconciler.core.windows import window_from_data

    tz = ZoneInfo("UTC")  # no spring-forward gap moving a slot onto the next one
    days = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
    made = [window_from_data({"id": f"w{i}", "reason": "r", "every": f"FREQ=WEEKLY;BYDAY={days[i % 7]}",
                              "start": f"{i % 24:02d}:{(i // 24) % 2 * 30:02d}", "duration": "20m"}, tz)
            for i in range(600)]
    calls: list[int] = []
    real = window_checks.spans
    monkeypatch.setattr(window_checks, "spans", lambda ws, lo, hi: calls.append(len(list(ws))) or real(ws, lo, hi))
    at = datetime(2026, 11, 1, tzinfo=UTC)
    found = window_checks.clashes(made, at, at.replace(year=2027))
    assert calls == [600]  # every recurring window expanded in one call, once
    slots = {(w.recurrence.rule, w.recurrence.start_time) for w in made if w.recurrence}
    assert len(found) == 600 - len(slots)  # each repeat of a slot overlaps the first window in it
    assert all(made[c.early].recurrence == made[c.late].recurrence for c in found)


# --- property: a validate-clean repository never makes plan drop an entry -------------------------

_IDS = st.sampled_from(["a", "b", "c", "d"])


@st.composite
def _entries(draw: st.DrawFn) -> dict[str, list[str]]:
    return {kind: draw(st.lists(_IDS, min_size=0, max_size=4)) for kind in ("users", "phases", "windows", "terms")}


def _write_entries(repo: Path, entries: dict[str, list[str]]) -> None:
    write(repo, "sandbox/access.yaml", access(*(f"{u}@example.edu" for u in entries["users"])) if entries["users"]
          else HEADER + "kind: Access\nusers: []\n")
    rows = [(f"p-{name}", f"2026-10-{1 + 2 * i:02d}", f"2026-10-{2 + 2 * i:02d}")
            for i, name in enumerate(entries["phases"])]
    write(repo, "sandbox/phases.yaml", phases(*rows).replace('term: "202720"', 'term: "T-a"') if rows
          else HEADER + "kind: Phases\nphases: []\n")
    wins = [once(f"w-{name}", f"2027-0{1 + i}-01T20:00", f"2027-0{1 + i}-01T21:00")
            for i, name in enumerate(entries["windows"])]
    write(repo, "sandbox/maintenance.yaml",
          windows(*wins) if wins else HEADER + "kind: MaintenanceWindows\nwindows: []\n")
    codes = [*entries["terms"], "a"]
    write(repo, "sandbox/terms.yaml", terms(*((f"T-{c}", "2026-08-24", "2026-12-18") for c in codes)))
    write(repo, "sandbox/merge-settings.yaml", HEADER + "kind: MergeSettings\nmerges:\n  courses: {terms: []}\n"
          "  sections: {terms: []}\n  relationships: {terms: []}\n")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=_entries())
def test_a_clean_validate_never_lets_plan_drop_an_entry(repo: Path, entries: dict[str, list[str]]) -> None:
    from datetime import UTC, datetime

    from reconciler.core.desired import desired_state
    from reconciler.core.timeline import Timeline
    from reconciler.engine.selection import collect_problems
    from reconciler.model import Severity
    from reconciler.repo import load_repository

    _write_entries(repo, entries)
    loaded = load_repository(repo)
    problems, _ = collect_problems(repo, ["sandbox"], at=datetime(2026, 9, 1, tzinfo=UTC), repo=loaded)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    duplicated = any(len(set(v)) < len(v) for v in (*entries.values(), [*entries["terms"], "a"]))
    assert bool(errors) == duplicated, errors  # a duplicate is the only mistake these repositories hold
    if errors:
        assert {p.rule for p in errors} == {"duplicate-id"}
        return
    spec = loaded.envs["sandbox"]
    desired = desired_state(spec)
    timeline = Timeline.from_spec(spec)
    assert len(desired["access"]["users"]) == len(entries["users"])
    assert len(desired["phases"]) == len(entries["phases"])
    assert len(timeline.windows) == len(entries["windows"])
    assert len({t.code for t in timeline.terms}) == len(entries["terms"]) + 1
