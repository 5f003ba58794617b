"""Apply's gaps: the partial-failure report, `hosting.linked`, and the progress bar (never without a TTY)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import reconciler.cli.options as options_cli
import reconciler.connectors.embedded as embedded
import reconciler.engine as engine_clock
from reconciler.connectors import get_connector
from reconciler.connectors.base import PartialApplyError
from reconciler.core.apply import failure_outcome
from reconciler.core.plan import Action, Change, apply_change
from reconciler.errors import ConnectorError, ReconcilerError
from reconciler.repo import load_repository

CHICAGO = ZoneInfo("America/Chicago")
AT = "2026-11-25T12:10"
LATER = datetime(2026, 11, 25, 12, 5, tzinfo=CHICAGO)
ONLY_SANDBOX = "phases.summer-open-scheduling"  # a change only sandbox's plan has


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_clock, "now", lambda: LATER)


def _fail_on(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """The embedded store refuses the change at `path` (as a platform would, with a ConnectorError)."""

    def failing(doc: dict[str, Any], change: Change) -> dict[str, Any]:
        if change.path == path:
            raise ConnectorError(f"the platform refused {path}")
        return apply_change(doc, change)

    monkeypatch.setattr(embedded, "apply_change", failing)


def _live(repo: Path, env: str) -> dict[str, Any]:
    return get_connector(load_repository(repo).envs[env], repo).read()


def _planned(cli, repo: Path, *envs: str) -> list[str]:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "plan", *envs, "--at", AT, "--format", "json")
    assert result.code == 0, result.err
    return [env["name"] for env in json.loads(result.out)["environments"]]


# --- 1. partial failure -----------------------------------------------------------------------


def test_failed_change_is_reported_recorded_and_apply_converges(  # type: ignore[no-untyped-def]
    cli, repo: Path, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_on(monkeypatch, ONLY_SANDBOX)
    result = cli("--root", str(repo), "apply", "--yes")
    assert result.code == 1
    # the other environments were applied and reported
    assert any(line.startswith("production: applied ") for line in result.lines)
    assert any(line.startswith("staging: applied ") for line in result.lines)
    err = result.err.splitlines()
    assert "sandbox: apply failed" in err
    assert "applied: none" in err  # one transaction: nothing of sandbox was kept
    failed = [line for line in err if line.startswith("failed: ")]
    assert len(failed) == 1 and ONLY_SANDBOX in failed[0] and "the platform refused" in failed[0]
    not_attempted = [line for line in err if line.startswith("not attempted: ")]
    assert len(not_attempted) == 1 and "merges.courses.terms" not in not_attempted[0]
    rolled_back = [line for line in err if line.startswith("rolled back ")]
    assert len(rolled_back) == 1 and "merges.courses.terms" in rolled_back[0]
    assert err[-1].startswith("error: apply failed for sandbox (1 of 3 environments")

    live = _live(repo, "sandbox")
    assert "applied" not in live and "merges" not in live
    entry = live["activity"][-1]
    assert entry["outcome"] == "failed" and entry["kind"] == "apply"
    assert entry["applied"] == []
    assert [c["path"] for c in entry["failed"]] == [ONLY_SANDBOX]
    assert entry["not_attempted"] and all(c["path"] != ONLY_SANDBOX for c in entry["not_attempted"])
    assert entry["rolled_back"] and all(c["path"] != ONLY_SANDBOX for c in entry["rolled_back"])

    monkeypatch.setattr(embedded, "apply_change", apply_change)
    again = cli("--root", str(repo), "apply", "--yes")
    assert again.code == 0, again.err
    assert any(line.startswith("sandbox: applied ") for line in again.lines)
    after = cli("--root", str(repo), "plan", "--at", AT, "--detailed-exitcode")
    assert after.code == 0, after.out


def test_partial_apply_error_splits_the_three_lists(  # type: ignore[no-untyped-def]
    cli, repo: Path, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connector that is not transactional says how many changes it made before the failing one."""
    real = embedded.EmbeddedConnector.apply_changes

    def partial(self, changes, *, record):  # type: ignore[no-untyped-def]
        if self.env != "staging":
            return real(self, changes, record=record)
        real(self, changes[:2], record=record)
        raise PartialApplyError(2, changes[2], "HTTP 500")

    monkeypatch.setattr(embedded.EmbeddedConnector, "apply_changes", partial)
    result = cli("--root", str(repo), "apply", "staging")
    assert result.code == 1
    err = result.err.splitlines()
    applied = next(line for line in err if line.startswith("applied: "))
    assert applied.count(";") == 1  # two changes
    assert next(line for line in err if line.startswith("failed: ")).endswith("(HTTP 500)")
    entry = _live(repo, "staging")["activity"][-1]
    assert entry["outcome"] == "failed"
    assert len(entry["applied"]) == 2 and len(entry["failed"]) == 1
    planned = entry["applied"] + entry["failed"] + entry["not_attempted"]
    assert len(planned) == len({json.dumps(c, sort_keys=True) for c in planned})

    monkeypatch.setattr(embedded.EmbeddedConnector, "apply_changes", real)
    assert cli("--root", str(repo), "apply", "staging").code == 0
    assert cli("--root", str(repo), "plan", "staging", "--at", AT, "--detailed-exitcode").code == 0


