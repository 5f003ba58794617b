"""`reconciler report`: the HTML page on the example repository after an apply, and the pure builder."""

from __future__ import annotations

import html
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import reconciler.cli.report as report_cli
import reconciler.engine as engine_clock
from reconciler.core.plan import Action, Blocked, Change, EnvPlan
from reconciler.core.render import change_line
from reconciler.core.report import Bar, EnvironmentView, environment_view, report_html, timeline_bars
from reconciler.core.timeline import Timeline
from reconciler.repo import load_repository

CHICAGO = ZoneInfo("America/Chicago")
APPLIED_AT = datetime(2026, 11, 25, 12, 5, tzinfo=CHICAGO)
GENERATED = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
RANGE = ("--at", "2026-12-01T00:00", "--days", "14")
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source", "track"}


class TagChecker(HTMLParser):
    """Every non-void tag closed in order; counts of a few tags and the text, for assertions."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.seen: dict[str, int] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen[tag] = self.seen.get(tag, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [], checker.errors[:5]
    assert checker.stack == [], checker.stack
    return checker


@pytest.fixture
def applied(cli, repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """The example repository, applied at a fixed time with a message; the report's clock fixed too."""
    monkeypatch.setattr(engine_clock, "now", lambda: APPLIED_AT)
    monkeypatch.setattr(report_cli, "now", lambda: GENERATED)
    result = cli("--root", str(repo), "apply", "--yes", "--message", "first rollout")
    assert result.code == 0, result.err
    return repo


