"""apply --guided (issue 16, item 3), end to end: a real git repository whose staging environment reads the
platform through the coursedog connector from `reconciler emulator --api coursedog` on 127.0.0.1, and a
background "person" who makes the console change through the rehearsal endpoint."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from emulator_fixture import Emulator, start_emulator  # noqa: F401

import reconciler.engine as engine_clock
from reconciler.core.console_steps import activity_comment, console_steps, numbered
from reconciler.core.plan import Action, Change, EnvPlan
from reconciler.engine import Engine, Quiet
from reconciler.engine.guided import Guide
from reconciler.errors import ApplyFailed
from reconciler.repo import load_repository

CANARY = "canary-guided-SECRET-4c1d9e"
READ_VAR = "RECONCILER_READ_TOKEN_GUIDED"
T0 = datetime(2026, 11, 25, 12, 5, tzinfo=ZoneInfo("America/Chicago"))  # a Wednesday noon: no window open


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, timeout=30).stdout


def console(server: Emulator, values: dict[str, Any]) -> None:
    response = httpx.patch(f"{server.url}/environments/staging/console", headers=server.headers,
                           json={"set": values}, timeout=10)
    assert response.status_code == 200, response.text


def outcomes(root: Path) -> list[str]:
    """The Outcome: trailers of the activity branch, oldest first ([] before its first record)."""
    found = subprocess.run(["git", "log", "--reverse", "--format=%B", "reconciler/activity"], cwd=root,
                           capture_output=True, text=True, timeout=30)
    return re.findall(r"(?m)^Outcome: (\S+)", found.stdout) if found.returncode == 0 else []


@pytest.fixture
def staging(repo: Path, start_emulator: Callable[..., Emulator],  # noqa: F811
            monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Emulator]:
    """The repository (committed), staging on the platform's read API, merges off there (live), and now T0."""
    server = start_emulator(token=CANARY, api="coursedog")
    monkeypatch.setenv(READ_VAR, CANARY)
    monkeypatch.setattr(engine_clock, "now", lambda: T0)
    path = repo / "environments" / "staging" / "environment.yaml"
    block = (f"  connector: coursedog\n  url: {server.base}\n  school: staging\n  read_token_env: {READ_VAR}\n")
    text, count = re.subn(r"(?m)^  connector: embedded\n", block, path.read_text(encoding="utf-8"))
    assert count == 1
    path.write_text(text, encoding="utf-8")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "example")
    console(server, {"schedule.nightly": False, "schedule.realtime": False})
    return repo, server


def test_guided_apply_waits_for_the_person_and_records_it_verified(staging: tuple[Path, Emulator]) -> None:
    repo, server = staging
    out = Quiet()

    def person() -> None:
        deadline = time.monotonic() + 20
        while "requested" not in outcomes(repo) and time.monotonic() < deadline:
            time.sleep(0.05)
        console(server, {"schedule.nightly": True})

    helper = threading.Thread(target=person)
    helper.start()
    code = Engine(repo, out=out).guided(["staging"], Guide(timeout_s=20, interval_s=0.1))
    helper.join()
    assert code == 0, out.said
    assert outcomes(repo) == ["requested", "applied"]
    shown = "\n".join(out.lines)
    assert "Set “Should merges run nightly?” to “YES”." in shown
    assert "Select “Merge Settings” from the left-hand menu." in shown
    assert any("console steps seen" in n for n in out.notes)  # progress on stderr
    assert "recorded as applied (verified)" in out.lines[-1]
    assert CANARY not in "\n".join(out.said) + git(repo, "log", "-p", "reconciler/activity")


def test_no_wait_exits_2_and_a_later_run_records_it_verified(staging: tuple[Path, Emulator], cli: Any) -> None:
    repo, server = staging
    first = cli("--root", str(repo), "apply", "--guided", "--no-wait", "staging")
    assert first.code == 2, first.out + first.err
    assert "Should merges run nightly?" in first.out and "revision" in first.out
    assert outcomes(repo) == ["requested"]
    console(server, {"schedule.nightly": True})
    later = cli("--root", str(repo), "apply", "--guided", "staging")
    assert later.code == 0, later.out + later.err
    assert outcomes(repo) == ["requested", "applied"]
    assert "recorded as applied (verified)" in later.out
    assert CANARY not in first.out + first.err + later.out + later.err


