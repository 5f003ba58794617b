"""The command line's manners (issue 14, item 7): did-you-mean, a protected apply that asks at a terminal,
NO_COLOR as no-color.org says, and one set of change symbols."""

from __future__ import annotations

import io
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

import reconciler.engine as engine_clock
from reconciler.connectors.embedded import store_path
from reconciler.engine import Engine, Quiet
from reconciler.errors import UsageError

LATER = datetime(2026, 12, 8, 18, 0, tzinfo=UTC)  # a Tuesday: no window open


def test_a_mistyped_command_gets_a_did_you_mean_and_exits_1(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("plna")
    assert result.code == 1  # DESIGN §4: 1 is an error, 2 means changes
    assert "No such command 'plna'. Did you mean 'plan'?" in result.err


def test_a_command_like_nothing_gets_no_guess(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("xyzzy")
    assert result.code == 1 and "No such command 'xyzzy'." in result.err and "Did you mean" not in result.err


def test_a_mistyped_environment_gets_a_did_you_mean(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "plan", "prodution")
    assert result.code == 1
    assert result.err.strip() == ("error: no environment 'prodution' under environments/ (did you mean "
                                  "'production'? have: production, sandbox, staging)")


class Terminal(Quiet):
    """A person at a terminal who answers `answer`."""

    interactive = True

    def __init__(self, answer: bool) -> None:
        super().__init__()
        self.answer, self.shown = answer, ""

    def ask(self, question: str, preface: str = "") -> bool | None:
        self.shown = preface
        return self.answer


@pytest.mark.parametrize("answer", [pytest.param(True, id="yes"), pytest.param(False, id="no")])
def test_a_protected_apply_at_a_terminal_shows_the_plan_and_asks(repo: Path, answer: bool,  # type: ignore[no-untyped-def]
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_clock, "now", lambda: LATER)
    person = Terminal(answer)
    code = Engine(repo, out=person).apply(["production"])
    assert "merges.courses.terms" in person.shown  # the plan, shown before the question
    assert code == (0 if answer else 1)
    assert any("production: applied" in line for line in person.lines) is answer


def test_the_plan_shown_before_the_question_is_in_the_registrar_s_words(repo: Path,  # type: ignore[no-untyped-def]
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_clock, "now", lambda: LATER)
    person = Terminal(False)
    Engine(repo, out=person).apply(["production"])
    shown = person.shown.splitlines()
    assert shown[0] == "production (protected)"
    assert "  + merges.courses.terms Spring 2027 (202720)" in shown
    assert any(line.startswith("  + phases.final-review ") and '"term": "Spring 2027 (202720)"' in line
               for line in shown)


def test_a_protected_apply_without_a_terminal_still_refuses(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_clock, "now", lambda: LATER)
    with pytest.raises(UsageError, match="production is protected"):
        Engine(repo, out=Quiet()).apply(["production"])


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("value", "color"), [
    pytest.param(None, True, id="unset"),
    pytest.param("", True, id="empty-keeps-colour"),
    pytest.param("1", False, id="set"),
    pytest.param("0", False, id="any-non-empty"),
])
def test_no_color_only_when_non_empty(monkeypatch: pytest.MonkeyPatch, value: str | None, color: bool) -> None:
    from reconciler.cli import options

    monkeypatch.setattr(options.sys, "stdout", Tty())
    if value is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", value)
    assert options.use_color() is color


def test_drift_and_plan_print_a_change_with_the_same_symbols(cli, repo: Path,  # type: ignore[no-untyped-def]
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_clock, "now", lambda: LATER)
    assert cli("--root", str(repo), "apply", "sandbox").code == 0
    with closing(sqlite3.connect(store_path(repo))) as conn, conn:
        doc = json.loads(conn.execute("SELECT doc FROM live WHERE env = 'sandbox'").fetchone()[0])
        doc["schedule"]["nightly"] = False
        conn.execute("UPDATE live SET doc = ? WHERE env = 'sandbox'", (json.dumps(doc),))
    drift = cli("--root", str(repo), "drift", "sandbox")
    plan = cli("--root", str(repo), "plan", "sandbox")
    assert "  ~ schedule.nightly: true → false" in drift.lines  # live went from the YAML's true to false
    assert any(line.strip().startswith("~ schedule.nightly: false → true") for line in plan.lines)
