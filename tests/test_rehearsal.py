"""Rehearsal of the whole loop on a real git repository and the emulator (issue 8, item 3).

One story, told in order by one test: a branch rolls a term in → the markdown plan shows it → merge →
apply → `log` says who and why → a maintenance window opens and merges pause → it closes and they
resume → a person edits the admin console → `drift` reports it → `import` adopts it → the plan is empty.
Every environment's live side is the http connector against one real `reconciler emulator` on
127.0.0.1; time is the test's clock (`apply`'s and `import`'s `now()`, and `plan --at`).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from emulator_fixture import TOKEN_ENV, Emulator, emulator, start_emulator  # noqa: F401

import reconciler.engine as engine_clock

CHICAGO = ZoneInfo("America/Chicago")
T0 = datetime(2026, 11, 25, 12, 5, tzinfo=CHICAGO)  # a Wednesday noon: no window open
T1 = datetime(2026, 11, 25, 15, 30, tzinfo=CHICAGO)  # the same afternoon, after the merge
T2 = datetime(2026, 12, 5, 20, 30, tzinfo=CHICAGO)  # inside banner-upgrade-2026-12 (20:00-03:30)
T3 = datetime(2026, 12, 6, 3, 45, tzinfo=CHICAGO)  # after it, before the weekly Sunday window at 04:00
ENVS = ("production", "sandbox", "staging")
BRANCH = "add-term-202810"
WHY = "Roll Fall 2027 into every environment (REG-42)"
MERGED = f"Merge branch '{BRANCH}': {WHY}"
AUTHOR = "Test Registrar <registrar@example.edu>"  # the git identity conftest sets
EDIT = {"path": "merges.sections.on_delete", "before": "cancel", "after": "delete"}


class Clock:
    """The time `apply` and `import` see: set by the test, step by step."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, timeout=30).stdout


def use_emulator(root: Path, server: Emulator) -> None:
    """Point every environment's `live:` at the emulator: the `connector: embedded` line becomes the http block."""
    block = f"  connector: http\n  url: {server.url}\n  token_env: {TOKEN_ENV}\n"
    for env in ENVS:
        path = root / "environments" / env / "environment.yaml"
        text, count = re.subn(r"(?m)^  connector: embedded\n", block, path.read_text(encoding="utf-8"))
        assert count == 1, f"{path}: expected one `connector: embedded` line"
        path.write_text(text, encoding="utf-8")


def live(server: Emulator, env: str) -> dict[str, Any]:
    """The environment as the platform holds it, read straight from the admin API."""
    response = httpx.get(f"{server.url}/environments/{env}", headers=server.headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def console(server: Emulator, env: str, changes: dict[str, Any]) -> None:
    """A person clicks in the admin console (the emulator's rehearsal endpoint)."""
    response = httpx.patch(f"{server.url}/environments/{env}/console", headers=server.headers,
                           json={"set": changes}, timeout=10)
    assert response.status_code == 200, response.text


def schedule(server: Emulator, env: str) -> dict[str, Any]:
    return live(server, env)["schedule"]


def activity(server: Emulator, env: str) -> list[dict[str, Any]]:
    """The platform's activity log of `env`, oldest first."""
    response = httpx.get(f"{server.url}/environments/{env}/activity", headers=server.headers,
                         params={"limit": 1000}, timeout=10)
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(T0)
    monkeypatch.setattr(engine_clock, "now", clock)
    return clock


@dataclass
class Rehearsal:
    """The CLI against `repo`, a git repository whose environments live on `server`, at the test's clock."""

    cli: Any
    repo: Path
    server: Emulator
    clock: Clock

    def __call__(self, *args: str) -> Any:
        return self.cli("--root", str(self.repo), *args)

    def plan_exit(self, at: datetime, *envs: str) -> int:
        result = self("plan", *envs, "--at", at.isoformat(), "--detailed-exitcode")
        assert result.code in (0, 2), result.out + result.err
        return int(result.code)

    def apply(self, at: datetime, *args: str) -> list[str]:
        self.clock.at = at
        result = self("apply", "--yes", *args)
        assert result.code == 0, result.out + result.err
        return list(result.lines)

    def drift(self, env: str) -> tuple[int, list[dict[str, Any]]]:
        result = self("drift", env, "--format", "json")
        assert result.code in (0, 2), result.out + result.err
        return int(result.code), json.loads(result.out)["environments"][0]["drift"]


@pytest.fixture
def rehearsal(cli, repo: Path, emulator: Emulator, clock: Clock,  # type: ignore[no-untyped-def]  # noqa: F811
              monkeypatch: pytest.MonkeyPatch) -> Rehearsal:
    """Step 1: the example repository committed to git, switched to the emulator, and applied at T0."""
    monkeypatch.setenv(TOKEN_ENV, emulator.token)
    run = Rehearsal(cli, repo, emulator, clock)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "The example repository")
    use_emulator(repo, emulator)
    validated = run("validate")
    assert validated.code == 0, validated.out + validated.err
    git(repo, "commit", "-qam", "Manage every environment through the admin API")
    lines = run.apply(T0)
    assert [line.split(": applied ")[0] for line in lines] == list(ENVS), lines
    assert run.plan_exit(T0) == 0
    assert live(emulator, "production")["merges"]["sections"]["on_delete"] == "cancel"
    assert "202810" not in json.dumps(live(emulator, "production"))
    return run