def test_the_same_request_is_recorded_once(staging: tuple[Path, Emulator], cli: Any) -> None:
    """The scheduled workflow asks every 15 minutes: one request on the activity branch, not one a run."""
    repo, server = staging
    for _ in range(2):
        again = cli("--root", str(repo), "apply", "--guided", "--no-wait", "staging", "--message", "a run")
        assert again.code == 2, again.out + again.err
        assert "Should merges run nightly?" in again.out
    assert outcomes(repo) == ["requested"]
    assert "requested in" in again.err and "not recorded again" in again.err
    console(server, {"schedule.nightly": True})
    assert cli("--root", str(repo), "apply", "--guided", "--no-wait", "staging").code == 0
    assert outcomes(repo) == ["requested", "applied"]


def test_validate_lists_the_environments_only_a_person_can_apply(staging: tuple[Path, Emulator], cli: Any) -> None:
    """What the reconcile workflow's guided job applies, and what its apply jobs leave alone."""
    repo, _ = staging
    names = set(load_repository(repo).envs)
    read_only = cli("--root", str(repo), "validate", "--list", "read-only")
    assert read_only.code == 0, read_only.err
    assert read_only.out.split() == ["staging"]
    writable = cli("--root", str(repo), "validate", "--list", "writable")
    assert writable.code == 0 and set(writable.out.split()) == names - {"staging"}
    one = cli("--root", str(repo), "validate", "staging", "--require-live", "--list", "writable")
    assert (one.code, one.out) == (0, "")
    embedded = cli("--root", str(repo), "validate", "production", "--require-live", "--list", "writable")
    assert embedded.code == 3 and embedded.out == ""


def test_status_and_drift_say_what_the_platform_cannot_show(staging: tuple[Path, Emulator], cli: Any) -> None:
    import json

    repo, _ = staging
    said = "not readable from this platform (coursedog), left unmanaged:"
    text = cli("--root", str(repo), "status", "staging")
    assert text.code == 0, text.err
    line = next(line for line in text.out.splitlines() if said in line)
    assert line.startswith("  warning:") and "phases" in line
    data = json.loads(cli("--root", str(repo), "status", "staging", "--format", "json").out)
    (warning,) = data["environments"][0]["warnings"]
    assert warning.startswith(said) and "merges.sections.terms" in warning
    drift = cli("--root", str(repo), "drift", "staging")
    assert drift.code == 0, drift.err
    assert f"  warning: {said}" in drift.out
    found = json.loads(cli("--root", str(repo), "drift", "staging", "--format", "json").out)
    assert found["environments"][0]["warnings"] == [warning]
    assert CANARY not in text.out + drift.out + json.dumps(found) + json.dumps(data)


def test_a_timeout_exits_1_naming_the_unseen_steps(staging: tuple[Path, Emulator]) -> None:
    repo, _ = staging
    out = Quiet()
    with pytest.raises(ApplyFailed) as caught:
        Engine(repo, out=out).guided(["staging"], Guide(timeout_s=0.3, interval_s=0.05))
    assert caught.value.exit_code == 1
    unseen = [n for n in out.notes if "still not seen" in n]
    assert unseen and "Set “Should merges run nightly?” to “YES”." in unseen[0], out.notes
    assert outcomes(repo) == ["requested"]


def test_apply_without_guided_says_to_use_it(staging: tuple[Path, Emulator], cli: Any) -> None:
    repo, _ = staging
    result = cli("--root", str(repo), "apply", "--yes", "staging")
    assert result.code == 1
    assert "cannot write to the platform; use `reconciler apply --guided staging`" in result.err
    assert "Traceback" not in result.err and CANARY not in result.out + result.err


# --- the wording, against the platform's published procedure --------------------------------------


