"""A hypothesis state machine over plan, apply, saved plans, console edits and killed applies, on a real
git repository and the real SQLite store. After every step it holds that

- plan after a completed apply is empty;
- no console edit is overwritten by a saved plan made before it;
- live and the activity branch agree: one record per apply that reached live.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import tempfile
from collections import Counter
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from reconciler.connectors.embedded import LiveStore, store_path
from reconciler.core.apply import saved_data
from reconciler.engine import Engine, Quiet
from reconciler.errors import ReconcilerError
from reconciler.resources import example_dirs

NOW = datetime(2026, 11, 25, 12, 5, tzinfo=ZoneInfo("America/Chicago"))
ENVS = ("staging", "sandbox")
EDITS = [("schedule.nightly", False), ("schedule.nightly", True), ("merges.sections.on_delete", "delete"),
         ("access.users.console-user@example.edu", {"products": ["scheduling"]})]


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


class ApplyMachine(RuleBasedStateMachine):
    @initialize()
    def make_repository(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="reconciler-sm-"))
        self.root = self.tmp / "repo"
        self.root.mkdir()
        for dest, src in example_dirs().items():
            if src.is_dir() and dest == "environments":
                shutil.copytree(src, self.root / dest)
        shutil.rmtree(self.root / "environments" / "production")  # protected: asks for --yes; two are enough
        (self.root / ".gitignore").write_text(".reconciler/\n")
        git(self.root, "init", "-q", "-b", "main")
        git(self.root, "add", "-A")
        git(self.root, "commit", "-qm", "example")
        self.saved: Path | None = None
        self.lives_at_save: dict[str, dict[str, Any]] = {}

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def engine(self) -> Engine:
        return Engine(self.root, out=Quiet(), clock=lambda: NOW)

    # --- rules ------------------------------------------------------------------------------

    @rule()
    def apply(self) -> None:
        self.engine().apply(list(ENVS), yes=True, force=True)
        plan, faults = self.engine().plan(list(ENVS))
        assert not faults and plan.is_empty, [c.data for e in plan.environments for c in e.changes]

    @rule(env=st.sampled_from(ENVS), edit=st.sampled_from(EDITS))
    def console_edit(self, env: str, edit: tuple[str, Any]) -> None:
        if not self._live(env):
            return
        store = LiveStore(store_path(self.root), env)
        with store.transaction() as conn:
            store.console_set(conn, {edit[0]: edit[1]})

    @rule()
    def save_plan(self) -> None:
        plan, _ = self.engine().plan(list(ENVS))
        self.saved = self.tmp / "plan.json"
        self.saved.write_text(json.dumps(saved_data(plan)))
        self.lives_at_save = {env: _settings(self._live(env)) for env in ENVS}

    @precondition(lambda self: self.saved is not None)
    @rule()
    def apply_saved(self) -> None:
        assert self.saved is not None
        before = {env: self._live(env) for env in ENVS}
        try:
            self.engine().apply([], plan_file=str(self.saved), force=True)
            refused = False
        except ReconcilerError:
            refused = True
        moved = [env for env in ENVS if _settings(before[env]) != self.lives_at_save[env]]
        # an environment whose live changed since the plan was saved (an edit, an apply) is refused and
        # left as it is; the others are independent of it and take their part of the plan
        assert refused == bool(moved), moved
        assert all(_settings(self._live(env)) == _settings(before[env]) for env in moved)
        self.saved = None

    @rule(env=st.sampled_from(ENVS), reached=st.booleans())
    def killed_apply(self, env: str, reached: bool) -> None:
        """An apply killed after keeping its intent: before live took it, or after."""
        from reconciler import activity
        from reconciler.connectors import get_connector
        from reconciler.core.apply import plan_id_of, plan_one
        from reconciler.core.plan import Plan
        from reconciler.engine.records import Recorder
        from reconciler.repo import load_repository

        spec = load_repository(self.root).envs[env]
        connector = get_connector(spec, self.root)
        env_plan = plan_one(spec, connector.read(), NOW, git(self.root, "rev-parse", "HEAD").strip())
        if env_plan.is_empty:
            return
        record = {"revision": env_plan.revision, "plan_id": plan_id_of(Plan(NOW, (env_plan,)).checksum),
                  "at": datetime.now(NOW.tzinfo).isoformat(), "actor": "killed", "live_fingerprint":
                  env_plan.live_fingerprint}
        entry = activity.Entry(env, env_plan.revision, "applied", "killed", None, f"apply {env}: killed", "")
        Recorder(self.root, lambda _: None).intend(entry, record)
        if reached:
            connector.apply_changes(list(env_plan.changes), record=record)

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def live_and_the_branch_agree_once_settled(self) -> None:
        if not hasattr(self, "root") or list((self.root / ".reconciler" / "pending").glob("*.json")):
            return  # a killed run's intent is settled by the next apply of its environment
        assert self._live_applies() == self._git_applies()

    # --- reading ----------------------------------------------------------------------------

    def _live(self, env: str) -> dict[str, Any]:
        path = store_path(self.root)
        if not path.exists():
            return {}
        with closing(sqlite3.connect(path)) as conn, conn:
            row = conn.execute("SELECT doc FROM live WHERE env = ?", (env,)).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def _live_applies(self) -> Counter[str]:
        path = store_path(self.root)
        if not path.exists():
            return Counter()
        with closing(sqlite3.connect(path)) as conn, conn:
            rows = conn.execute("SELECT env, entry FROM activity").fetchall()
        entries = [(env, json.loads(entry)) for env, entry in rows]
        return Counter(env for env, e in entries if e.get("kind") == "apply" and e.get("outcome") == "applied")

    def _git_applies(self) -> Counter[str]:
        try:
            out = git(self.root, "log", "--format=%(trailers:key=Environment,valueonly,separator=)|"
                                        "%(trailers:key=Outcome,valueonly,separator=)", "reconciler/activity")
        except subprocess.CalledProcessError:
            return Counter()
        pairs = [line.split("|") for line in out.splitlines() if line.strip("|")]
        return Counter(env for env, outcome in pairs if outcome == "applied")


def _settings(live: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in live.items() if k != "applied"}


ApplyMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=10, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
test_apply_state_machine = ApplyMachine.TestCase
