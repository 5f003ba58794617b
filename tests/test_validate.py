"""`reconciler validate`: every policy rule and every dialect trap, from the command line."""

from __future__ import annotations

import hashlib
import json
from contextlib import closing
from pathlib import Path

import pytest

HEADER = "apiVersion: reconciler/v1\n"


def write(root: Path, rel: str, text: str | bytes) -> None:
    path = root / "environments" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(path.relative_to(root).as_posix().encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_example_repository_validates_clean(repo: Path, cli) -> None:
    result = cli("--root", str(repo), "validate", "--strict")
    assert result.code == 0, result.out + result.err
    assert result.lines == []
    assert "3 environments valid" in result.err


MERGES_SANDBOX = HEADER + """kind: MergeSettings
schedule: {nightly: true, realtime: true}
merges:
  courses: {terms: ["202710"]}
  sections: {terms: ["202710", "209990"]}
  relationships: {terms: ["202710"]}
"""

PHASES_OVERLAP = HEADER + """kind: Phases
phases:
  - {name: a, term: "202720", start: 2026-10-01, end: 2026-11-13, editable: ["*"], editors: [registrar]}
  - {name: b, term: "202720", start: 2026-11-01, end: 2026-12-01, editable: ["*"], editors: [registrar]}
"""

WINDOWS_BACKWARDS = HEADER + """kind: MaintenanceWindows
windows:
  - id: backwards
    reason: typo
    start: 2026-12-06T06:00
    end: 2026-12-05T22:00
"""

WINDOWS_OVERLAP = HEADER + """kind: MaintenanceWindows
windows:
  - {id: one, reason: a, start: 2026-12-05T22:00, end: 2026-12-06T06:00}
  - {id: two, reason: b, start: 2026-12-06T05:00, end: 2026-12-06T07:00}
"""

ACCESS_THREE_ADMINS = HEADER + """kind: Access
users:
  - {email: a@example.edu, products: [admin, scheduling]}
  - {email: b@example.edu, products: [admin, scheduling]}
  - {email: c@example.edu, products: [admin, scheduling]}
"""

ACCESS_ADMIN_ONLY = HEADER + """kind: Access
users:
  - {email: a@example.edu, products: [admin]}
"""

ENV_SANDBOX = HEADER + """kind: Environment
name: {name}
sis: banner
timezone: America/Chicago
hosting: {{plan: {plan}, version: E.1505.2}}
"""

HTTP_LIVE = "live:\n  connector: http\n  url: {url}\n  token_env: SANDBOX_TOKEN\n"


def env_with_url(url: str) -> str:
    """The sandbox environment on the http connector; `url` is on line 9, its value at column 8."""
    return ENV_SANDBOX.format(name="sandbox", plan="hosted") + HTTP_LIVE.format(url=url)


SECRET_VALUE = HEADER + """kind: MaintenanceWindows
windows:
  - id: leak
    reason: "token ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    start: 2026-12-05T22:00
    end: 2026-12-06T06:00
"""

TERMS_OLD = HEADER + """kind: Terms
terms:
  - {code: "201910", name: Fall 2018, start: 2018-08-20, end: 2018-12-14}
"""

MERGES_OLD = HEADER + """kind: MergeSettings
merges:
  courses: {terms: ["201910"]}
  sections: {terms: []}
  relationships: {terms: []}
"""


@pytest.mark.parametrize(
    ("files", "env", "expected", "code"),
    [
        pytest.param({"sandbox/environment.yaml": ENV_SANDBOX.format(name="sand", plan="hosted")}, "sandbox",
                     "environments/sandbox/environment.yaml:3:7: error[name-mismatch]", 1, id="name-mismatch"),
        pytest.param({"sandbox/merge-settings.yaml": MERGES_SANDBOX}, "sandbox",
                     "environments/sandbox/merge-settings.yaml:6:32: error[unknown-term]", 1, id="unknown-term"),
        pytest.param({"sandbox/terms.yaml": TERMS_OLD, "sandbox/merge-settings.yaml": MERGES_OLD,
                      "sandbox/phases.yaml": HEADER + "kind: Phases\nphases: []\n"}, "sandbox",
                     "environments/sandbox/merge-settings.yaml:4:21: warning[term-ended]", 0, id="term-ended"),
        pytest.param({"sandbox/phases.yaml": PHASES_OVERLAP}, "sandbox",
                     "environments/sandbox/phases.yaml:5:38: error[phase-overlap]", 1, id="phase-overlap"),
        pytest.param({"sandbox/maintenance.yaml": WINDOWS_BACKWARDS}, "sandbox",
                     "environments/sandbox/maintenance.yaml:7:10: error[window-order]", 1, id="window-order"),
        pytest.param({"sandbox/maintenance.yaml": WINDOWS_OVERLAP}, "sandbox",
                     "environments/sandbox/maintenance.yaml:5:5: warning[window-overlap]", 0, id="window-overlap"),
        pytest.param({"sandbox/access.yaml": ACCESS_THREE_ADMINS}, "sandbox",
                     "environments/sandbox/access.yaml:6:38: error[admin-limit]", 1, id="admin-limit"),
        pytest.param({"sandbox/access.yaml": ACCESS_ADMIN_ONLY}, "sandbox",
                     "environments/sandbox/access.yaml:4:38: error[admin-needs-product]", 1,
                     id="admin-needs-product"),
        pytest.param({"production/merge-settings.yaml": HEADER + 'kind: MergeSettings\nmerges:\n'
                      '  sections: {terms: ["202710", "202720", "202730"]}\n'}, "production",
                     "environments/production/merge-settings.yaml:4:42: error[promotion]", 1, id="promotion"),
        pytest.param({"sandbox/environment.yaml": ENV_SANDBOX.format(name="sandbox", plan="cloud")}, "sandbox",
                     "environments/sandbox/environment.yaml:6:33: error[cloud-version]", 1, id="cloud-version"),
        pytest.param({"sandbox/maintenance.yaml": SECRET_VALUE}, "sandbox",
                     "environments/sandbox/maintenance.yaml:5:13: error[secret-in-config]", 1,
                     id="secret-in-config-value"),
        pytest.param({"sandbox/access.yaml": HEADER + "kind: Access\napi_key: abc\n"}, "sandbox",
                     "environments/sandbox/access.yaml:3:1: error[secret-in-config]", 1,
                     id="secret-in-config-key"),
    ],
)
def test_each_policy_rule_fires_at_its_value(repo: Path, cli, files: dict[str, str], env: str,
                                              expected: str, code: int) -> None:
    for rel, text in files.items():
        write(repo, rel, text)
    result = cli("--root", str(repo), "validate", env)
    assert result.code == code, result.out + result.err
    assert any(line.startswith(expected) for line in result.lines), result.lines


def test_strict_turns_warnings_into_errors(repo: Path, cli) -> None:
    write(repo, "sandbox/maintenance.yaml", WINDOWS_OVERLAP)
    assert cli("--root", str(repo), "validate", "sandbox").code == 0
    result = cli("--root", str(repo), "validate", "sandbox", "--strict")
    assert result.code == 1
    assert "error[window-overlap]" in result.out


def test_json_lists_every_problem_with_its_position(repo: Path, cli) -> None:
    import json

    write(repo, "sandbox/access.yaml", ACCESS_THREE_ADMINS)
    write(repo, "sandbox/phases.yaml", PHASES_OVERLAP)
    result = cli("--root", str(repo), "validate", "sandbox", "--format", "json")
    problems = json.loads(result.out)
    assert result.code == 1
    assert {p["rule"] for p in problems} == {"admin-limit", "phase-overlap"}
    assert all(set(p) == {"file", "line", "column", "severity", "rule", "message"} for p in problems)


MERGE_OK = HEADER + "kind: MergeSettings\nschedule:\n  nightly: true\n  realtime: true\n"


@pytest.mark.parametrize(
    ("rel", "content", "where", "rule", "words"),
    [
        pytest.param("sandbox/merge-settings.yaml", MERGE_OK.replace("nightly: true", "nightly: NO"),
                     "4:12", "schema", "'NO' is not a boolean", id="nightly-NO"),
        pytest.param("sandbox/merge-settings.yaml", MERGE_OK.replace("realtime: true", "realtime: yes"),
                     "5:13", "schema", "'yes' is not a boolean", id="realtime-yes"),
        pytest.param("sandbox/merge-settings.yaml", MERGE_OK + "  nightly: false\n",
                     "6:3", "yaml", "duplicate key 'nightly'", id="duplicate-key"),
        pytest.param("sandbox/merge-settings.yaml", MERGE_OK.replace("nightly: true", "nightly: &on true")
                     .replace("realtime: true", "realtime: *on"), "4:12", "yaml", "anchors", id="alias"),
        pytest.param("sandbox/merge-settings.yaml", HEADER + "kind: MergeSettings\nx: &a [1,1,1]\n"
                     "y: &b [*a,*a,*a]\nz: [*b,*b,*b]\n", "3:4", "yaml", "anchors", id="billion-laughs"),
        pytest.param("sandbox/merge-settings.yaml", HEADER + "kind: MergeSettings\n"
                     "schedule: !!python/object/apply:os.system [echo pwned]\n",
                     "3:11", "yaml", "tags are not allowed", id="python-tag"),
        pytest.param("sandbox/merge-settings.yaml", MERGE_OK.replace("  nightly", "\tnightly"),
                     "4:1", "yaml", "tab", id="tab-indentation"),
        pytest.param("sandbox/merge-settings.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\xff",
                     "1:1", "yaml", "not", id="binary-bytes"),
        pytest.param("sandbox/merge-settings.yaml", "", "1:1", "yaml", "empty document", id="empty-file"),
        pytest.param("sandbox/merge-settings.yaml", "- apiVersion: reconciler/v1\n", "1:1", "yaml",
                     "expected a mapping", id="top-level-list"),
        pytest.param("sandbox/merge-settings.yaml", "a: " + "x" * (2 << 20) + "\n", "1:1", "yaml",
                     "limit is 1 MiB", id="two-mebibytes"),
        pytest.param("sandbox/merge-settings.yaml", HEADER + "kind: Mergesettings\n", "2:7", "schema",
                     "unknown kind 'Mergesettings'", id="unknown-kind"),
        pytest.param("sandbox/merge-settings.yaml", "apiVersion: reconciler/v2\nkind: MergeSettings\n",
                     "1:13", "schema", "apiVersion 'reconciler/v2' is not supported", id="wrong-apiVersion"),
        pytest.param("sandbox/merge-settings.yaml", MERGE_OK + "  hourly: true\n", "6:3", "schema",
                     "unknown key 'hourly'", id="unknown-key"),
        pytest.param("sandbox/merge-settings.yaml", HEADER + "kind: MergeSettings\nmerges:\n"
                     "  courses: {terms: [202710]}\n", "4:21", "schema", "is not of type 'string'",
                     id="term-code-as-number"),
        pytest.param("sandbox/maintenance.yaml", WINDOWS_BACKWARDS.replace("2026-12-05T22:00", "2026-13-05T22:00"),
                     "7:10", "schema", "not a valid local-datetime", id="bad-datetime"),
        pytest.param("sandbox/environment.yaml", ENV_SANDBOX.format(name="sandbox", plan="hosted")
                     .replace("America/Chicago", "America/Gotham"), "5:11", "schema",
                     "not a valid timezone", id="bad-timezone"),
        pytest.param("sandbox/notes.yaml", HEADER + "kind: Terms\n", "1:1", "schema", "unknown file",
                     id="unknown-file"),
        pytest.param("sandbox/environment.yaml", env_with_url("https://admin.example.edu/api/v1?tenant=7"), "9:8",
                     "schema", "live.url: must be the API's base URL alone", id="url-with-query"),
        pytest.param("sandbox/environment.yaml", env_with_url("https://admin.example.edu/api/v1#top"), "9:8",
                     "schema", "without a query string (?…), a fragment (#…) or user@", id="url-with-fragment"),
        pytest.param("sandbox/environment.yaml", env_with_url("https://ops:hunter22@admin.example.edu/api/v1"),
                     "9:8", "schema", "live.url: must be the API's base URL alone", id="url-with-password"),
        pytest.param("sandbox/environment.yaml", env_with_url("https://ops@admin.example.edu/api/v1"), "9:8",
                     "schema", "live.url: must be the API's base URL alone", id="url-with-user"),
    ],
)
def test_dialect_and_schema_traps_are_one_clear_line_each(repo: Path, cli, rel: str, content: str | bytes,
                                                          where: str, rule: str, words: str) -> None:
    write(repo, rel, content)
    before = tree_digest(repo)
    result = cli("--root", str(repo), "validate", "sandbox")
    assert result.code == 1
    hits = [line for line in result.lines if line.startswith(f"environments/{rel}:{where}: error[{rule}]")]
    assert hits and words in hits[0], result.lines
    assert "Traceback" not in result.out + result.err
    assert tree_digest(repo) == before


def test_folder_with_a_bad_name_is_reported(repo: Path, cli) -> None:
    (repo / "environments" / "Sand Box").mkdir()
    result = cli("--root", str(repo), "validate")
    assert result.code == 1
    assert any(line.startswith("environments/Sand Box:1:1: error[name-mismatch]") for line in result.lines)


@pytest.mark.parametrize("name", ["..", "Sand Box", "../etc", "nope"])
def test_bad_environment_argument_is_a_usage_error(repo: Path, cli, name: str) -> None:
    result = cli("--root", str(repo), "validate", name)
    assert result.code == 1
    assert result.err.startswith("error: ")
    assert len(result.err.strip().splitlines()) == 1
    assert repr(name) in result.err


def test_root_is_discovered_from_a_subfolder(repo: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "environments" / "production")
    assert cli("validate").code == 0


def test_no_root_is_a_clear_error(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("validate")
    assert result.code == 1
    assert "no environments/ folder" in result.err


def test_warm_cache_gives_the_same_answer_and_a_corrupt_cache_is_ignored(repo: Path, cli) -> None:
    import os

    write(repo, "sandbox/access.yaml", ACCESS_THREE_ADMINS)
    cold = cli("--root", str(repo), "validate")
    warm = cli("--root", str(repo), "validate")
    assert cold.out == warm.out and cold.code == warm.code == 1
    cache = Path(os.environ["RECONCILER_CACHE_DIR"]) / "documents.sqlite"
    assert cache.exists()
    import sqlite3

    with closing(sqlite3.connect(cache)) as db, db:
        db.execute("UPDATE document SET value = '{not json'")
    assert cli("--root", str(repo), "validate").out == cold.out
    cache.write_bytes(b"garbage, not sqlite")
    assert cli("--root", str(repo), "validate").out == cold.out


def test_init_writes_the_example_and_refuses_a_non_empty_folder(tmp_path: Path, cli) -> None:
    target = tmp_path / "demo"
    assert cli("init", str(target)).code == 0
    assert (target / "environments" / "production" / "environment.yaml").is_file()
    assert (target / "schemas" / "merge-settings.schema.json").is_file()
    assert ".reconciler/" in (target / ".gitignore").read_text()
    assert cli("--root", str(target), "validate").code == 0
    again = cli("init", str(target))
    assert again.code == 1 and "not empty" in again.err


def test_version_and_help(cli) -> None:
    from reconciler import __version__

    assert __version__ in cli("--version").out
    for command in ("init", "validate"):
        help_text = cli(command, "--help").out
        assert "Example:" in help_text


def test_warm_policy_cache_follows_the_environments_a_rule_reads(repo: Path, cli) -> None:
    """production's own bytes stay the same; a change in staging (its promotes_from) must still show."""
    assert cli("--root", str(repo), "validate").code == 0
    assert cli("--root", str(repo), "validate").code == 0  # warm: policy answers come from the cache
    write(repo, "staging/merge-settings.yaml", (
        "apiVersion: reconciler/v1\nkind: MergeSettings\nmerges:\n  courses:\n    terms: [\"202710\"]\n"
        "  sections:\n    terms: [\"202710\"]\n  relationships:\n    terms: [\"202710\"]\n"
    ))
    result = cli("--root", str(repo), "validate", "production")
    assert result.code == 1
    assert "error[promotion]: term '202720' is in the courses scope here but not yet in staging" in result.out


@pytest.mark.parametrize("sample", [
    "ghp_" + "a" * 36, "github_pat_" + "b" * 30, "AKIAABCDEFGHIJKLMNOP", "xoxb-1234567890-abc",
    "-----BEGIN RSA PRIVATE KEY-----", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl",
    "sk_live_" + "c" * 24, "Bearer " + "d" * 32, "https://user:pa55@host/db",
])
def test_every_credential_shape_passes_the_quick_look(sample: str) -> None:
    """The quick look before the walk must never hide a value the patterns would catch."""
    from reconciler.core.policy import _SECRET_VALUE, _may_hold_a_secret

    assert _SECRET_VALUE.search(sample) and _may_hold_a_secret(json.dumps({"note": sample}))


@pytest.mark.parametrize("key", ["api_token", "Password", "passwd", "client_secret", "API-KEY", "apikey",
                                 "private_key", "credentials"])
def test_every_secret_key_passes_the_quick_look(key: str) -> None:
    from reconciler.core.policy import _SECRET_KEY, _may_hold_a_secret

    assert _SECRET_KEY.search(key) and _may_hold_a_secret(json.dumps({key: "x"}))


# --- --format github: GitHub workflow commands, shown inline on the pull request --------------------


@pytest.mark.parametrize(("files", "strict", "expected", "code"), [
    pytest.param({"sandbox/access.yaml": ACCESS_THREE_ADMINS}, False,
                 ["::error file=environments/sandbox/access.yaml,line=6,col=38,title=admin-limit::"], 1,
                 id="error"),
    pytest.param({"sandbox/maintenance.yaml": WINDOWS_OVERLAP}, False,
                 ["::warning file=environments/sandbox/maintenance.yaml,line=5,col=5,title=window-overlap::"], 0,
                 id="warning"),
    pytest.param({"sandbox/maintenance.yaml": WINDOWS_OVERLAP}, True,
                 ["::error file=environments/sandbox/maintenance.yaml,line=5,col=5,title=window-overlap::"], 1,
                 id="strict-warning"),
    pytest.param({"sandbox/access.yaml": ACCESS_THREE_ADMINS, "sandbox/phases.yaml": PHASES_OVERLAP}, False,
                 ["::error file=environments/sandbox/access.yaml,line=6,col=38,title=admin-limit::",
                  "::error file=environments/sandbox/phases.yaml,line=5,col=38,title=phase-overlap::"], 1,
                 id="two-errors"),
    pytest.param({}, False, [], 0, id="valid"),
])
def test_github_format_is_one_workflow_command_per_problem(repo: Path, cli, files: dict[str, str], strict: bool,
                                                           expected: list[str], code: int) -> None:
    for rel, text in files.items():
        write(repo, rel, text)
    args = ["--root", str(repo), "validate", "sandbox", "--format", "github", *(["--strict"] if strict else [])]
    result = cli(*args)
    assert result.code == code, result.out + result.err
    assert len(result.lines) == len(expected)
    for line, start in zip(sorted(result.lines), expected, strict=True):
        assert line.startswith(start), line
        assert "\n" not in line and len(line) > len(start)  # the message follows, on the same line
    text = cli("--root", str(repo), "validate", "sandbox", *(["--strict"] if strict else []))
    assert text.code == code  # the same exit code as the text format
    assert len(text.lines) == len(result.lines)


def test_github_format_carries_the_same_message_as_text(repo: Path, cli) -> None:
    write(repo, "sandbox/access.yaml", ACCESS_THREE_ADMINS)
    text = cli("--root", str(repo), "validate", "sandbox").lines[0]
    github = cli("--root", str(repo), "validate", "sandbox", "--format", "github").lines[0]
    assert github.split("::", 2)[2] == text.split("]: ", 1)[1]


@pytest.mark.parametrize(("message", "shown"), [
    pytest.param("100% of terms", "100%25 of terms", id="percent"),
    pytest.param("line one\nline two", "line one%0Aline two", id="newline"),
    pytest.param("a\r\nb", "a%0D%0Ab", id="carriage-return"),
    pytest.param("%0A already", "%250A already", id="escape-sequence-in-text"),
    pytest.param("terms: 202710, 202720", "terms: 202710, 202720", id="colon-and-comma-kept-in-message"),
])
def test_github_format_escapes_the_message(message: str, shown: str) -> None:
    from reconciler.model import Problem, Severity

    problem = Problem("environments/a.yaml", 3, 7, Severity.ERROR, "schema", message)
    assert problem.github() == f"::error file=environments/a.yaml,line=3,col=7,title=schema::{shown}"


def test_github_format_escapes_the_properties() -> None:
    """`:` and `,` end a property value, so a file or rule holding them is escaped (and %, CR, LF)."""
    from reconciler.model import Problem, Severity

    problem = Problem("environments/a:b,c%d.yaml", 1, 1, Severity.WARNING, "x,y:z", "m::n")
    assert problem.github("top dir/") == (
        "::warning file=top dir/environments/a%3Ab%2Cc%25d.yaml,line=1,col=1,title=x%2Cy%3Az::m::n")


def test_github_format_paths_are_from_the_git_top_level(tmp_path: Path, repo: Path, cli) -> None:
    """GitHub places an annotation by the file's path in the repository, not below the settings root."""
    import shutil
    import subprocess

    top = tmp_path / "top"
    settings = top / "settings"
    settings.parent.mkdir()
    shutil.copytree(repo, settings)
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    write(settings, "sandbox/access.yaml", ACCESS_THREE_ADMINS)
    result = cli("--root", str(settings), "validate", "sandbox", "--format", "github")
    assert result.code == 1
    assert result.lines[0].startswith("::error file=settings/environments/sandbox/access.yaml,line=6,col=38,")
    write(repo, "sandbox/access.yaml", ACCESS_THREE_ADMINS)
    outside = cli("--root", str(repo), "validate", "sandbox", "--format", "github")  # not in git: from the root
    assert outside.lines[0].startswith("::error file=environments/sandbox/access.yaml,")


# --- --require-live: CI stops early while every environment is on the embedded store ----------------


def use_http(root: Path, env: str) -> None:
    path = root / "environments" / env / "environment.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "  connector: embedded\n",
        "  connector: http\n  url: https://admin.example.edu/api/v1\n"
        f"  token_env: RECONCILER_TOKEN_{env.upper()}\n  read_token_env: RECONCILER_READ_TOKEN_{env.upper()}\n")
    assert text != path.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")


def test_require_live_exits_3_while_every_environment_is_embedded(repo: Path, cli) -> None:
    result = cli("--root", str(repo), "validate", "--require-live")
    assert result.code == 3
    assert result.out == ""
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("live is not configured: production, sandbox, staging are on the embedded store")
    assert "live.connector" in last and "Set up on GitHub" in last
    assert cli("--root", str(repo), "validate").code == 0  # without the option, the example is valid


@pytest.mark.parametrize(("http", "selected", "code"), [
    pytest.param(["sandbox"], [], 0, id="one-of-three-configured"),
    pytest.param(["sandbox"], ["sandbox"], 0, id="the-selected-one-configured"),
    pytest.param(["sandbox"], ["production"], 3, id="the-selected-one-embedded"),
    pytest.param(["sandbox"], ["production", "staging"], 3, id="every-selected-one-embedded"),
    pytest.param(["production", "staging", "sandbox"], [], 0, id="all-configured"),
])
def test_require_live_asks_of_the_selected_environments(repo: Path, cli, http: list[str], selected: list[str],
                                                         code: int) -> None:
    for env in http:
        use_http(repo, env)
    result = cli("--root", str(repo), "validate", *selected, "--require-live")
    assert result.code == code, result.err
    assert ("live is not configured" in result.err) is (code == 3)


def test_require_live_reads_live_after_base_layering(repo: Path, cli) -> None:
    """A `live:` given in `_base/` counts (a grep of the environment's own file would miss it)."""
    write(repo, "_base/environment.yaml", HEADER + "kind: Environment\nlive:\n  connector: http\n"
          "  url: https://admin.example.edu/api/v1\n  token_env: RECONCILER_TOKEN\n")
    sandbox = repo / "environments" / "sandbox" / "environment.yaml"
    sandbox.write_text(sandbox.read_text(encoding="utf-8").replace("live:\n  connector: embedded\n", ""),
                       encoding="utf-8")
    assert cli("--root", str(repo), "validate", "sandbox", "--require-live").code == 0
    # production's own `connector: embedded` wins over _base/'s (mappings merge key by key)
    assert cli("--root", str(repo), "validate", "production", "--require-live").code == 3


def test_require_live_leaves_errors_their_exit_code(repo: Path, cli) -> None:
    write(repo, "sandbox/access.yaml", ACCESS_THREE_ADMINS)
    result = cli("--root", str(repo), "validate", "--require-live", "--format", "github")
    assert result.code == 1
    assert "live is not configured" not in result.err
    assert result.lines[0].startswith("::error file=environments/sandbox/access.yaml")
