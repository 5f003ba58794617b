"""The coursedog connector (issue 16, items 1–2): the platform's read API, served by `reconciler emulator
--api coursedog` on 127.0.0.1 from the same store, read through the one mapping table; 401, unknown values,
unknown schools and retries; what it cannot read is left unmanaged and said so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_fixture import TOKEN_ENV, Emulator, start_emulator  # noqa: F401

from reconciler.connectors import get_connector
from reconciler.connectors.coursedog import CoursedogConnector
from reconciler.connectors.http import RetryPolicy
from reconciler.core.apply import plan_one
from reconciler.core.platform_map import SYNC_TYPES, from_live, to_live
from reconciler.errors import ConnectorError, UnreachableError
from reconciler.model import EnvironmentSpec
from reconciler.repo import load_repository
from reconciler.testing import with_live

CANARY = "canary-5be1-SECRET-coursedog-77f0"
READ_VAR = "RECONCILER_READ_TOKEN_COURSEDOG"
FAST = RetryPolicy(attempts=4, backoff_s=0.001, backoff_max_s=0.01, deadline_s=10.0, timeout_s=5.0)


def coursedog_spec(repo: Path, url: str, school: str = "staging", name: str = "staging") -> EnvironmentSpec:
    return with_live(load_repository(repo).envs[name], connector="coursedog", url=url, school=school,
                     read_token_env=READ_VAR)


def console(server: Emulator, env: str, values: dict[str, Any]) -> None:
    response = httpx.patch(f"{server.url}/environments/{env}/console", headers=server.headers,
                           json={"set": values}, timeout=10)
    assert response.status_code == 200, response.text


@pytest.fixture
def platform(start_emulator: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch) -> Emulator:  # noqa: F811
    server = start_emulator(token=CANARY, api="coursedog")
    monkeypatch.setenv(READ_VAR, CANARY)
    console(server, "staging", {"schedule.nightly": True, "schedule.realtime": True})
    return server


def connector(repo: Path, server: Emulator, school: str = "staging") -> CoursedogConnector:
    made = get_connector(coursedog_spec(repo, server.base, school), repo, writing=False)
    assert isinstance(made, CoursedogConnector)
    made.policy = FAST
    return made


def test_reads_the_three_endpoints_through_the_table(repo: Path, platform: Emulator) -> None:
    live = connector(repo, platform).read()
    assert live == {"schedule": {"nightly": True, "realtime": True},
                    "merges": {"courses": {"send_updates": True}, "sections": {"send_updates": True},
                               "relationships": {"send_updates": True}}}
    console(platform, "staging", {"schedule.nightly": False, "schedule.realtime": False})
    assert connector(repo, platform).read()["schedule"] == {"nightly": False, "realtime": False}


def test_the_table_round_trips_every_entry() -> None:
    for sync, schedule in SYNC_TYPES.items():
        live = {"schedule": dict(schedule), "merges": {"sections": {"send_updates": False}}}
        sync_back, sends = from_live(live)
        assert sync_back == sync
        assert to_live(sync_back, sends)["schedule"] == schedule
        assert sends["sections"] is False and sends["coursesCm"] is True


def test_no_token_is_401_before_routing(platform: Emulator) -> None:
    for path in ("/api/v1/staging/general/integrationSchedule", "/api/v1/nobody/general/integrationSchedule"):
        assert httpx.get(f"{platform.base}{path}", timeout=10).status_code == 401


def test_a_wrong_token_is_named_by_variable_never_shown(repo: Path, platform: Emulator,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(READ_VAR, "wrong-token-0000000000000000")
    with pytest.raises(ConnectorError) as caught:
        connector(repo, platform).read()
    assert "401" in str(caught.value) and READ_VAR in str(caught.value)
    assert CANARY not in str(caught.value) and "wrong-token" not in str(caught.value)


def test_an_unknown_sync_type_is_a_read_fault_naming_it(repo: Path, platform: Emulator) -> None:
    console(platform, "staging", {"schedule.nightly": False, "schedule.realtime": True})  # no entry gives it
    with pytest.raises(ConnectorError) as caught:
        connector(repo, platform).read()
    assert "syncType 'unmapped' is not in the mapping table" in str(caught.value)
    assert str(caught.value).startswith("staging: school staging:")


def test_an_unknown_school_is_a_404_naming_it(repo: Path, platform: Emulator) -> None:
    with pytest.raises(ConnectorError) as caught:
        connector(repo, platform, school="nowhere").read()
    assert "404" in str(caught.value) and "live.school nowhere" in str(caught.value)


def test_school_is_required_and_checked(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(READ_VAR, CANARY)
    spec = with_live(load_repository(repo).envs["staging"], connector="coursedog", url="https://app.coursedog.com",
                     read_token_env=READ_VAR)
    with pytest.raises(ConnectorError, match=r"live\.school is required"):
        get_connector(spec, repo)
    with pytest.raises(ConnectorError, match=r"live\.school is required"):
        get_connector(coursedog_spec(repo, "https://app.coursedog.com", school="../etc"), repo)


def test_plain_http_and_unlisted_hosts_are_refused(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(READ_VAR, CANARY)
    with pytest.raises(ConnectorError, match="plain http"):
        get_connector(coursedog_spec(repo, "http://app.coursedog.com"), repo)
    monkeypatch.setenv("RECONCILER_ALLOWED_HOSTS", "staging.coursedog.com")
    with pytest.raises(ConnectorError, match="not in RECONCILER_ALLOWED_HOSTS"):
        get_connector(coursedog_spec(repo, "https://app.coursedog.com"), repo)


def test_it_declares_that_it_cannot_write(repo: Path, platform: Emulator) -> None:
    made = connector(repo, platform)
    assert made.capabilities == frozenset()
    with pytest.raises(ConnectorError, match="cannot apply changes"):
        made.require("write")


def test_retries_on_5xx(repo: Path, start_emulator: Callable[..., Emulator],  # noqa: F811
                        monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_emulator(token=CANARY, api="coursedog", error_rate=0.5, seed=7)
    monkeypatch.setenv(READ_VAR, CANARY)
    for _ in range(20):  # the console too may be failed by the injected faults
        response = httpx.patch(f"{server.url}/environments/staging/console", headers=server.headers,
                               json={"set": {"schedule.nightly": True}}, timeout=10)
        if response.status_code == 200:
            break
    made = connector(repo, server)
    made.policy = RetryPolicy(attempts=12, backoff_s=0.001, backoff_max_s=0.01, deadline_s=20.0, timeout_s=5.0)
    assert made.read()["schedule"]["realtime"] is True
    assert " 50" in server.output()  # the guard logged injected 500/503s that the retries rode over
    made.policy = RetryPolicy(attempts=1, backoff_s=0.001, deadline_s=5.0, timeout_s=5.0)
    failures = 0
    for _ in range(10):
        try:
            made.read()
        except UnreachableError as e:
            failures += 1
            assert CANARY not in str(e)
    assert failures > 0  # with one attempt only, the same faults do get through


def test_what_it_cannot_read_is_left_unmanaged_and_said(repo: Path, platform: Emulator) -> None:
    from datetime import UTC, datetime

    spec = coursedog_spec(repo, platform.base)
    live = connector(repo, platform).read()
    plan = plan_one(spec, live, datetime(2026, 11, 25, 18, 0, tzinfo=UTC), None)
    assert all(change.path.startswith(("schedule.", "merges.")) and
               (change.path.startswith("schedule.") or change.path.endswith(".send_updates"))
               for change in plan.changes), plan.changes
    assert len(plan.warnings) == 1
    warning = plan.warnings[0]
    assert warning.startswith("not readable from this platform (coursedog), left unmanaged:")
    assert "phases" in warning and "merges.sections.terms" in warning
