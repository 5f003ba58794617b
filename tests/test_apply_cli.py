"""`reconciler plan` and `reconciler apply` against the embedded store, end to end, at fixed times."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import reconciler.engine as engine_clock
from reconciler.connectors import get_connector
from reconciler.connectors.embedded import store_path
from reconciler.core.apply import build_plan, safety_problems
from reconciler.core.plan import Action, Change, EnvPlan, fingerprint
from reconciler.repo import load_repository

CHICAGO = ZoneInfo("America/Chicago")
AT = "2026-11-25T12:00"
AT_STAMP = "2026-11-25T12:00:00-06:00"
"""A time as the platform writes it in a record (with its offset)."""
LATER = datetime(2026, 11, 25, 12, 5, tzinfo=CHICAGO)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Fix the apply's `now`; returns a setter."""
    state = {"now": LATER}
    monkeypatch.setattr(engine_clock, "now", lambda: state["now"])

    def set_now(value: datetime) -> None:
        state["now"] = value

    return set_now


def test_plan_on_fresh_store_has_changes(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "plan", "--at", AT, "--detailed-exitcode")
    assert result.code == 2, result.err
    assert "+ merges.courses.terms Fall 2026 (202710)" in result.out  # the term by its name
    plain = cli("--root", str(repo), "plan", "--at", AT)
    assert plain.code == 0


def test_plan_json_and_out(cli, repo: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    result = cli("--root", str(repo), "plan", "staging", "--at", AT, "--format", "json", "--out", str(out))
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    saved = json.loads(out.read_text())
    assert printed["environments"][0]["name"] == "staging"
    assert saved["checksum"].startswith("sha256:")
    assert saved["plan_id"].startswith("plan-")
    assert {k: v for k, v in saved.items() if k not in ("plan_id", "checksum")} == printed


def test_apply_yes_then_plan_is_empty(cli, repo: Path, clock) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "apply", "--yes", "--message", "first rollout")
    assert result.code == 0, result.err
    assert any(line.startswith("production: applied ") for line in result.lines)
    assert any(line.startswith("staging: applied ") for line in result.lines)
    after = cli("--root", str(repo), "plan", "--at", "2026-11-25T12:10", "--detailed-exitcode")
    assert after.code == 0, after.out
    live = get_connector(load_repository(repo).envs["staging"], repo).read()
    assert live["applied"]["actor"]
    assert live["activity"][-1]["message"] == "first rollout"
    again = cli("--root", str(repo), "apply", "--yes")
    assert again.code == 0
    assert again.lines == ["production: no changes", "sandbox: no changes", "staging: no changes"]
    assert len(get_connector(load_repository(repo).envs["staging"], repo).read()["activity"]) == 1