def test_the_whole_loop(rehearsal: Rehearsal) -> None:
    run, repo, server = rehearsal, rehearsal.repo, rehearsal.server

    # --- 2. a branch rolls Fall 2027 in; the pull request's markdown plan shows it
    git(repo, "checkout", "-q", "-b", BRANCH)
    rolled = run("term", "roll", "202810", "--like", "202710")
    assert rolled.code == 0, rolled.err
    assert rolled.lines[0].startswith("term roll 202810 (Fall 2027, 2027-08-24..2027-12-18, like 202710)")
    git(repo, "commit", "-qam", WHY)
    markdown = run("plan", "--at", T0.isoformat(), "--format", "markdown")
    assert markdown.code == 0, markdown.err
    assert markdown.out.startswith("**") and "planned for Wed 2026-11-25 12:05 -06:00" in markdown.out
    tables = markdown.out.split("### ")[1:]
    assert [table.split(" ")[0] for table in tables] == list(ENVS), markdown.out
    for table in tables:
        assert "| action | setting | from | to | why |" in table
        rows = {row.split(" | ")[1]: row.split(" | ")[0] for row in table.splitlines() if "(202810)`" in row}
        assert rows == {f"{kind} merge · terms": "| add" for kind in ("Courses", "Sections", "Relationships")}, table
    assert run.plan_exit(T0) == 2

    # --- 3. merged and applied at T1, naming the ticket: every environment on the platform has the term
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", BRANCH, "-m", MERGED)
    merge_sha = git(repo, "rev-parse", "HEAD").strip()
    assert run("validate").code == 0  # promotion order holds: the roll edited sandbox, staging and production
    lines = run.apply(T1, "--ticket", "REG-42")
    assert all(line.startswith(f"{env}: applied 3 changes") for env, line in zip(ENVS, lines, strict=True)), lines
    for env in ENVS:
        merges = live(server, env)["merges"]
        for kind in ("courses", "sections", "relationships"):
            assert "202810" in merges[kind]["terms"], (env, merges)
    assert run.plan_exit(T1) == 0

    # --- 4. `log` says what changed, who and why, and that it was applied from that commit
    logged = run("log", "production", "--format", "json")
    assert logged.code == 0, logged.err
    entries = json.loads(logged.out)
    merged = next(e for e in entries if e["kind"] == "commit" and e["sha"] == merge_sha)
    assert merged["author"] == AUTHOR and merged["message"] == MERGED
    added = {c["path"]: c.get("added") for c in merged["changes"]}
    assert added == {"merges.courses.terms": ["202810"], "merges.sections.terms": ["202810"],
                     "merges.relationships.terms": ["202810"], "terms.202810": None}, merged
    applied = entries[0]  # newest first: the apply follows its commit
    assert applied["kind"] == "activity" and applied["outcome"] == "applied", applied
    assert applied["actor"] == AUTHOR and applied["ticket"] == "REG-42"
    because = f'  (commit {merge_sha[:7]} "{MERGED}" by Test Registrar)'  # the commit that made the change
    assert sorted(applied["details"]) == sorted(f"+ merges.{kind}.terms 202810{because}"
                                                for kind in ("courses", "sections", "relationships"))
    trailers = git(repo, "log", "-1", "--format=%B", applied["sha"])
    assert f"Revision: {merge_sha}" in trailers and "Ticket: REG-42" in trailers
    text = run("log", "production").out
    assert f"by {AUTHOR}" in text and WHY in text and "[applied]" in text

    # --- 5. the Banner upgrade window opens: applying pauses production's merges, and says why
    assert run.plan_exit(T2, "production") == 2
    lines = run.apply(T2)
    assert lines[0].startswith("production: applied 2 changes") and lines[1:] == [
        "production: maintenance window banner-upgrade-2026-12 (SUP-1234) started 20:00, acted 20:30",  # late
        "sandbox: no changes", "staging: no changes"]
    assert schedule(server, "production") == {"nightly": False, "realtime": False}
    assert schedule(server, "staging")["nightly"] is True  # only production has the window
    assert run.plan_exit(T2) == 0
    assert "banner-upgrade-2026-12 (SUP-1234)" in run("log", "production").out

    # --- 6. the window closes: merges resume
    assert run.plan_exit(T3, "production") == 2
    lines = run.apply(T3)
    assert lines[0].startswith("production: applied 2 changes") and lines[1:] == [
        "production: maintenance window banner-upgrade-2026-12 (SUP-1234) ended 03:30, acted 03:45",  # late
        "sandbox: no changes", "staging: no changes"]
    assert schedule(server, "production") == {"nightly": True, "realtime": True}
    assert run.plan_exit(T3) == 0
    assert run.drift("production") == (0, [])

    # --- 7. a person edits the admin console: drift names it, and the plan would undo it
    console(server, "production", {"merges.sections.on_delete": "delete"})
    assert run.drift("production") == (2, [EDIT])
    text = run("drift", "production")
    assert text.code == 2 and "~ merges.sections.on_delete: cancel → delete" in text.out  # the plan's symbols
    plan = run("plan", "production", "--at", T3.isoformat(), "--format", "json")
    changes = [c for env in json.loads(plan.out)["environments"] for c in env["changes"]]
    assert [c["path"] for c in changes] == ["merges.sections.on_delete"], changes

    # --- 8. import adopts it: the YAML holds it, validates, and the plan is empty
    imported = run("import", "production")
    assert imported.code == 0, imported.err
    assert imported.lines == ["production: imported the live state into "
                              "environments/production/merge-settings.yaml"]
    settings = (repo / "environments" / "production" / "merge-settings.yaml").read_text(encoding="utf-8")
    assert "kind: MergeSettings" in settings and "on_delete: delete" in settings
    assert run("validate").code == 0
    assert run.plan_exit(T3) == 0
    # not committed yet: the applied revision is HEAD, so drift's baseline is the YAML as it now stands
    assert run.drift("production") == (0, [])
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Adopt the console's on_delete for production (REG-43)")
    assert run.plan_exit(T3) == 0
    assert run.apply(T3) == [f"{env}: no changes" for env in ENVS]
    assert live(server, "production")["merges"]["sections"]["on_delete"] == "delete"

    # --- and the platform's own activity log holds the same story, in order
    entries = [e["entry"] for e in activity(server, "production")]
    assert [e["kind"] for e in entries] == ["apply", "apply", "apply", "apply", "console", "import"], entries
    assert [e["at"] for e in entries[:4]] == [t.isoformat() for t in (T0, T1, T2, T3)]
    assert entries[1]["ticket"] == "REG-42" and entries[1]["revision"] == merge_sha
    assert entries[4]["set"] == {"merges.sections.on_delete": "delete"}
    assert entries[5]["files"] == ["environments/production/merge-settings.yaml"]


def test_adopted_edit_is_no_longer_drift_once_committed_and_applied(rehearsal: Rehearsal) -> None:
    run, repo = rehearsal, rehearsal.repo
    console(rehearsal.server, "production", {"merges.sections.on_delete": "delete"})
    assert run.drift("production") == (2, [EDIT])
    assert run("import", "production").code == 0
    git(repo, "add", "-A")  # the import created production's merge-settings.yaml
    git(repo, "commit", "-qm", "Adopt the console's on_delete for production")
    assert run.plan_exit(T0) == 0
    run.apply(T0)
    assert run.drift("production") == (0, [])
