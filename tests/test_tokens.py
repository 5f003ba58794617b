"""Tokens go only where the base branch says (DESIGN §5, §6): `live.read_token_env` for reads, the write
token only for writes, RECONCILER_ALLOWED_HOSTS, and `plan --base REF`, which never reads live (nor its
token) for an environment whose `live:` a pull request changed.

The platform is a real `reconciler emulator` on 127.0.0.1; the host a pull request names is a plain local
HTTP server that records every request it gets (it must get none)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_fixture import Emulator, start_emulator  # noqa: F401

from reconciler.connectors import get_connector
from reconciler.connectors import http as http_mod
from reconciler.connectors.http import ALLOWED_HOSTS, HttpConnector, allowed_entry, redact
from reconciler.core.plan import Action, Change
from reconciler.engine import Engine, default_connect
from reconciler.errors import ConnectorError
from reconciler.model import EnvironmentSpec
from reconciler.repo import load_repository

WRITE_VAR = "RECONCILER_TEST_WRITE_TOKEN"
READ_VAR = "RECONCILER_TEST_READ_TOKEN"
WRITE_TOKEN = "write-token-5f0c9e21d4b7a6"
READ_TOKEN = "read-token-3b8d71a0c6e2f9"
PR_VAR = "RECONCILER_TEST_PR_TOKEN"
PR_TOKEN = "pr-held-token-8a1f03c7e5d2b4"
RECORD = {"revision": "abc", "plan_id": "plan-1", "at": "2026-11-25T12:00:00-06:00", "actor": "tester",
          "live_fingerprint": "sha256:before"}


# --- a host a pull request names: it records what it gets ----------------------------------------


@dataclass
class Recorder:
    url: str
    port: int
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    @property
    def authorizations(self) -> list[str]:
        return [headers["authorization"] for _, _, headers in self.seen if "authorization" in headers]


@pytest.fixture
def stand_in_host() -> Iterator[Recorder]:
    """http.server on 127.0.0.1 (port 0): answers GET …/environments/<env> with an empty live state."""
    recorder = Recorder("", 0)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            recorder.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            found = self.command == "GET" and re.fullmatch(r"/api/v1/environments/[a-z-]+", self.path)
            body = b"{}" if found else b'{"error": "not here"}'
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("ETag", '"empty"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorder.port = int(server.server_address[1])
    recorder.url = f"http://127.0.0.1:{recorder.port}/api/v1"
    yield recorder
    server.shutdown()
    server.server_close()


# --- repositories --------------------------------------------------------------------------------


def set_live(repo: Path, env: str, **live: str) -> None:
    """Replace `env`'s whole `live:` block in its environment.yaml."""
    path = repo / "environments" / env / "environment.yaml"
    block = "live:\n" + "".join(f"  {key}: {value}\n" for key, value in live.items())
    text, count = re.subn(r"^live:\n(?:[ \t]+.*\n)*", block, path.read_text(encoding="utf-8"), flags=re.M)
    assert count == 1, path
    path.write_text(text, encoding="utf-8")


def on_platform(repo: Path, env: str, url: str, *, read: bool = True) -> None:
    live = {"connector": "http", "url": url, "token_env": WRITE_VAR}
    set_live(repo, env, **({**live, "read_token_env": READ_VAR} if read else live))


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30)
    return done.stdout.strip()