PAUSE = EnvPlan("production", "0123456789abcdef", "sha256:x", (
    Change(Action.CHANGE, "schedule.nightly", before=True, after=False,
           because="maintenance window banner-upgrade-2026-12 (SUP-1234)"),
    Change(Action.CHANGE, "schedule.realtime", before=True, after=False,
           because="maintenance window banner-upgrade-2026-12 (SUP-1234)"),
))

PAUSE_STEPS = [
    "1. Tell the platform's support of the outage (email or a support ticket), naming the environment production "
    "and the maintenance timeframe.",
    "2. Open the Admin Console of the production environment.",
    "3. Select “Merge Settings” from the left-hand menu.",
    "4. Set “Should merges run nightly?” to “NO”.",
    "5. Set “Should merges run in real-time?” to “NO”.",
    "6. Press “SAVE” at the top of the Merge Settings page.",
    "7. Refresh the page and check that each setting above shows its new value.",
    "8. Open the “Activity” tab under “Merge Settings”, type this comment into the “Click Enter to comment” field "
    "and press Enter:\n    merges disabled; for maintenance window banner-upgrade-2026-12 (SUP-1234); ticket "
    "SUP-1234; revision 0123456789ab (reconciler)",
]


def test_the_pause_follows_the_published_eight_steps(repo: Path) -> None:
    spec = load_repository(repo).envs["production"]
    comment = activity_comment(PAUSE, PAUSE.revision, "SUP-1234")
    assert numbered(console_steps(PAUSE, spec, comment)) == PAUSE_STEPS


EVERY_KIND = EnvPlan("production", "abc", "sha256:x", (
    Change(Action.REMOVE, "merges.sections.terms", value="202710"),
    Change(Action.ADD, "merges.courses.terms", value="202720"),
    Change(Action.CHANGE, "merges.sections.send_updates", before=True, after=False),
    Change(Action.CHANGE, "merges.sections.source_of_truth", before=None,
           after={"default": "shared", "fields": {"call_number": "institution"}}),
    Change(Action.CHANGE, "merges.courses.only_selected_terms", before=True, after=False),
    Change(Action.ADD, "phases.final-review", value={"term": "202720", "start": "2026-11-13", "end": "2027-01-11",
                                                     "editable": ["notes"], "editors": ["registrar"]}),
    Change(Action.CHANGE, "access.roles.course-editor.view_section_integration_status", before="deny",
           after="allow"),
    Change(Action.CANCEL, "update_requests.refresh-staging-2026-12", value="refresh-staging-2026-12"),
    Change(Action.CHANGE, "schedule.realtime", before=False, after=True),
))


@pytest.mark.parametrize(("index", "words"), [
    pytest.param(0, "On the “Sections” merge type, remove the term Fall 2026 (202710).", id="term-removed"),
    pytest.param(1, "On the “Courses” merge type, add the term Spring 2027 (202720).", id="term-added"),
    pytest.param(2, "On the “Sections” merge type, set “Should Coursedog send updates to the SIS?” to “NO”.",
                 id="send-updates"),
    pytest.param(3, "set the default source of truth to “shared ownership”; Field-specific exceptions: "
                    "call_number “Always Institution”", id="source-of-truth"),
    pytest.param(4, "set “Only run integration for selected terms” to “NO”.", id="only-selected-terms"),
    pytest.param(5, "Add the phase “final-review” for term 202720", id="phase"),
    pytest.param(6, "Under Roles > Course Editor, set “View Section Integration Status” to “Allow”.", id="role"),
    pytest.param(7, "Cancel the update request refresh-staging-2026-12", id="update-request"),
    pytest.param(8, "Set “Should merges run in real-time?” to “YES”.", id="resume"),
])
def test_every_kind_of_change_is_said_in_the_consoles_words(repo: Path, index: int, words: str) -> None:
    spec = load_repository(repo).envs["production"]
    steps = [s for s in console_steps(EVERY_KIND, spec, "c") if s.changes]
    assert steps[index].changes == (EVERY_KIND.changes[index],)
    assert words in steps[index].text
