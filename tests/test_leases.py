"""BaseConnector's lease loop and capabilities, on a small in-memory connector, and the lease over http
against a real `reconciler emulator` on 127.0.0.1 (a request whose answer is lost; `takeover`)."""

from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
import time
from collections.abc import Callable, Hashable
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_fixture import TOKEN_ENV, Emulator, emulator, start_emulator  # noqa: F401

from reconciler.connectors import get_connector
from reconciler.connectors import http as http_mod
from reconciler.connectors.base import BaseConnector, Lease, LeaseAnswer, holder_is_dead, lease_holder, parse_holder
from reconciler.errors import ConnectorError, LockError, UnreachableError
from reconciler.repo import load_repository
from reconciler.testing import with_live
from reconciler.testing.conformance import dead_holder

NODE = os.uname().nodename


class Memory(BaseConnector):
    """A live side in a dict: the lease primitives and nothing else. `lose` answers are lost after the
    lease was taken (as when a response never arrives)."""

    name = "memory"
    capabilities = frozenset({"lease"})

    def __init__(self, side: dict[str, Any], *, lose: int = 0) -> None:
        self.env = "staging"
        self.side = side
        self.lose = lose
        self.calls: list[tuple[str, str, str | None]] = []

    def _try_lease(self, holder: str, ttl_s: float, takeover: str | None = None) -> LeaseAnswer:
        self.calls.append(("take", holder, takeover))
        current = self.side.get("lease")
        if current and current[0] not in (holder, takeover) and current[1] > time.time():
            return False, current[0], current[1]
        self.side["lease"] = (holder, time.time() + ttl_s)
        if self.lose:
            self.lose -= 1
            raise UnreachableError("staging: the platform at memory:// is unreachable: ReadTimeout")
        return True, holder, self.side["lease"][1]

    def _release_lease(self, holder: str) -> None:
        self.calls.append(("release", holder, None))
        if self.side.get("lease", ("",))[0] == holder:
            del self.side["lease"]

    def _lease_scope(self) -> Hashable:
        return id(self.side)


# --- holders ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("holder", "parsed"), [
    pytest.param("reconciler@ci-7:4242", ("reconciler", "ci-7", 4242), id="plain"),
    pytest.param("Ada <ada@x.edu>@ci-7:4242", ("Ada <ada@x.edu>", "ci-7", 4242), id="actor-with-at-and-spaces"),
    pytest.param("a@b@c:1", ("a@b", "c", 1), id="rightmost-at"),
    pytest.param("killed-run", None, id="no-host"),
    pytest.param("ci@runner", None, id="no-pid"),
    pytest.param("ci@runner:", None, id="empty-pid"),
    pytest.param("@runner:1", None, id="no-actor"),
    pytest.param("ci@:1", None, id="no-node"),
    pytest.param("ci@runner:x1", None, id="pid-not-a-number"),
    pytest.param("ci@runner:\u0661\u0662", None, id="pid-not-ascii-digits"),
])
def test_a_holder_is_read_from_the_right(holder: str, parsed: tuple[str, str, int] | None) -> None:
    assert parse_holder(holder) == parsed


def test_only_a_process_on_this_host_that_no_longer_runs_is_dead() -> None:
    assert holder_is_dead(dead_holder("Ada <ada@x.edu>"))
    assert not holder_is_dead(lease_holder("Ada <ada@x.edu>"))  # this process
    assert not holder_is_dead(f"someone@{NODE}:1")  # init runs
    assert not holder_is_dead(f"someone@not-{NODE}:{dead_holder().rsplit(':', 1)[1]}")  # another host: unknown
    assert not holder_is_dead(f"someone@{NODE}:0")
    assert not holder_is_dead("killed-run")


# --- capabilities ----------------------------------------------------------------------------------


def test_a_missing_capability_is_a_clear_error() -> None:
    connector = Memory({})
    connector.require("lease")
    with pytest.raises(ConnectorError, match=r"^staging: connector memory cannot apply changes$"):
        connector.require("write")
    with pytest.raises(ConnectorError, match=r"^staging: connector memory cannot apply changes$"):
        connector.apply_changes([], record={})
    with pytest.raises(ConnectorError, match=r"^staging: connector memory cannot run an execute merge$"):
        connector.execute_merge("202710", ["courses"], send_updates=False, record={})
    with pytest.raises(ValueError, match="unknown connector capability 'wrte'"):
        connector.require("wrte")
    unleased = Memory({})
    unleased.capabilities = frozenset()
    with pytest.raises(ConnectorError, match="cannot take a lease"), unleased.lock("me@ci:1", 60):
        pytest.fail("a lease without the capability")


# --- the loop ---------------------------------------------------------------------------------------


