"""The connector conformance suite: what every connector (embedded, http, a plugin) must do.

Flow: a test module subclasses **ConnectorConformance** and defines the fixture `make_connector`,
a factory `spec -> Connector`; pytest then runs every `test_*` here against that connector:

    from reconciler.testing import ConnectorConformance

    class TestMyConnector(ConnectorConformance):
        @pytest.fixture
        def make_connector(self, example_root):
            return lambda spec: MyConnector(spec, example_root)

Each test gets a copy of the example repository (`example_root`) and a spec of one of its
environments renamed to a name no other test uses, so a connector backed by a shared server needs
no cleanup between tests. The factory is called more than once per test for the same spec (two
runs holding the same environment): each call is a new connector on the same live side. A test of
something the connector does not declare in `capabilities` is skipped.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from reconciler.connectors.base import CAPABILITIES, Connector, Lease, PartialApplyError, holder_is_dead, lease_holder
from reconciler.core.apply import build_plan, failure_outcome
from reconciler.core.plan import Action, Change, fingerprint, plan_environment
from reconciler.errors import ConnectorError, LockError
from reconciler.model import EnvironmentSpec, Kind

Factory = Callable[[EnvironmentSpec], Connector]
READ_ONLY = ("available_terms", "activity", "applied")
APPLIED_KEYS = ("revision", "plan_id", "at", "actor")
"""What the `applied` record of the live state holds (schemas/live-state.schema.json)."""


def with_live(spec: EnvironmentSpec, **live: Any) -> EnvironmentSpec:
    """`spec` with its environment.yaml `live:` replaced (e.g. `connector="http", url=…, token_env=…`)."""
    env_doc = spec.docs[Kind.ENVIRONMENT]
    data = {**env_doc.data, "live": dict(live)}
    docs = {**spec.docs, Kind.ENVIRONMENT: dataclasses.replace(env_doc, data=data)}
    return dataclasses.replace(spec, docs=docs)


@cache
def example_specs() -> dict[str, EnvironmentSpec]:
    """The example repository's environments, loaded once (specs are frozen values)."""
    from reconciler.repo import load_repository
    from reconciler.resources import data_dir

    return dict(load_repository(data_dir()).envs)


def settings(live: Mapping[str, Any]) -> dict[str, Any]:
    """The live document without its read-only parts."""
    return {k: v for k, v in live.items() if k not in READ_ONLY}


def dead_holder(actor: str = "Ada <ada@x.edu>") -> str:
    """A `lease_holder()` naming a process on this host that has exited, as a killed run leaves it."""
    for _attempt in range(5):  # a pid reused at once is unlikely; try another
        proc = subprocess.Popen([sys.executable, "-c", ""])
        proc.wait()
        holder = lease_holder(actor, pid=proc.pid)
        if holder_is_dead(holder):
            return holder
    raise AssertionError("could not find the pid of an exited process")