def test_report_after_apply_shows_every_environment(cli, applied: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "site"
    result = cli("--root", str(applied), "report", *RANGE, "--out", str(out))
    assert result.code == 0, result.err
    assert result.lines == [f"report written to {out / 'index.html'}"]
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    page = (out / "index.html").read_text(encoding="utf-8")
    checker = parsed(page)
    assert checker.seen["html"] == checker.seen["body"] == checker.seen["main"] == 1
    for name in load_repository(applied).envs:
        assert f'<section class="env" id="env-{name}"><h2>{name}</h2>' in page
    assert "Generated Mon 2026-11-30 12:00 -06:00" in page  # every environment is in Chicago: its zone
    # the one-off window on 2026-12-05 is a bar, with its local times in the tooltip, and a transition
    assert '<span class="bar-label">banner-upgrade-2026-12</span></div>' in page
    assert "banner-upgrade-2026-12: Sat 2026-12-05 20:00 -06:00 → Sun 2026-12-06 03:30 -06:00" in page
    assert ('<th scope="row">Sat 2026-12-05 20:00 -06:00</th><td>window-start</td>'
            "<td>banner-upgrade-2026-12</td>") in page
    assert "weekly-hosted-updates" in page and "final-review" in page
    # the apply shows as the applied record and as recent activity
    assert "first rollout" in page
    assert "Wed 2026-11-25 12:05 -06:00 by " in page
    assert page.count('<table class="activity">') == 3
    assert "Fall 2026 (202710)" in page  # terms by name
    assert "<script" not in page


def test_report_shows_a_pending_change_and_escapes_values(cli, applied: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env_file = applied / "environments" / "staging" / "environment.yaml"
    env_file.write_text(env_file.read_text().replace(
        "institution: Example State University", 'institution: "<script>alert(1)</script> & Co"'))
    merge = applied / "environments" / "staging" / "merge-settings.yaml"
    merge.write_text(merge.read_text().replace("realtime: false", "realtime: true"))
    out = tmp_path / "site"
    result = cli("--root", str(applied), "report", "staging", *RANGE, "--out", str(out))
    assert result.code == 0, result.err
    page = (out / "index.html").read_text(encoding="utf-8")
    parsed(page)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    line = change_line(Change(Action.CHANGE, "schedule.realtime", before=False, after=True))
    assert f'<li class="change">{html.escape(line)}</li>' in page
    assert '<span class="pending">1 change pending</span>' in page
    assert "env-production" not in page


def test_report_says_why_a_pending_change_is_there(cli, repo: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's plan has each change's cause, as `plan` does: here the commit that turned real-time on."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                              timeout=30).stdout.strip()

    monkeypatch.setattr(engine_clock, "now", lambda: APPLIED_AT)
    monkeypatch.setattr(report_cli, "now", lambda: GENERATED)
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "The example repository")
    assert cli("--root", str(repo), "apply", "staging", "--yes").code == 0
    merge = repo / "environments" / "staging" / "merge-settings.yaml"
    merge.write_text(merge.read_text().replace("realtime: false", "realtime: true"))
    git("commit", "-qam", "Turn real-time merges on in staging (REG-7)")
    out = tmp_path / "site"
    result = cli("--root", str(repo), "report", "staging", *RANGE, "--out", str(out))
    assert result.code == 0, result.err
    page = (out / "index.html").read_text(encoding="utf-8")
    sha = git("rev-parse", "HEAD")[:7]
    line = (f'~ schedule.realtime: false → true  (commit {sha} "Turn real-time merges on in staging (REG-7)" '
            "by Test Registrar)")
    assert f'<li class="change">{html.escape(line)}</li>' in page


def test_out_that_is_a_file_is_refused(cli, applied: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "taken"
    target.write_text("keep me")
    result = cli("--root", str(applied), "report", "--out", str(target))
    assert result.code == 1
    assert result.err.strip() == f"error: --out {target}: exists and is not a folder"
    assert target.read_text() == "keep me"


def test_default_out_is_in_the_current_folder_and_a_link_is_replaced_not_followed(  # type: ignore[no-untyped-def]
        cli, applied: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    (work / "reconciler-report").mkdir(parents=True)
    outside = tmp_path / "outside.html"
    outside.write_text("untouched")
    (work / "reconciler-report" / "index.html").symlink_to(outside)
    monkeypatch.chdir(work)
    result = cli("--root", str(applied), "report", *RANGE)
    assert result.code == 0, result.err
    page = work / "reconciler-report" / "index.html"
    assert not page.is_symlink() and "reconciler report" in page.read_text()
    assert outside.read_text() == "untouched"
    assert result.out.strip() == "report written to reconciler-report/index.html"


def test_help_has_an_example(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("report", "--help")
    assert result.code == 0
    assert "Example: reconciler report" in result.out and "--days" in result.out


# --- the pure builder ---------------------------------------------------------------------------


def _view(**overrides: object) -> EnvironmentView:
    start = datetime(2026, 12, 1, 6, tzinfo=UTC)
    values: dict[str, object] = {
        "name": "prod<1>", "institution": "A & B", "sis": "banner", "timezone": "America/Chicago",
        "applied": {"revision": "abcdef1234567890", "at": "2026-11-25T18:05:00+00:00", "actor": "ana"},
        "plan": EnvPlan("prod<1>", None, "sha256:x", (Change(Action.ADD, "merges.courses.terms", value="2027'30"),),
                        (Blocked("merges.sections.terms", "202730", "not rolled in the SIS"),), ("mind <this>",)),
        "phases": {"202720": "final-review"}, "active_windows": (),
        "bars": (Bar("windows", "w<x>", start + timedelta(days=1), start + timedelta(days=2), "SUP-1 <b>"),
                 Bar("terms", "202710 Fall 2026", start - timedelta(days=90), start + timedelta(days=30))),
        "transitions": (), "activity": ({"at": "2026-11-25T18:05:00+00:00", "kind": "apply", "actor": "ana",
                                         "outcome": "applied", "message": "go <now>", "changes": 3},),
    }
    values.update(overrides)
    return EnvironmentView(**values)  # type: ignore[arg-type]


def test_builder_escapes_and_places_bars() -> None:
    start = datetime(2026, 12, 1, 6, tzinfo=UTC)
    page = report_html([_view()], at=start, days=10, generated=GENERATED)
    parsed(page)
    assert "<x>" not in page and "<b>" not in page and "<this>" not in page and "<now>" not in page
    assert 'id="env-prod&lt;1&gt;"' in page and "A &amp; B" in page
    assert "+ merges.courses.terms 2027&#x27;30" in page
    assert '<li class="blocked">! merges.sections.terms 202730: not rolled in the SIS</li>' in page
    assert '<li class="warning">warning: mind &lt;this&gt;</li>' in page
    assert ('style="left:10.0%;width:10.0%" title="w&lt;x&gt;: Wed 2026-12-02 00:00 -06:00 → '
            'Thu 2026-12-03 00:00 -06:00') in page
    assert 'style="left:0.0%;width:100.0%"' in page  # a term wider than the range is clipped to it
    assert "revision abcdef123456, Wed 2026-11-25 12:05 -06:00 by ana" in page
    assert "go &lt;now&gt;; 3 changes" in page
    assert '<span class="pending">1 change pending, 1 blocked</span>' in page


def test_builder_in_sync_and_empty() -> None:
    start = datetime(2026, 12, 1, 6, tzinfo=UTC)
    view = _view(plan=EnvPlan("e", None, "sha256:x"), applied=None, bars=(), activity=(), phases={})
    page = report_html([view], at=start, days=3, generated=GENERATED)
    parsed(page)
    assert '<span class="ok">in sync</span>' in page
    assert "No changes. Live matches the desired state." in page
    assert "<dd>never</dd>" in page and "No activity recorded." in page and "No transitions in this range." in page
    assert page.count('class="tick"') == 3  # local midnights Dec 1, 2 and 3 (the range starts at Dec 1 00:00 CST)


def test_view_of_the_example_repository(repo: Path) -> None:
    spec = load_repository(repo).envs["production"]
    at = datetime(2026, 12, 5, 21, tzinfo=CHICAGO)
    view = environment_view(spec, {"activity": [{"kind": "apply"}] * 25}, EnvPlan("production", None, "x"), at, 14)
    assert view.active_windows == (
        "banner-upgrade-2026-12 (Banner 9.4 upgrade, SUP-1234) until Sun 2026-12-06 03:30 -06:00",)
    assert view.phases == {"202720": "final-review"}
    assert len(view.activity) == 20 and view.applied is None
    lanes = {(b.lane, b.label) for b in view.bars}
    assert {("terms", "Fall 2026 (202710)"), ("phases", "final-review"), ("windows", "weekly-hosted-updates")} <= lanes
    assert ("windows", "banner-upgrade-2026-12") in lanes  # active at `at`: it overlaps the range
    bars = timeline_bars(Timeline.from_spec(spec), at + timedelta(days=400), at + timedelta(days=407))
    assert bars and all(b.lane == "windows" for b in bars)  # terms and phases are over by then