def test_failure_outcome_is_general() -> None:
    changes = [Change(Action.ADD, f"p{i}", value=i) for i in range(5)]
    out = failure_outcome(changes, PartialApplyError(2, changes[2], "boom"))
    assert (out.applied, out.failed, out.not_attempted, out.reason) == (
        tuple(changes[:2]), changes[2], tuple(changes[3:]), "boom")
    first = failure_outcome(changes, PartialApplyError(0, changes[0], ConnectorError("no")))
    assert first.applied == () and first.failed == changes[0] and first.not_attempted == tuple(changes[1:])
    middle = failure_outcome(changes, PartialApplyError(0, changes[3], "tx"))
    assert middle.applied == () and middle.rolled_back == tuple(changes[:3]) and middle.not_attempted == (changes[4],)
    unknown = failure_outcome(changes, RuntimeError("lost"))
    assert not unknown.known and unknown.failed is None and unknown.not_attempted == tuple(changes)
    assert unknown.record()["outcome"] == "failed"
    assert isinstance(PartialApplyError(0, changes[0], "x"), ConnectorError)
    assert isinstance(PartialApplyError(0, changes[0], "x"), ReconcilerError)


# --- 2. hosting.linked ------------------------------------------------------------------------


def test_linked_environment_is_planned_with_the_one_it_follows(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    assert _planned(cli, repo, "production") == ["production", "sandbox"]
    assert _planned(cli, repo, "sandbox") == ["sandbox"]
    assert _planned(cli, repo, "staging") == ["staging"]
    assert _planned(cli, repo, "sandbox", "production") == ["sandbox", "production"]
    assert _planned(cli, repo, "production", "staging") == ["production", "sandbox", "staging"]


def test_apply_production_also_applies_sandbox(cli, repo: Path, clock) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "apply", "production", "--yes")
    assert result.code == 0, result.err
    assert [line.split(":")[0] for line in result.lines] == ["production", "sandbox"]
    assert "applied" in _live(repo, "sandbox")
    assert "applied" not in _live(repo, "staging")


def test_saved_plan_applied_to_production_also_applies_sandbox(  # type: ignore[no-untyped-def]
    cli, repo: Path, clock, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    assert cli("--root", str(repo), "plan", "--at", "2026-11-25T12:05", "--out", str(saved)).code == 0
    result = cli("--root", str(repo), "apply", "--plan", str(saved), "production")
    assert result.code == 0, result.err
    assert [line.split(":")[0] for line in result.lines] == ["production", "sandbox"]
    assert "applied" not in _live(repo, "staging")


# --- 3. progress ------------------------------------------------------------------------------


def test_no_progress_bar_without_a_tty(cli, repo: Path, clock) -> None:  # type: ignore[no-untyped-def]
    for args in (("plan", "--at", AT), ("apply", "--yes"), ("plan", "--at", AT, "--format", "json")):
        result = cli("--root", str(repo), *args)
        assert result.code == 0, result.err
        assert "━" not in result.err and "━" not in result.out
    assert json.loads(cli("--root", str(repo), "plan", "--at", AT, "--format", "json").out)


def test_progress_with_a_tty_never_touches_stdout(  # type: ignore[no-untyped-def]
    cli, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(options_cli, "stderr_is_tty", lambda: True)
    result = cli("--root", str(repo), "plan", "--at", AT, "--format", "json")
    assert result.code == 0, result.err
    assert "━" not in result.out
    assert len(json.loads(result.out)["environments"]) == 3