class ConnectorConformance:
    """Subclass it and define the `make_connector` fixture (spec -> Connector) in the subclass or a conftest;
    override the class attributes to fit. Without it pytest names the missing fixture in every test."""

    env_name = "staging"
    """The example environment most tests use (its Terms: 202710, 202720, 202730)."""
    plan_env_name = "production"
    """The example environment planned and applied whole (merges, phases, access, version, requests)."""
    at = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    failing_change = Change(Action.CANCEL, "update_requests.no-such-request", value="no-such-request")
    """A change the live side cannot make (there is no such update request to cancel)."""
    lock_wait_s = 0.3
    """How long the second holder waits, when the connector's `lock` takes `wait_s`."""

    # --- fixtures --------------------------------------------------------------------------

    @pytest.fixture
    def example_root(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A fresh copy of the example repository."""
        from reconciler.resources import example_dirs

        root = tmp_path_factory.mktemp("conformance")
        for dest, src in example_dirs().items():
            if src.is_dir():
                shutil.copytree(src, root / dest)
        return root

    @pytest.fixture
    def specs(self) -> dict[str, EnvironmentSpec]:
        """The example environments, each renamed uniquely for this test."""
        tag = uuid.uuid4().hex[:8]
        return {name: dataclasses.replace(spec, name=f"{name}-{tag}") for name, spec in example_specs().items()}

    @pytest.fixture
    def spec(self, specs: dict[str, EnvironmentSpec]) -> EnvironmentSpec:
        return specs[self.env_name]

    @pytest.fixture
    def connector(self, make_connector: Factory, spec: EnvironmentSpec) -> Connector:
        return make_connector(spec)

    # --- helpers a subclass may override ---------------------------------------------------

    def read_activity(self, connector: Connector) -> list[dict[str, Any]]:
        """The live activity log, oldest first: `connector.activity()` when it has one (rows may wrap the
        entry as {"id", "at", "entry"}), else the `activity` part of a read."""
        reader = getattr(connector, "activity", None)
        if callable(reader):
            return [row["entry"] if isinstance(row, Mapping) and "entry" in row else row for row in reader()]
        return list(connector.read().get("activity") or [])

    def lock(self, connector: Connector, holder: str, ttl_s: float) -> AbstractContextManager[Lease]:
        """`connector.lock`, waiting only `lock_wait_s` when it lets us say so."""
        if "wait_s" in inspect.signature(connector.lock).parameters:
            return connector.lock(holder, ttl_s, wait_s=self.lock_wait_s)  # type: ignore[call-arg]
        return connector.lock(holder, ttl_s)

    @staticmethod
    def needs(connector: Connector, capability: str) -> None:
        """Skip the test unless the connector declares `capability`."""
        if capability not in connector.capabilities:
            pytest.skip(f"the connector does not declare {capability!r}")

    def record(self, live: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
        return {"revision": "0123abc", "plan_id": "plan-conformance", "at": self.at.isoformat(),
                "actor": "conformance", "live_fingerprint": fingerprint(live), **extra}

    # --- the suite -------------------------------------------------------------------------

    def test_is_a_connector(self, connector: Connector) -> None:
        assert isinstance(connector, Connector)

    def test_a_missing_capability_is_a_clear_error(self, connector: Connector, spec: EnvironmentSpec) -> None:
        assert set(connector.capabilities) <= set(CAPABILITIES), "capabilities must be names from CAPABILITIES"
        for capability in CAPABILITIES:
            if capability in connector.capabilities:
                connector.require(capability)
            else:
                with pytest.raises(ConnectorError, match=rf"^{re.escape(spec.name)}: connector \S+ cannot "):
                    connector.require(capability)

    def test_a_fresh_environment_reads_as_empty(self, connector: Connector) -> None:
        live = connector.read()
        assert isinstance(live, dict)
        assert settings(live) == {}
        assert "applied" not in live
        assert not live.get("activity")
        terms = live.get("available_terms")
        assert terms is None or all(isinstance(t, str) for t in terms)

    def test_apply_then_read_shows_the_changes_and_the_applied_record(self, connector: Connector) -> None:
        self.needs(connector, "write")
        before = connector.read()
        record = self.record(before, message="conformance apply")
        changes = [
            Change(Action.CHANGE, "schedule.nightly", before=None, after=True),
            Change(Action.ADD, "merges.courses.terms", value="202710"),
            Change(Action.ADD, "access.users.ana@example.edu", value={"products": ["scheduling"]}),
        ]
        connector.apply_changes(changes, record=record)
        live = connector.read()
        assert live["schedule"] == {"nightly": True}
        assert live["merges"]["courses"]["terms"] == ["202710"]
        assert live["access"]["users"] == {"ana@example.edu": {"products": ["scheduling"]}}
        wanted = {k: record[k] for k in APPLIED_KEYS}
        assert {k: live["applied"].get(k) for k in wanted} == wanted
        applies = [e for e in self.read_activity(connector) if e.get("kind") == "apply"]
        assert [(e["outcome"], e["changes"], e["plan_id"]) for e in applies] == [("applied", 3, "plan-conformance")]

    def test_no_changes_writes_nothing(self, connector: Connector) -> None:
        self.needs(connector, "write")
        live = connector.read()
        connector.apply_changes([], record=self.record(live))
        assert "applied" not in connector.read()
        assert self.read_activity(connector) == []

    def test_plan_after_apply_is_empty(self, make_connector: Factory, specs: dict[str, EnvironmentSpec]) -> None:
        spec = specs[self.plan_env_name]
        connector = make_connector(spec)
        self.needs(connector, "write")
        plan = build_plan([spec], {spec.name: connector.read()}, self.at, "0123abc")
        first = plan.environments[0]
        assert first.changes, "the example environment should need changes on a fresh live side"
        record = self.record({}, live_fingerprint=first.live_fingerprint)
        connector.apply_changes(list(first.changes), record=record)
        again = build_plan([spec], {spec.name: make_connector(spec).read()}, self.at, "0123abc")
        assert [c.data for c in again.environments[0].changes] == []
        assert again.is_empty

    def test_a_second_holder_is_refused_naming_the_holder(self, make_connector: Factory,
                                                          spec: EnvironmentSpec) -> None:
        first, second = make_connector(spec), make_connector(spec)
        self.needs(first, "lease")
        with self.lock(first, "holder-a@ci:1", 60):
            started = time.monotonic()
            with pytest.raises(LockError, match="holder-a@ci:1"), self.lock(second, "holder-b@ci:2", 60):
                pytest.fail("a second holder got the lease")
            assert time.monotonic() - started < 30, "the second holder must give up within a bounded wait"
        with self.lock(second, "holder-b@ci:2", 60):  # released on leaving the block
            pass

    def test_an_expired_lease_is_taken_over(self, make_connector: Factory, spec: EnvironmentSpec) -> None:
        self.needs(make_connector(spec), "lease")
        crashed = self.lock(make_connector(spec), "holder-a@ci:1", 0.5)
        crashed.__enter__()  # a run that dies holding the lease never leaves the block
        try:
            time.sleep(0.8)
            with self.lock(make_connector(spec), "holder-b@ci:2", 60):
                pass
        finally:
            crashed.__exit__(None, None, None)

    def test_the_holder_reenters_its_own_lease(self, make_connector: Factory, spec: EnvironmentSpec) -> None:
        """Only the outermost exit releases, even when the inner lock is another connector object on the
        same live side (as when one command's steps each open the environment)."""
        other = make_connector(spec)
        self.needs(other, "lease")
        with self.lock(make_connector(spec), "holder-a@ci:1", 60):
            with self.lock(make_connector(spec), "holder-a@ci:1", 60) as inner:
                assert inner.holder == "holder-a@ci:1"
            with pytest.raises(LockError, match="holder-a@ci:1"), self.lock(other, "holder-b@ci:2", 60):
                pytest.fail("the inner exit released the outer holder's lease")
        with self.lock(other, "holder-b@ci:2", 60) as lease:  # the outermost exit released it
            assert lease.took_over is None

    def test_a_dead_holder_on_this_host_is_taken_over_at_once(self, make_connector: Factory,
                                                              spec: EnvironmentSpec) -> None:
        self.needs(make_connector(spec), "lease")
        dead = dead_holder()
        crashed = self.lock(make_connector(spec), dead, 600)
        crashed.__enter__()  # the killed run's lease, far from expiring
        try:
            with self.lock(make_connector(spec), "holder-b@ci:2", 60) as lease:
                assert (lease.holder, lease.took_over) == ("holder-b@ci:2", dead)
                with pytest.raises(LockError, match="holder-b@ci:2"), \
                        self.lock(make_connector(spec), "holder-c@ci:3", 60):
                    pytest.fail("the lease taken over was not held")
        finally:
            crashed.__exit__(None, None, None)

    def test_a_running_holder_on_this_host_is_waited_for(self, make_connector: Factory,
                                                         spec: EnvironmentSpec) -> None:
        self.needs(make_connector(spec), "lease")
        running = lease_holder("Ada <ada@x.edu>")  # this very process
        with self.lock(make_connector(spec), running, 60), \
                pytest.raises(LockError, match=re.escape(running)), \
                self.lock(make_connector(spec), "holder-b@ci:2", 60):
            pytest.fail("a running holder's lease was taken over")

    def test_appended_activity_is_read_back(self, connector: Connector) -> None:
        self.needs(connector, "activity")
        entry = {"kind": "comment", "at": self.at.isoformat(), "actor": "conformance", "message": "hello, log"}
        connector.append_activity(entry)
        connector.append_activity({**entry, "message": "second"})
        found = self.read_activity(connector)
        assert [e.get("message") for e in found] == ["hello, log", "second"]
        assert found[0]["kind"] == "comment"

    def test_a_failing_change_reports_how_far_it_got(self, connector: Connector) -> None:
        self.needs(connector, "write")
        before = connector.read()
        good = Change(Action.ADD, "merges.courses.terms", value="202710")
        changes = [good, self.failing_change]
        with pytest.raises(Exception) as caught:
            connector.apply_changes(changes, record=self.record(before))
        error = caught.value
        assert isinstance(error, PartialApplyError) or (hasattr(error, "applied") and hasattr(error, "failed")), \
            f"a failed apply must say how far it got (PartialApplyError), not {type(error).__name__}: {error}"
        outcome = failure_outcome(changes, error)
        assert outcome.known
        assert outcome.failed == self.failing_change
        after = connector.read()
        if not outcome.applied:  # one transaction: nothing kept, no applied record
            assert fingerprint(after) == fingerprint(before)
            assert "applied" not in after
        else:
            assert after["merges"]["courses"]["terms"] == ["202710"]

    def test_execute_merge_of_a_declared_term(self, connector: Connector) -> None:
        self.needs(connector, "merge")
        live = connector.read()
        record = {k: v for k, v in self.record(live).items() if k != "live_fingerprint"}
        result = connector.execute_merge("202710", ["courses", "sections"], send_updates=False, record=record)
        assert result["term"] == "202710"
        assert list(result["types"]) == ["courses", "sections"]
        assert result["send_updates"] is False
        assert result["status"] == "completed"
        merges = [e for e in self.read_activity(connector) if e.get("kind") == "merge"]
        assert [(e["term"], e["outcome"]) for e in merges] == [("202710", "completed")]

    def test_term_sets_compare_as_sets(self, connector: Connector) -> None:
        self.needs(connector, "write")
        path = "merges.sections.terms"
        adds = [Change(Action.ADD, path, value=t) for t in ("202720", "202710", "202720")]
        connector.apply_changes(adds, record=self.record(connector.read()))
        live = connector.read()
        terms = live["merges"]["sections"]["terms"]
        assert sorted(terms) == ["202710", "202720"]
        assert len(terms) == 2
        desired = {"merges": {"sections": {"terms": ["202720", "202710"]}}}
        same = plan_environment("x", desired, live, managed=frozenset({"merges"}))
        assert same.changes == ()
        connector.apply_changes([Change(Action.REMOVE, path, value="202720")], record=self.record(live))
        assert connector.read()["merges"]["sections"]["terms"] == ["202710"]


    def test_merge_settings_paths_round_trip(self, connector: Connector) -> None:
        """send_updates, reference data, a merge type's send_updates, only_selected_terms and source of truth
        (in either live spelling), saved states and a phase's merge_state: added, changed and removed, each
        read back as written, and a plan against what was read is empty."""
        self.needs(connector, "write")
        sot = {"default": "shared", "fields": {"call_number": "institution", "room": "platform"}}
        phase = {"term": "202720", "start": "2026-11-13", "end": "2027-01-11", "editable": ["notes"],
                 "editors": ["registrar"], "merge_state": "frozen"}
        adds = [Change(Action.ADD, "send_updates", value=False),
                Change(Action.ADD, "reference_data.rooms", value=True),
                Change(Action.ADD, "merges.courses.only_selected_terms", value=False),
                Change(Action.ADD, "merges.sections.send_updates", value=False),
                Change(Action.ADD, "merges.sections.on_conflict", value="sis"),
                Change(Action.ADD, "merge_states.frozen", value={"send_updates": False}),
                Change(Action.ADD, "merge_states.post-only", value={"sections": {"post_fields": ["rooms"]}}),
                Change(Action.ADD, "phases.final-review", value=phase)]
        connector.apply_changes(adds, record=self.record(connector.read()))
        live = connector.read()
        assert live["send_updates"] is False and live["reference_data"] == {"rooms": True}
        assert live["merges"]["sections"] == {"send_updates": False, "on_conflict": "sis"}
        assert live["merge_states"]["frozen"] == {"send_updates": False}
        assert live["phases"]["final-review"]["merge_state"] == "frozen"
        changes = [Change(Action.CHANGE, "send_updates", before=False, after=True),
                   Change(Action.REMOVE, "merges.sections.on_conflict", value="sis"),
                   Change(Action.ADD, "merges.sections.source_of_truth", value=sot),
                   Change(Action.REMOVE, "merge_states.post-only", value={})]
        connector.apply_changes(changes, record=self.record(live))
        live = connector.read()
        assert live["send_updates"] is True
        assert live["merges"]["sections"] == {"send_updates": False, "source_of_truth": sot}
        assert set(live["merge_states"]) == {"frozen"}
        desired = {k: live[k] for k in ("send_updates", "reference_data", "merges", "merge_states", "phases")}
        again = plan_environment("x", desired, live, managed=frozenset(desired))
        assert again.changes == ()