def test_saved_plan_applies(cli, repo: Path, tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    assert cli("--root", str(repo), "plan", "--at", AT, "--out", str(out)).code == 0
    result = cli("--root", str(repo), "apply", "--plan", str(out))  # production is protected: a saved plan will do
    assert result.code == 0, result.err
    assert any(line.startswith("production: applied ") for line in result.lines)
    plan_id = json.loads(out.read_text())["plan_id"]
    live = get_connector(load_repository(repo).envs["production"], repo).read()
    assert live["applied"]["plan_id"] == plan_id
    assert cli("--root", str(repo), "plan", "--at", AT, "--detailed-exitcode").code == 0


def test_edited_saved_plan_is_refused(cli, repo: Path, tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    assert cli("--root", str(repo), "plan", "staging", "--at", AT, "--out", str(out)).code == 0
    data = json.loads(out.read_text())
    data["environments"][0]["changes"][0]["after"] = True
    data["environments"][0]["changes"].append({"action": "add", "path": "merges.courses.terms", "value": "209910"})
    out.write_text(json.dumps(data))
    result = cli("--root", str(repo), "apply", "--plan", str(out))
    assert result.code == 1
    assert "edited" in result.err
    assert "merges" not in get_connector(load_repository(repo).envs["staging"], repo).read()


def test_saved_plan_is_stale_when_live_moved(cli, repo: Path, tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    assert cli("--root", str(repo), "plan", "staging", "--at", AT, "--out", str(out)).code == 0
    conn = get_connector(load_repository(repo).envs["staging"], repo)
    conn.apply_changes([Change(Action.ADD, "access.users.x@example.edu", value={"products": ["scheduling"]})],
                       record={"revision": None, "plan_id": "console", "at": AT_STAMP, "actor": "someone"})
    result = cli("--root", str(repo), "apply", "--plan", str(out))
    assert result.code == 1
    assert "stale" in result.err and "live side changed" in result.err
    assert "merges" not in conn.read()


def test_saved_plan_is_stale_across_a_window_boundary(cli, repo: Path, tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    # Saturday noon; the weekly hosted-update window starts Sunday 04:00 Central.
    assert cli("--root", str(repo), "plan", "production", "--at", "2026-11-28T12:00", "--out", str(out)).code == 0
    clock(datetime(2026, 11, 29, 5, 0, tzinfo=CHICAGO))
    result = cli("--root", str(repo), "apply", "--plan", str(out))
    assert result.code == 1
    assert "stale" in result.err and "weekly-hosted-updates" in result.err


def test_protected_environment_needs_yes(cli, repo: Path, clock) -> None:  # type: ignore[no-untyped-def]
    result = cli("--root", str(repo), "apply", "production")
    assert result.code == 1
    assert "protected" in result.err
    assert not store_path(repo).exists() or "merges" not in get_connector(
        load_repository(repo).envs["production"], repo).read()
    assert cli("--root", str(repo), "apply", "staging").code == 0  # not protected: no --yes needed off a TTY


def test_garbage_store_is_one_line_error(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    path = store_path(repo)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00garbage" * 500)
    result = cli("--root", str(repo), "plan", "staging", "--at", AT)
    assert result.code == 1
    assert result.err.strip().count("\n") == 0
    assert "is not a reconciler store" in result.err
    assert "Traceback" not in result.err


def test_lock_held_elsewhere_fails_apply(cli, repo: Path, clock, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("reconciler.connectors.embedded.LOCK_WAIT_S", 0.2)
    conn = get_connector(load_repository(repo).envs["staging"], repo)
    with conn.lock("ci-job-42", 60):
        result = cli("--root", str(repo), "apply", "staging")
    assert result.code == 1
    assert "ci-job-42" in result.err


def test_safety_refuses_removing_a_term_in_an_active_phase(repo: Path) -> None:
    spec = load_repository(repo).envs["staging"]
    at = datetime(2026, 11, 25, 12, 0, tzinfo=CHICAGO)  # final-review of 202720 is active
    live = {"merges": {"courses": {"terms": ["202710", "202720"]}}}
    change = Change(Action.REMOVE, "merges.courses.terms", value="202720")
    removing = EnvPlan("staging", None, fingerprint(live), (change,))
    reasons = safety_problems(removing, spec, live, at)
    assert any("202720" in r and "final-review" in r for r in reasons)
    later = datetime(2027, 2, 1, 12, 0, tzinfo=CHICAGO)  # no phase of 202720 then
    assert not any("final-review" in r for r in safety_problems(removing, spec, live, later))


def test_safety_refuses_plan_when_live_reads_empty_after_apply(repo: Path) -> None:
    spec = load_repository(repo).envs["staging"]
    at = datetime(2026, 11, 25, 12, 0, tzinfo=CHICAGO)
    empty_after_apply = {"applied": {"revision": "abc", "plan_id": "p", "at": AT_STAMP, "actor": "x"}}
    env = build_plan([spec], {"staging": empty_after_apply}, at, None).environments[0]
    assert any("reads as empty" in r for r in safety_problems(env, spec, empty_after_apply, at))
    env_fresh = build_plan([spec], {"staging": {}}, at, None).environments[0]
    assert safety_problems(env_fresh, spec, {}, at) == []


def test_too_many_removals_need_force(cli, repo: Path, clock) -> None:  # type: ignore[no-untyped-def]
    conn = get_connector(load_repository(repo).envs["staging"], repo)
    user = {"products": ["scheduling"]}
    extra = [Change(Action.ADD, f"access.users.u{i}@example.edu", value=user) for i in range(12)]
    conn.apply_changes(extra, record={"revision": None, "plan_id": "console", "at": AT_STAMP, "actor": "someone"})
    refused = cli("--root", str(repo), "apply", "staging")
    assert refused.code == 1
    assert "removes 12 items" in refused.err and "--force" in refused.err
    assert "merges" not in conn.read()
    forced = cli("--root", str(repo), "apply", "staging", "--force")
    assert forced.code == 0, forced.err
    assert not any(k.startswith("u") for k in conn.read()["access"]["users"])


def test_a_lease_held_on_one_environment_does_not_stop_the_others(  # type: ignore[no-untyped-def]
    cli, repo: Path, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reconciler.connectors.embedded.LOCK_WAIT_S", 0.2)
    conn = get_connector(load_repository(repo).envs["staging"], repo)
    with conn.lock("ci-job-42", 60):
        result = cli("--root", str(repo), "apply", "--yes", "--parallel", "3")
    assert result.code == 1
    assert [line.split(":")[0] for line in result.lines] == ["production", "sandbox"]
    assert "staging: the live side is locked by ci-job-42" in result.err
    live = {name: get_connector(spec, repo).read() for name, spec in load_repository(repo).envs.items()}
    assert "applied" in live["production"] and "applied" in live["sandbox"] and "applied" not in live["staging"]


def test_parallel_apply_reports_in_a_stable_order_and_records_one_commit_each(  # type: ignore[no-untyped-def]
    cli, repo: Path, clock
) -> None:
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "example")
    result = cli("--root", str(repo), "apply", "--yes", "--parallel", "3")
    assert result.code == 0, result.err
    assert [line.split(":")[0] for line in result.lines] == ["production", "sandbox", "staging"]
    subjects = git("log", "--format=%s", "--reverse", "reconciler/activity").splitlines()
    assert [s.split(":")[0] for s in subjects] == ["apply production", "apply sandbox", "apply staging"]
    assert git("status", "--porcelain") == "?? .reconciler/\n"


def test_a_window_boundary_apply_names_the_window_and_its_ticket(cli, repo: Path, clock) -> None:  # type: ignore[no-untyped-def]
    """DESIGN §1: merges go off before the window and back on after it, with a comment naming the ticket."""
    assert cli("--root", str(repo), "apply", "--yes").code == 0
    clock(datetime(2026, 12, 5, 20, 30, tzinfo=CHICAGO))
    assert cli("--root", str(repo), "apply", "production", "--yes").code == 0
    clock(datetime(2026, 12, 6, 3, 45, tzinfo=CHICAGO))
    plan = json.loads(cli("--root", str(repo), "plan", "production", "--at", "2026-12-06T03:45",
                          "--format", "json").out)
    becauses = {c["path"]: c.get("because") for c in plan["environments"][0]["changes"]}
    assert becauses == {"schedule.nightly": "maintenance window banner-upgrade-2026-12 (SUP-1234) ended",
                        "schedule.realtime": "maintenance window banner-upgrade-2026-12 (SUP-1234) ended"}
    assert cli("--root", str(repo), "apply", "production", "--yes").code == 0
    activity = get_connector(load_repository(repo).envs["production"], repo).read()["activity"]
    paused, resumed = activity[-2]["message"], activity[-1]["message"]
    assert paused == "maintenance window banner-upgrade-2026-12 (SUP-1234)"
    assert resumed == "maintenance window banner-upgrade-2026-12 (SUP-1234) ended"


@pytest.mark.parametrize(("args", "expected"), [
    pytest.param(("plan", "--at", "garbage"), "error: --at garbage: 'garbage' is not an ISO 8601 time", id="plan"),
    pytest.param(("status", "--at", "2026-03-08T02:30"), "error: --at 2026-03-08T02:30: 2026-03-08T02:30 does "
                 "not exist in America/Chicago (clocks go forward); give an offset", id="status-gap"),
    pytest.param(("term", "expire", "--at", "2026-11-01T01:30"), "error: --at 2026-11-01T01:30: 2026-11-01T01:30 "
                 "is ambiguous in America/Chicago", id="term-expire-fold"),
])
def test_a_bad_time_option_is_named_in_one_line(cli, repo: Path, args: tuple[str, ...],  # type: ignore[no-untyped-def]
                                                 expected: str) -> None:
    result = cli("--root", str(repo), *args)
    assert result.code == 1
    assert result.err.startswith(expected) and result.err.count("\n") == 1