def commit_all(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_HTTP_BACKOFF", "0.01")
    monkeypatch.setenv("RECONCILER_HTTP_ATTEMPTS", "2")
    for name in (WRITE_VAR, READ_VAR, PR_VAR, ALLOWED_HOSTS):
        monkeypatch.delenv(name, raising=False)


def live_of(server: Emulator, env: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/environments/{env}", headers=server.headers, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- the read token for reads, the write token for writes ----------------------------------------


def test_plan_status_drift_need_only_the_read_token_and_apply_needs_the_write_one(  # type: ignore[no-untyped-def]
        cli, repo: Path, start_emulator, fast: None, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    server = start_emulator(token=READ_TOKEN)  # the platform accepts the read token only
    on_platform(repo, "staging", server.url)
    monkeypatch.setenv(READ_VAR, READ_TOKEN)  # a pull-request job: the write variable is not there at all
    checked = cli("--root", str(repo), "validate", "staging")
    assert checked.code == 0, checked.out + checked.err  # read_token_env is a variable's name, not a secret
    planned = cli("--root", str(repo), "plan", "staging", "--detailed-exitcode")
    assert planned.code == 2, planned.err
    assert "+ merges.courses.terms Fall 2026 (202710)" in planned.out
    assert cli("--root", str(repo), "status", "staging").code == 0
    assert cli("--root", str(repo), "drift", "staging").code == 0
    applied = cli("--root", str(repo), "apply", "staging", "--yes")
    assert applied.code == 1
    assert (f"staging: the environment variable {WRITE_VAR} (live.token_env) is not set; set it to the API token"
            in applied.err)
    assert "merges" not in live_of(server, "staging") and "applied" not in live_of(server, "staging")


def test_reads_send_the_read_token_and_apply_sends_the_write_token(  # type: ignore[no-untyped-def]
        cli, repo: Path, start_emulator, fast: None, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    server = start_emulator(token=WRITE_TOKEN)  # this platform accepts the write token only
    on_platform(repo, "staging", server.url)
    monkeypatch.setenv(READ_VAR, READ_TOKEN)
    monkeypatch.setenv(WRITE_VAR, WRITE_TOKEN)
    refused = cli("--root", str(repo), "plan", "staging")
    assert refused.code == 1
    assert f"staging: the platform refused the token in ${READ_VAR} (401 at {server.url})" in refused.err
    applied = cli("--root", str(repo), "apply", "staging", "--yes", "--message", "with the write token")
    assert applied.code == 0, applied.err
    assert live_of(server, "staging")["merges"]["courses"]["terms"] == ["202710", "202720", "202730"]


def test_without_read_token_env_reads_use_token_env(  # type: ignore[no-untyped-def]
        cli, repo: Path, start_emulator, fast: None, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    server = start_emulator(token=WRITE_TOKEN)
    on_platform(repo, "staging", server.url, read=False)
    monkeypatch.setenv(WRITE_VAR, WRITE_TOKEN)
    assert cli("--root", str(repo), "plan", "staging", "--detailed-exitcode").code == 2


def test_a_missing_read_token_names_its_variable_and_nothing_is_sent(  # type: ignore[no-untyped-def]
        cli, repo: Path, stand_in_host: Recorder, fast: None, monkeypatch: pytest.MonkeyPatch) -> None:
    on_platform(repo, "staging", stand_in_host.url)
    monkeypatch.setenv(WRITE_VAR, WRITE_TOKEN)  # present, but a read never falls back to it
    result = cli("--root", str(repo), "plan", "staging")
    assert result.code == 1
    assert (f"error: staging: the environment variable {READ_VAR} (live.read_token_env) is not set; set it to the "
            "read-only API token") in result.err.splitlines()
    assert stand_in_host.seen == []


def test_a_reader_sends_the_read_token_and_refuses_every_write(repo: Path, stand_in_host: Recorder,
                                                              fast: None, monkeypatch: pytest.MonkeyPatch) -> None:
    on_platform(repo, "staging", stand_in_host.url)
    monkeypatch.setenv(READ_VAR, READ_TOKEN)
    spec = load_repository(repo).envs["staging"]
    reader = get_connector(spec, repo, writing=False)
    assert reader.read() == {}
    assert stand_in_host.authorizations == [f"Bearer {READ_TOKEN}"]
    add = Change(Action.ADD, "merges.courses.terms", value="202710")
    writes = [lambda: reader.apply_changes([add], record=RECORD), lambda: reader.append_activity({"kind": "x"}),
              lambda: reader.execute_merge("202710", ["courses"], send_updates=False, record=RECORD)]
    for write in writes:
        with pytest.raises(ConnectorError, match=rf"staging: POST \w+ refused: this connector was made for reading "
                                                 rf"\(token from \${READ_VAR}\); a write needs the one from "
                                                 "live.token_env"):
            write()
    with pytest.raises(ConnectorError, match="made for reading"), reader.lock("me@laptop:1", 60):
        pytest.fail("a reader took the lease")
    assert len(stand_in_host.seen) == 1  # the one GET: no write was sent
    with pytest.raises(ConnectorError, match=f"{WRITE_VAR} \\(live.token_env\\) is not set"):
        get_connector(spec, repo)  # a writer needs the write token


def test_every_use_that_writes_asks_for_a_writer_and_reads_ask_for_readers(repo: Path) -> None:
    asked: list[tuple[str, bool]] = []

    def connect(spec: EnvironmentSpec, root: Path, *, writing: bool) -> Any:
        asked.append((spec.name, writing))
        return default_connect(spec, root, writing=writing)

    engine = Engine(repo, connect=connect)
    engine.plan(["staging"])
    engine.status(["staging"])
    engine.drift(["staging"])
    assert asked == [("staging", False)] * 3
    asked.clear()
    assert engine.apply(["staging"], yes=True) == 0
    assert asked and all(writing for _, writing in asked), asked


# --- RECONCILER_ALLOWED_HOSTS ----------------------------------------------------------------------


def test_allowed_hosts_refuses_another_host_before_sending_anything(  # type: ignore[no-untyped-def]
        cli, repo: Path, start_emulator, stand_in_host: Recorder, fast: None,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_emulator(token=READ_TOKEN)
    on_platform(repo, "production", server.url)
    on_platform(repo, "staging", stand_in_host.url)
    monkeypatch.setenv(READ_VAR, READ_TOKEN)
    monkeypatch.setenv(WRITE_VAR, WRITE_TOKEN)
    monkeypatch.setenv(ALLOWED_HOSTS, f"admin.example.edu, 127.0.0.1:{server.port}")
    refused = cli("--root", str(repo), "plan", "staging")
    assert refused.code == 1
    message = (f"error: staging: live.url's host 127.0.0.1:{stand_in_host.port} is not in {ALLOWED_HOSTS} "
               f"(admin.example.edu, 127.0.0.1:{server.port}); refused before sending anything")
    assert message in refused.err.splitlines()
    refused_apply = cli("--root", str(repo), "apply", "staging", "--yes")
    assert refused_apply.code == 1 and message.removeprefix("error: ") in refused_apply.err
    assert stand_in_host.seen == []
    listed = cli("--root", str(repo), "plan", "production", "--detailed-exitcode")
    assert listed.code == 2, listed.err


@pytest.mark.parametrize(("entry", "url", "allowed"), [
    pytest.param("127.0.0.1", "http://127.0.0.1:8700/api", True, id="host-any-port"),
    pytest.param("127.0.0.1:8700", "http://127.0.0.1:8700/api", True, id="host-port"),
    pytest.param("127.0.0.1:8701", "http://127.0.0.1:8700/api", False, id="other-port"),
    pytest.param("admin.example.edu:443", "https://admin.example.edu/api", True, id="default-port"),
    pytest.param("ADMIN.example.edu", "https://admin.example.edu/api", True, id="case"),
    pytest.param("example.edu", "https://admin.example.edu/api", False, id="parent-domain"),
    pytest.param("admin.example.edu", "https://admin.example.edu.evil.test/api", False, id="lookalike"),
    pytest.param("localhost", "http://127.0.0.1:8700/api", False, id="name-is-not-address"),
    pytest.param("[::1]:8700", "http://[::1]:8700/api", True, id="ipv6-port"),
    pytest.param("::1", "http://[::1]:9/api", True, id="ipv6-bare"),
])
def test_allowed_hosts_matches_host_and_port(entry: str, url: str, allowed: bool,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOWED_HOSTS, f"elsewhere.test,{entry}")
    if allowed:
        assert http_mod.base_url("staging", {"url": url}) == url
    else:
        with pytest.raises(ConnectorError, match=f"is not in {ALLOWED_HOSTS}"):
            http_mod.base_url("staging", {"url": url})


def test_a_malformed_allowed_hosts_entry_is_one_line() -> None:
    assert allowed_entry("[::1]") == ("::1", None)
    with pytest.raises(ConnectorError, match=f"^{ALLOWED_HOSTS}: 'host:https' is not host\\[:port\\]$"):
        allowed_entry("host:https")


def test_redaction_leaves_unrelated_words_alone() -> None:
    assert redact("the token abc1 was echoed: abc1.", "abc1") == "the token *** was echoed: ***."
    assert redact("xabc1y and abc12 are other words", "abc1") == "xabc1y and abc12 are other words"
    long = "tok-0123456789abcdefghij"
    assert redact(f"Bearer {long}; x{long}y", long) == "Bearer ***; x***y"


# --- plan --base REF ------------------------------------------------------------------------------


@pytest.fixture
def pr_repo(repo: Path, start_emulator, fast: None,  # type: ignore[no-untyped-def]  # noqa: F811
            monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose `main` has production and staging on the emulator (read and write tokens),
    checked out on a pull-request branch `pr` (no commit of its own yet)."""
    server = start_emulator(token=READ_TOKEN)
    on_platform(repo, "production", server.url)
    on_platform(repo, "staging", server.url)
    (repo / ".gitignore").write_text(".reconciler/\n", encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "settings on the platform")
    git(repo, "checkout", "-q", "-b", "pr")
    monkeypatch.setenv(READ_VAR, READ_TOKEN)
    monkeypatch.setenv(PR_VAR, PR_TOKEN)  # a variable the pull request names: the job happens to hold it
    return repo


def repoint_staging(repo: Path, url: str, token_env: str = READ_VAR) -> None:
    set_live(repo, "staging", connector="http", url=url, token_env=WRITE_VAR, read_token_env=token_env)


def test_plan_base_never_reads_an_environment_whose_live_a_pull_request_changed(  # type: ignore[no-untyped-def]
        cli, pr_repo: Path, stand_in_host: Recorder) -> None:
    repo = pr_repo
    repoint_staging(repo, stand_in_host.url, token_env=PR_VAR)
    commit_all(repo, "point staging at my server")
    before = http_mod.REQUESTS.copy()
    result = cli("--root", str(repo), "plan", "staging", "--base", "main", "--detailed-exitcode")
    assert result.code == 0, result.err  # planned against main's YAML as if applied: nothing else changed
    assert ("  warning: live settings differ from main's (live.read_token_env, live.url changed): planned against "
            "main's YAML; live was not read and no token was used") in result.out.splitlines()
    assert stand_in_host.seen == []
    assert before == http_mod.REQUESTS  # not one request, to any host


def test_plan_base_plans_a_changed_live_against_the_base_yaml_and_reads_the_others(  # type: ignore[no-untyped-def]
        cli, pr_repo: Path, stand_in_host: Recorder) -> None:
    repo = pr_repo
    repoint_staging(repo, stand_in_host.url)
    settings = repo / "environments" / "staging" / "merge-settings.yaml"
    settings.write_text(settings.read_text(encoding="utf-8").replace("realtime: false", "realtime: true"),
                        encoding="utf-8")
    shutil.copytree(repo / "environments" / "sandbox", repo / "environments" / "trial")
    trial = repo / "environments" / "trial" / "environment.yaml"
    trial.write_text(trial.read_text(encoding="utf-8").replace("name: sandbox", "name: trial"), encoding="utf-8")
    commit_all(repo, "staging on my server, merges in real time; a trial environment")
    before = http_mod.REQUESTS.copy()
    result = cli("--root", str(repo), "plan", "--base", "main", "--format", "json", "--detailed-exitcode")
    assert result.code == 2, result.err
    envs = {env["name"]: env for env in json.loads(result.out)["environments"]}
    assert envs["staging"]["warnings"] == [
        "live settings differ from main's (live.url changed): planned against main's YAML; live was not read and "
        "no token was used"]
    pr_commit = git(repo, "rev-parse", "HEAD").strip()
    assert envs["staging"]["changes"] == [
        {"action": "change", "path": "schedule.realtime", "before": False, "after": True,
         "because": f'commit {pr_commit[:7]} "staging on my server, merges in real time; a trial environment" '
                    "by Test Registrar"}]  # only the pull request's own commit: the stand-in is main as applied
    assert envs["trial"]["warnings"] == [
        "trial is not in main's YAML: planned against an empty live; live was not read and no token was used"]
    assert envs["trial"]["changes"]
    assert envs["production"]["warnings"] == [] and envs["production"]["changes"]  # read from the platform
    assert stand_in_host.seen == []
    assert dict(http_mod.REQUESTS - before) == {"GET environment": 1}  # production's read, and nothing else
    markdown = cli("--root", str(repo), "plan", "staging", "--base", "main", "--format", "markdown")
    assert "- live settings differ from main's (live.url changed)" in markdown.out
    assert stand_in_host.seen == []


def test_plan_base_reads_an_unchanged_live_with_the_read_token(  # type: ignore[no-untyped-def]
        cli, pr_repo: Path) -> None:
    repo = pr_repo
    before = http_mod.REQUESTS.copy()
    result = cli("--root", str(repo), "plan", "production", "staging", "--base", "main", "--detailed-exitcode")
    assert result.code == 2, result.err
    assert "warning:" not in result.out
    assert dict(http_mod.REQUESTS - before) == {"GET environment": 2}


def test_plan_base_with_an_unknown_ref_is_one_line(cli, pr_repo: Path) -> None:  # type: ignore[no-untyped-def]
    repo = pr_repo
    before = http_mod.REQUESTS.copy()
    result = cli("--root", str(repo), "plan", "--base", "no-such-branch")
    assert result.code == 1
    assert result.err.strip().splitlines() == [
        "error: --base no-such-branch: git cannot read environments/ at that revision (unknown revision, or not in "
        "this repository's history; fetch it first, e.g. `git fetch origin main`)"]
    assert result.out == "" and before == http_mod.REQUESTS


def test_an_embedded_reader_reads_the_same_store(repo: Path) -> None:
    """The embedded store has no token: a reader of it is the same store."""
    spec = load_repository(repo).envs["staging"]
    assert get_connector(spec, repo, writing=False).read() == get_connector(spec, repo).read()
    assert not isinstance(get_connector(spec, repo, writing=False), HttpConnector)