def test_the_lease_is_a_frozen_value_and_a_refusal_says_when_it_expires() -> None:
    side: dict[str, Any] = {}
    with Memory(side).lock("me@ci:1", 60) as lease:
        assert lease == Lease("me@ci:1", side["lease"][1], None)
        with pytest.raises(dataclasses.FrozenInstanceError):
            lease.holder = "someone else"  # type: ignore[misc]
        refused = r"^staging: the live side is locked by me@ci:1 \(lease expires in (59|60)s\)$"
        with pytest.raises(LockError, match=refused), Memory(side).lock("you@ci:2", 60, wait_s=0):
            pytest.fail("taken twice")
    assert "lease" not in side


def test_a_lease_request_whose_answer_was_lost_is_released() -> None:
    side: dict[str, Any] = {}
    lossy = Memory(side, lose=1)
    with pytest.raises(UnreachableError), lossy.lock("me@ci:1", 300):
        pytest.fail("the lease was taken")
    assert lossy.calls == [("take", "me@ci:1", None), ("release", "me@ci:1", None)]
    assert "lease" not in side  # the next run need not wait 300 s


def test_a_lost_answer_while_reentering_keeps_the_outer_lease() -> None:
    side: dict[str, Any] = {}
    with Memory(side).lock("me@ci:1", 300):
        inner = Memory(side, lose=1)
        with pytest.raises(UnreachableError), inner.lock("me@ci:1", 300):
            pytest.fail("the inner lease was taken")
        assert ("release", "me@ci:1", None) not in inner.calls
        assert side["lease"][0] == "me@ci:1"
    assert "lease" not in side


def test_a_dead_holder_is_taken_over_naming_it_and_a_running_one_is_not() -> None:
    side: dict[str, Any] = {"lease": (dead_holder(), time.time() + 300)}
    dead = side["lease"][0]
    taker = Memory(side)
    with taker.lock("me@ci:1", 60, wait_s=0) as lease:
        assert lease.took_over == dead
    assert taker.calls[:2] == [("take", "me@ci:1", None), ("take", "me@ci:1", dead)]
    running = lease_holder("Ada <ada@x.edu>")
    side["lease"] = (running, time.time() + 300)
    with pytest.raises(LockError, match=re.escape(running)), Memory(side).lock("me@ci:1", 60, wait_s=0):
        pytest.fail("a running holder was taken over")


# --- over http, against the emulator ----------------------------------------------------------------


def _http(repo: Path, server: Emulator) -> Any:
    spec = load_repository(repo).envs["staging"]
    return get_connector(with_live(spec, connector="http", url=server.url, token_env=TOKEN_ENV), repo)


def _leases(server: Emulator) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(server.db)) as db, db:
        return [(str(env), str(holder)) for env, holder in db.execute("SELECT env, holder FROM lease")]


def test_a_lease_whose_answer_was_lost_over_http_is_released(
        repo: Path, start_emulator: Callable[..., Emulator],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write is made, then its connection dropped: the lease is taken but the answer never comes."""
    server = start_emulator(drop_rate=1.0, seed=7)
    monkeypatch.setenv(TOKEN_ENV, server.token)
    monkeypatch.setenv("RECONCILER_HTTP_ATTEMPTS", "2")
    monkeypatch.setenv("RECONCILER_HTTP_BACKOFF", "0.01")
    connector = _http(repo, server)
    before = http_mod.REQUESTS.copy()
    with pytest.raises(UnreachableError, match=r"^staging: "), connector.lock("me@ci:1", 300, wait_s=0.2):
        pytest.fail("the lease was taken")
    assert _leases(server) == []  # released (its answer was lost too, but the DELETE was made)
    assert (http_mod.REQUESTS - before)["DELETE lease"] >= 1


def test_the_emulator_swaps_only_the_holder_named_in_takeover(emulator: Emulator) -> None:  # noqa: F811
    lease = f"{emulator.url}/environments/staging/lease"
    with httpx.Client(headers=emulator.headers, timeout=10) as client:
        assert client.post(lease, json={"holder": "alice@a:1", "ttl_s": 60}).status_code == 200
        other = client.post(lease, json={"holder": "bob@b:2", "ttl_s": 60, "takeover": "carol@c:3"})
        assert other.status_code == 423 and other.json()["holder"] == "alice@a:1"
        assert client.post(lease, json={"holder": "bob@b:2", "ttl_s": 60, "takeover": ""}).status_code == 400
        taken = client.post(lease, json={"holder": "bob@b:2", "ttl_s": 60, "takeover": "alice@a:1"})
        assert taken.status_code == 200 and taken.json()["holder"] == "bob@b:2"
    assert _leases(emulator) == [("staging", "bob@b:2")]
