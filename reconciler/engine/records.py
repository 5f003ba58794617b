"""The git side of the activity log, written as the engine goes: one record per environment, on the
branch before the next environment starts, and never lost to a killed run.

Each record is first kept in `.reconciler/pending/` (written atomically): an *intent*
before the connector is asked to apply, made *done* with the outcome once it answered, and removed
once the branch holds it. The next command that records (or reads the log) writes every done
record it finds; an intent left by a killed run is resolved when that environment's live side is
next read under its lease: live's `applied` record names the plan and instant of the apply that
happened, or says that it did not.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from reconciler.activity import NO_GIT_NOTE, Entry
from reconciler.errors import GitError
from reconciler.git import append, open_repo

PENDING = Path(".reconciler") / "pending"


class Recorder:
    """Writes activity records for one command run; safe to call from several threads."""

    def __init__(self, root: Path, note: Callable[[str], None]) -> None:
        self.root = root
        self.folder = root / PENDING
        self.note = note
        self._lock = threading.Lock()
        self._noted = False
        self._repo: Any = None
        self._opened = False

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def has_applied(self, environment: str) -> bool:
        """Whether the branch holds an apply of `environment` that reached live."""
        from reconciler.git import has_applied

        with self._lock:  # one repository, one git reader process: one thread at a time
            repo = self.repository()
            return repo is not None and has_applied(repo, environment)

    def repository(self) -> Any:
        if not self._opened:
            self._opened = True
            self._repo = open_repo(self.root, writing=True)
        return self._repo

    # --- one apply: intent, then done ------------------------------------------------------

    def intend(self, entry: Entry, applied: Mapping[str, Any]) -> Path:
        """Keep `entry` before the apply it records is attempted; `applied` is what live's `applied`
        record will say if it happens (plan_id, at)."""
        return self._keep({"state": "intent", "entry": asdict(entry),
                           "applied": {k: applied.get(k) for k in ("plan_id", "at")}})

    def done(self, kept: Path | None, entry: Entry, *, write: bool = True) -> Path:
        """The outcome is known: keep `entry` as done and (unless the caller writes it itself, in its own
        order) write it to the branch now; kept, when the branch cannot take it."""
        path = kept or self._keep({"state": "done", "entry": asdict(entry)})
        if kept is not None and not self._keeps(kept, entry):
            self._write_atomic(kept, {"state": "done", "entry": asdict(entry)})
        if write:
            self.write([path])
        return path

    def _keeps(self, kept: Path, entry: Entry) -> bool:
        """Whether `kept` already holds `entry` (an apply that went as intended): not rewritten, since
        renaming over a file just written makes the file system flush it first."""
        try:
            return bool(json.loads(kept.read_text(encoding="utf-8")).get("entry") == asdict(entry))
        except (OSError, ValueError):
            return False

    def forget(self, kept: Path) -> None:
        """Nothing happened that needs a record (the apply was refused before it began)."""
        kept.unlink(missing_ok=True)

    # --- what earlier runs left ------------------------------------------------------------

    def flush(self) -> None:
        """Write every done record an earlier run left (oldest first)."""
        done = [path for path, data in self._pending() if data.get("state") == "done"]
        if done:
            self.write(done, leftovers=True)

    def unsettled(self) -> set[str]:
        """The environments an earlier run left an intent for (settled under their lease)."""
        return {str((data.get("entry") or {}).get("environment")) for _, data in self._pending()
                if data.get("state") == "intent"}

    def resolve(self, environment: str, live: Mapping[str, Any]) -> None:
        """Settle the intents a killed run left for `environment`, against its live side read now: an
        apply that reached live left its plan id and instant in `applied` and on the live activity log."""
        reached = _applies_seen(live)
        for path, data in self._pending():
            entry = data.get("entry") or {}
            if data.get("state") != "intent" or entry.get("environment") != environment:
                continue
            wanted = data.get("applied") or {}
            if (wanted.get("plan_id"), wanted.get("at")) in reached:
                note = "(recorded by a later run: the run that applied it was stopped before it could)"
                record = Entry(**{**entry, "body": f"{entry.get('body', '')}\n\n{note}".lstrip()})
                self.done(path, record, write=False)
                self.write([path], leftovers=True)
            else:  # the run stopped before live took the change
                path.unlink(missing_ok=True)

    # --- files and the branch --------------------------------------------------------------

    def _pending(self) -> list[tuple[Path, dict[str, Any]]]:
        try:
            paths = sorted(self.folder.glob("*.json"))
        except OSError:
            return []
        found = []
        for path in paths:
            try:
                found.append((path, json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError):
                continue  # half a file cannot exist (written by rename); an unreadable one is left alone
        return found

    def _keep(self, data: Mapping[str, Any]) -> Path:
        from time import time_ns

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        self._write_atomic(path, data)
        return path

    @staticmethod
    def _write_atomic(path: Path, data: Mapping[str, Any]) -> None:
        temp = path.with_suffix(".tmp")
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True)
        # no fsync: a file renamed into place survives the process being killed (the promise), as the
        # store's WAL commits do (synchronous=NORMAL); only a machine losing power could lose it
        os.replace(temp, path)

    def write(self, paths: list[Path], *, leftovers: bool = False) -> None:
        """Write these done records to the branch, in this order, and forget them. Each carries its id
        (the file's name, on its line of `<env>.log`), so a record an earlier run wrote but was stopped
        before forgetting (`leftovers`) is not written twice."""
        with self._lock:
            entries: list[tuple[Path, Entry]] = []
            for path in paths:
                with contextlib.suppress(OSError, ValueError, TypeError):
                    data = json.loads(path.read_text(encoding="utf-8"))
                    entry = Entry(**data["entry"])
                    entries.append((path, replace(entry, record_id=path.stem)))
            if leftovers:
                entries = self._not_yet_written(entries)
            if not entries:
                return
            try:
                repo = self.repository()
                shas = None if repo is None else append(repo, [entry for _, entry in entries])
            except GitError as e:  # kept in .reconciler/pending/: the next command writes it
                names = ", ".join(dict.fromkeys(entry.environment for _, entry in entries))
                self.note(f"{names}: the git record is kept in {PENDING}/ and written by the next command: {e}")
                return
            if shas is None and not self._noted:
                self._noted = True
                self.note(NO_GIT_NOTE)
            for path, _ in entries:
                path.unlink(missing_ok=True)


    def _not_yet_written(self, entries: list[tuple[Path, Entry]]) -> list[tuple[Path, Entry]]:
        from reconciler import git

        repo = self.repository()
        if repo is None:
            return entries
        written = {i for env in {e.environment for _, e in entries} for i in git.record_ids(repo, env)}
        for path, entry in entries:
            if entry.record_id in written:
                path.unlink(missing_ok=True)
        return [(path, entry) for path, entry in entries if entry.record_id not in written]


def _applies_seen(live: Mapping[str, Any]) -> set[tuple[Any, Any]]:
    """(plan_id, at) of every apply live shows: its `applied` record and the applies on its activity log."""
    found = live.get("applied")
    seen = {(found.get("plan_id"), found.get("at"))} if isinstance(found, Mapping) else set()
    for item in live.get("activity") or []:
        if isinstance(item, Mapping) and item.get("kind") == "apply" and item.get("outcome") == "applied":
            seen.add((item.get("plan_id"), item.get("at")))
    return seen
