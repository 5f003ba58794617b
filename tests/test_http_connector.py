"""The http connector: its contract with the admin API, unit-tested over httpx.MockTransport, and end to end
through the CLI against a real `reconciler emulator` on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_fixture import TOKEN_ENV, Emulator, emulator, start_emulator  # noqa: F401

from reconciler.connectors import get_connector
from reconciler.connectors import http as http_mod
from reconciler.connectors.base import PartialApplyError
from reconciler.connectors.http import HttpConnector, RetryPolicy, is_loopback
from reconciler.core.plan import Action, Change, fingerprint
from reconciler.errors import ConflictError, ConnectorError, LockError, UnreachableError
from reconciler.model import EnvironmentSpec
from reconciler.repo import load_repository
from reconciler.testing import with_live

CANARY = "canary-7d1e0f4b-SECRET-9a2c"
VAR = "RECONCILER_TOKEN_UNIT"
FAST = RetryPolicy(attempts=4, backoff_s=0.001, backoff_max_s=0.01, retry_after_max_s=0.2, deadline_s=5.0,
                   timeout_s=2.0)
RECORD = {"revision": "abc", "plan_id": "plan-1", "at": "2026-11-25T12:00:00-06:00", "actor": "tester",
          "live_fingerprint": "sha256:before"}
ADD = Change(Action.ADD, "merges.courses.terms", value="202710")
NIGHTLY = Change(Action.CHANGE, "schedule.nightly", before=None, after=True)


def spec_for(repo: Path, url: str = "https://admin.example.edu/api/v1", name: str = "staging",
             token_env: str | None = VAR) -> EnvironmentSpec:
    live: dict[str, Any] = {"connector": "http", "url": url}
    if token_env:
        live["token_env"] = token_env
    return with_live(load_repository(repo).envs[name], **live)


Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def mock(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], tuple[HttpConnector, list[httpx.Request]]]:
    """A connector whose client answers through `handler`; returns it and the requests it sent."""
    monkeypatch.setenv(VAR, CANARY)

    def make(handler: Handler) -> tuple[HttpConnector, list[httpx.Request]]:
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            request.read()
            seen.append(request)
            return handler(request)

        client = httpx.Client(transport=httpx.MockTransport(record))
        return HttpConnector(spec_for(repo), repo, client=client, policy=FAST), seen

    return make


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


def no_canary(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "loopback"), [
    pytest.param("127.0.0.1", True, id="ipv4"), pytest.param("127.8.9.10", True, id="ipv4-net"),
    pytest.param("::1", True, id="ipv6"), pytest.param("[::1]", True, id="ipv6-brackets"),
    pytest.param("localhost", True, id="localhost"), pytest.param("LocalHost", True, id="localhost-case"),
    pytest.param("10.0.0.1", False, id="private"), pytest.param("admin.example.edu", False, id="name"),
    pytest.param("localhost.example.edu", False, id="lookalike"), pytest.param("128.0.0.1", False, id="near"),
])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_plain_http_to_another_host_is_refused(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, CANARY)
    with pytest.raises(ConnectorError) as caught:
        get_connector(spec_for(repo, "http://admin.example.edu/api/v1"), repo)
    message = str(caught.value)
    assert message.startswith("staging: live.url http://admin.example.edu/api/v1 uses plain http")
    assert "https" in message
    for url in ("http://127.0.0.1:9/api/v1", "http://localhost:9/api/v1", "http://[::1]:9/api/v1",
                "https://admin.example.edu/api/v1"):
        assert isinstance(get_connector(spec_for(repo, url), repo), HttpConnector)
    with pytest.raises(ConnectorError, match="must be an https:// URL"):
        get_connector(spec_for(repo, "ftp://admin.example.edu/api"), repo)


def test_the_token_variable_is_named_never_its_value(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    with pytest.raises(ConnectorError, match=f"staging: the environment variable {VAR} .* is not set"):
        get_connector(spec_for(repo), repo)
    with pytest.raises(ConnectorError, match=r"live\.token_env is required"):
        get_connector(spec_for(repo, token_env=None), repo)
    monkeypatch.setenv(VAR, CANARY)
    connector = get_connector(spec_for(repo), repo)
    no_canary(repr(connector), str(connector), repr(vars(connector).get("spec")))
    assert VAR in repr(connector)


# --- reading and writing --------------------------------------------------------------------------


def test_read_sends_the_token_and_keeps_the_etag(mock) -> None:  # type: ignore[no-untyped-def]
    connector, seen = mock(lambda r: answer(200, {"schedule": {"nightly": True}}, etag='"sha256:abc"'))
    assert connector.read() == {"schedule": {"nightly": True}}
    assert connector.etag == "sha256:abc"
    (request,) = seen
    assert request.method == "GET"
    assert str(request.url) == "https://admin.example.edu/api/v1/environments/staging"
    assert request.headers["authorization"] == f"Bearer {CANARY}"
    assert "idempotency-key" not in request.headers


def test_apply_sends_one_batch_with_if_match_and_an_idempotency_key(mock) -> None:  # type: ignore[no-untyped-def]
    connector, seen = mock(lambda r: answer(200, {"applied": 2, "etag": '"sha256:after"'}))
    connector.apply_changes([ADD, NIGHTLY], record=RECORD)
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/api/v1/environments/staging/changes")
    assert request.headers["if-match"] == '"sha256:before"'
    assert len(request.headers["idempotency-key"]) == 36
    body = json.loads(request.content)
    assert body["changes"] == [ADD.data, NIGHTLY.data]
    assert "live_fingerprint" not in body["record"]
    assert body["record"]["plan_id"] == "plan-1"
    assert connector.etag == "sha256:after"
    connector.apply_changes([], record=RECORD)  # nothing to do: no request
    assert len(seen) == 1


def test_a_write_retried_after_a_dropped_connection_reuses_its_key(mock) -> None:  # type: ignore[no-untyped-def]
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        if calls["n"] == 2:
            raise httpx.ReadTimeout("timed out", request=request)
        if calls["n"] == 3:
            return answer(503, {"error": "try later"})
        return answer(200, {"applied": 1, "etag": '"sha256:x"'})

    connector, seen = mock(flaky)
    connector.apply_changes([ADD], record=RECORD)
    assert len(seen) == 4
    assert len({r.headers["idempotency-key"] for r in seen}) == 1
    connector.append_activity({"kind": "comment"})
    assert seen[-1].headers["idempotency-key"] != seen[0].headers["idempotency-key"]


def test_429_honours_retry_after_bounded(mock) -> None:  # type: ignore[no-untyped-def]
    calls = {"n": 0}

    def busy(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return answer(429, {"error": "busy"}, **{"Retry-After": "0.15"}) if calls["n"] == 1 else answer(200, {})

    connector, seen = mock(busy)
    started = time.monotonic()
    connector.read()
    assert time.monotonic() - started >= 0.15
    assert len(seen) == 2
    calls["n"] = 0
    connector.policy = RetryPolicy(attempts=3, backoff_s=0.001, retry_after_max_s=0.05)
    busy_for_an_hour = lambda r: answer(429, {"error": "busy"}, **{"Retry-After": "3600"})  # noqa: E731
    connector._client = httpx.Client(transport=httpx.MockTransport(busy_for_an_hour))
    started = time.monotonic()
    with pytest.raises(UnreachableError, match="still failed after 3 attempts: 429 busy"):
        connector.read()
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("status", [400, 403, 404, 409, 428])
def test_other_4xx_is_never_retried(mock, status: int) -> None:  # type: ignore[no-untyped-def]
    connector, seen = mock(lambda r: answer(status, {"error": "no"}))
    with pytest.raises(ConnectorError) as caught:
        connector.apply_changes([ADD], record=RECORD)
    assert len(seen) == 1
    assert not isinstance(caught.value, UnreachableError)
    assert str(caught.value).startswith("staging: ")


def test_5xx_and_network_faults_are_retried_a_bounded_number_of_times(mock) -> None:  # type: ignore[no-untyped-def]
    connector, seen = mock(lambda r: answer(500, {"error": "boom"}))
    with pytest.raises(UnreachableError, match="still failed after 4 attempts: 500 boom"):
        connector.read()
    assert len(seen) == 4

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    connector, seen = mock(refused)
    with pytest.raises(UnreachableError) as caught:
        connector.read()
    assert len(seen) == 4
    message = str(caught.value)
    assert message == ("staging: the platform at https://admin.example.edu/api/v1 is unreachable: GET "
                       "https://admin.example.edu/api/v1/environments/staging failed after 4 attempts: "
                       "ConnectError: [Errno 111] Connection refused")


def test_the_total_time_is_bounded(mock) -> None:  # type: ignore[no-untyped-def]
    connector, seen = mock(lambda r: answer(503, {"error": "down"}))
    connector.policy = RetryPolicy(attempts=50, backoff_s=0.2, backoff_max_s=0.2, deadline_s=0.5)
    started = time.monotonic()
    with pytest.raises(UnreachableError):
        connector.read()
    assert time.monotonic() - started < 1.0
    assert 1 < len(seen) < 50


def test_412_says_nothing_was_applied_and_to_plan_again(mock) -> None:  # type: ignore[no-untyped-def]
    connector, seen = mock(lambda r: answer(412, {"error": "etag mismatch", "etag": '"sha256:now"'}))
    with pytest.raises(ConflictError) as caught:
        connector.apply_changes([ADD], record=RECORD)
    assert str(caught.value) == ("staging: the live side changed since it was read (412); nothing was applied; "
                                 "plan again")
    assert len(seen) == 1


def test_422_is_a_partial_apply_naming_the_failed_change(mock) -> None:  # type: ignore[no-untyped-def]
    connector, _ = mock(lambda r: answer(422, {"error": "no request r-9 to cancel", "applied": 0, "failed": 1}))
    with pytest.raises(PartialApplyError) as caught:
        connector.apply_changes([ADD, NIGHTLY], record=RECORD)
    assert (caught.value.applied, caught.value.failed, caught.value.cause) == (0, NIGHTLY,
                                                                                "no request r-9 to cancel")


def test_401_names_the_variable_and_never_the_token(mock) -> None:  # type: ignore[no-untyped-def]
    connector, seen = mock(lambda r: answer(401, {"error": f"unauthorized: bad token {CANARY}"}))
    for attempt in (connector.read, lambda: connector.apply_changes([ADD], record=RECORD)):
        with pytest.raises(ConnectorError) as caught:
            attempt()
        assert f"the platform refused the token in ${VAR}" in str(caught.value)
        no_canary(str(caught.value), repr(caught.value), repr(connector))
    assert len(seen) == 2  # 401 is not retried


def test_a_server_echoing_the_token_is_redacted(mock) -> None:  # type: ignore[no-untyped-def]
    connector, _ = mock(lambda r: answer(400, {"error": f"bad header Bearer {CANARY}"}))
    with pytest.raises(ConnectorError) as caught:
        connector.read()
    assert "Bearer ***" in str(caught.value)
    no_canary(str(caught.value))


def test_without_a_planned_fingerprint_the_current_etag_is_used(mock) -> None:  # type: ignore[no-untyped-def]
    def api(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return answer(200, {}, etag='"sha256:current"')
        return answer(200, {"applied": 1, "etag": '"sha256:next"'})

    connector, seen = mock(api)
    connector.apply_changes([ADD], record={k: v for k, v in RECORD.items() if k != "live_fingerprint"})
    assert [r.method for r in seen] == ["GET", "POST"]
    assert seen[1].headers["if-match"] == '"sha256:current"'


# --- the lease -------------------------------------------------------------------------------------


def test_lock_waits_for_the_holder_then_takes_and_releases(mock) -> None:  # type: ignore[no-untyped-def]
    calls = {"n": 0}

    def lease(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.url.path.endswith("/changes"):
            return answer(200, {"applied": 1, "etag": '"e"'})
        calls["n"] += 1
        if calls["n"] < 3:
            return answer(423, {"error": "locked", "holder": "ci@runner:7", "expires": time.time() + 60})
        return answer(200, {"holder": "me@host:1", "expires": time.time() + 60})

    connector, seen = mock(lease)
    with connector.lock("me@host:1", 60, wait_s=2.0):
        connector.apply_changes([ADD], record=RECORD)
    assert [(r.method, r.url.path.rsplit("/", 1)[1]) for r in seen] == [
        ("POST", "lease"), ("POST", "lease"), ("POST", "lease"), ("POST", "changes"), ("DELETE", "lease")]
    assert json.loads(seen[0].content) == {"holder": "me@host:1", "ttl_s": 60}
    assert json.loads(seen[3].content)["lease_holder"] == "me@host:1"
    assert seen[4].url.params["holder"] == "me@host:1"
    assert connector.holder is None


def test_lock_gives_up_naming_the_holder(mock) -> None:  # type: ignore[no-untyped-def]
    locked = answer(423, {"error": "locked", "holder": "ci@runner:7", "expires": time.time() + 100})
    connector, seen = mock(lambda r: locked)
    started = time.monotonic()
    refused = r"^staging: the live side is locked by ci@runner:7 \(lease expires in \d+s\)$"
    with pytest.raises(LockError, match=refused), connector.lock("me@host:1", 60, wait_s=0.3):
        pytest.fail("the lease was taken")
    assert 0.3 <= time.monotonic() - started < 2.0
    assert all(r.method == "POST" for r in seen)
    connector, _ = mock(lambda r: locked)
    with pytest.raises(LockError, match="locked by ci@runner:7"):
        connector.apply_changes([ADD], record=RECORD)


def test_merge_and_activity(mock) -> None:  # type: ignore[no-untyped-def]
    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/merges"):
            body = json.loads(request.content)
            if body["term"] == "209990":
                return answer(409, {"error": "term 209990 is not rolled in the SIS"})
            return answer(200, {**{k: body[k] for k in ("term", "types", "send_updates")}, "status": "completed"})
        if request.method == "GET":
            since = int(request.url.params["since_id"])
            rows = [{"id": i, "at": "t", "entry": {"n": i}} for i in range(since + 1, min(since + 2, 4) + 1)]
            return answer(200, {"entries": rows[: int(request.url.params["limit"])]})
        return answer(201, {"id": 1})

    connector, seen = mock(api)
    result = connector.execute_merge("202710", ["courses"], send_updates=True, record=RECORD)
    assert result == {"term": "202710", "types": ["courses"], "send_updates": True, "status": "completed"}
    assert "live_fingerprint" not in json.loads(seen[0].content)["record"]
    assert "idempotency-key" in seen[0].headers
    with pytest.raises(ConnectorError, match="staging: the merge of term 209990 was refused: term 209990 is not"):
        connector.execute_merge("209990", ["courses"], send_updates=False, record=RECORD)
    assert [r["id"] for r in connector.activity(limit=2)] == [1, 2, 3, 4]


# --- the shared client -------------------------------------------------------------------------------


class _Slow(BaseHTTPRequestHandler):
    """Answers every GET after a pause, counting how many requests are in flight at once."""

    lock = threading.Lock()
    in_flight = 0
    most = 0
    count = 0

    def do_GET(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.count += 1
            cls.most = max(cls.most, cls.in_flight)
        time.sleep(0.3)
        with cls.lock:
            cls.in_flight -= 1
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("ETag", f'"{fingerprint({})}"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog (5) would serialise the first connections


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    server.shutdown()
    server.server_close()


def test_parallel_16_really_sends_16_requests_at_once(repo: Path, slow_server: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.engine import Engine

    monkeypatch.setenv(VAR, CANARY)
    base = load_repository(repo).envs["sandbox"]
    specs = [with_live(base, connector="http", url=slow_server, token_env=VAR) for _ in range(32)]
    import dataclasses

    specs = [dataclasses.replace(s, name=f"college-{i:02d}") for i, s in enumerate(specs)]
    _Slow.most = _Slow.count = 0
    started = time.monotonic()
    lives = Engine(repo).read_lives(specs, 16)
    elapsed = time.monotonic() - started
    assert len(lives) == 32 and _Slow.count == 32
    assert _Slow.most == 16, f"{_Slow.most} in flight at most ({elapsed:.2f}s)"
    assert elapsed < 0.3 * 32 / 4  # far from serial
    connectors = [get_connector(s, repo) for s in specs[:2]]
    assert all(isinstance(c, HttpConnector) for c in connectors)
    assert connectors[0].client is connectors[1].client is http_mod.shared_client()
    assert http_mod.shared_client()._transport._pool._max_connections >= 64  # type: ignore[attr-defined]


# --- end to end against the emulator ----------------------------------------------------------------


@pytest.fixture
def http_repo(repo: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """The example repository with every environment on the http connector, served by `emulator`."""
    from test_http_faults import to_http

    monkeypatch.setenv(TOKEN_ENV, emulator.token)
    monkeypatch.setenv("RECONCILER_HTTP_BACKOFF", "0.01")
    to_http(repo, emulator.url, TOKEN_ENV)
    return repo


def test_cli_plan_apply_over_http_converges_with_one_request_each(cli, http_repo: Path) -> None:  # type: ignore[no-untyped-def]
    envs = sorted(load_repository(http_repo).envs)
    before = http_mod.REQUESTS.copy()
    planned = cli("--root", str(http_repo), "plan", "--detailed-exitcode", "--parallel", "8")
    assert planned.code == 2, planned.err
    assert "+ merges.courses.terms Fall 2026 (202710)" in planned.out
    assert dict(http_mod.REQUESTS - before) == {"GET environment": len(envs)}, (envs, planned.out, planned.err)
    before = http_mod.REQUESTS.copy()
    applied = cli("--root", str(http_repo), "apply", "--yes", "--message", "over http")
    assert applied.code == 0, applied.err
    assert dict(http_mod.REQUESTS - before) == {"GET environment": len(envs), "POST lease": len(envs),
                                                "POST changes": len(envs), "DELETE lease": len(envs)}
    again = cli("--root", str(http_repo), "plan", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err
    for name in envs:
        connector = get_connector(load_repository(http_repo).envs[name], http_repo)
        entries = [row["entry"] for row in connector.activity()]  # type: ignore[attr-defined]
        assert [(e["kind"], e["outcome"], e["message"]) for e in entries] == [("apply", "applied", "over http")]
        assert connector.read()["applied"]["plan_id"].startswith("plan-")


def test_a_console_edit_after_the_plan_is_a_conflict(http_repo: Path, emulator: Emulator) -> None:  # noqa: F811
    connector = get_connector(load_repository(http_repo).envs["staging"], http_repo)
    seen = connector.read()
    edit = httpx.patch(f"{emulator.url}/environments/staging/console", headers=emulator.headers, timeout=10,
                       json={"set": {"schedule.nightly": False}})
    assert edit.status_code == 200, edit.text
    record = {**RECORD, "live_fingerprint": fingerprint(seen)}
    with pytest.raises(ConflictError) as caught:
        connector.apply_changes([ADD], record=record)
    assert str(caught.value) == ("staging: the live side changed since it was read (412); nothing was applied; "
                                 "plan again")
    live = connector.read()
    assert live["schedule"] == {"nightly": False}
    assert "merges" not in live and "applied" not in live
    connector.apply_changes([ADD], record={**record, "live_fingerprint": fingerprint(live)})
    assert connector.read()["merges"]["courses"]["terms"] == ["202710"]


def test_saved_plan_over_http_is_refused_once_live_moved(cli, http_repo: Path, emulator: Emulator,  # type: ignore[no-untyped-def]  # noqa: F811
                                                         tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert cli("--root", str(http_repo), "plan", "staging", "--out", str(out)).code == 0
    httpx.patch(f"{emulator.url}/environments/staging/console", headers=emulator.headers, timeout=10,
                json={"set": {"schedule.realtime": True}}).raise_for_status()
    stale = cli("--root", str(http_repo), "apply", "--plan", str(out))
    assert stale.code == 1
    assert "staging: the saved plan is stale: the live side changed since" in stale.err
    assert cli("--root", str(http_repo), "plan", "staging", "--out", str(out)).code == 0
    done = cli("--root", str(http_repo), "apply", "--plan", str(out))
    assert done.code == 0, done.err


def test_a_second_run_is_refused_by_the_lease_over_http(http_repo: Path) -> None:
    spec = load_repository(http_repo).envs["staging"]
    first, second = get_connector(spec, http_repo), get_connector(spec, http_repo)
    with first.lock("ci@runner:1", 60):  # type: ignore[call-arg]
        with pytest.raises(LockError, match="locked by ci@runner:1"), \
                second.lock("me@laptop:2", 60, wait_s=0.2):  # type: ignore[call-arg]
            pytest.fail("taken twice")
        first.apply_changes([ADD], record={**RECORD, "live_fingerprint": fingerprint(first.read())})
        with pytest.raises(LockError, match="locked by ci@runner:1"):  # a write under another's lease
            second.apply_changes([NIGHTLY], record={**RECORD, "live_fingerprint": fingerprint(second.read())})
    with second.lock("me@laptop:2", 60, wait_s=0.2):  # type: ignore[call-arg]
        pass
