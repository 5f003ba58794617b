"""The activity log's records, and who is acting: what goes on the `reconciler/activity` branch.

Every apply, pause, resume, import and execute merge appends one commit to the branch
`reconciler/activity` of the repository holding the root; `reconciler.git` writes it (never
touching the work tree, the index or the checked-out branch) and reads it back. Its message carries the
trailers `Environment:`, `Revision:`, `Outcome:`, `Actor:` and `Ticket:` so that plain
`git log reconciler/activity` reads as the log; its tree keeps one `<env>.log` file per
environment, one line per record, so the branch also reads as files. Here stand the record, its
message, its `<env>.log` line and the actor.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

BRANCH = "reconciler/activity"
REF = f"refs/heads/{BRANCH}"
NO_GIT_NOTE = "no git record was written (not a git repository)"
TRAILERS = ("Environment", "Revision", "Outcome", "Actor", "Ticket")
_CI_ACTOR_VARS = ("GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "CIRCLE_USERNAME",
                  "BITBUCKET_STEP_TRIGGERER_UUID", "BUILD_REQUESTEDFOR", "USER")


@dataclass(frozen=True)
class Entry:
    """One record to write on the activity branch."""

    environment: str
    revision: str | None
    outcome: str
    actor: str
    ticket: str | None
    subject: str
    body: str
    record_id: str | None = None
    """The id a run kept the record under (`.reconciler/pending/`), so it is never written twice."""


@dataclass(frozen=True, kw_only=True)
class ActivityRecord(Entry):
    """One commit of the activity branch, read back: the record, with its commit and time."""

    sha: str
    at: datetime

    @property
    def data(self) -> dict[str, Any]:
        return {"sha": self.sha, "at": self.at.isoformat(), "environment": self.environment,
                "revision": self.revision, "outcome": self.outcome, "actor": self.actor, "ticket": self.ticket,
                "subject": self.subject, "body": self.body}


# --- who is acting ---------------------------------------------------------------------------


def actor(root: Path) -> str:
    """RECONCILER_ACTOR when set (an explicit name wins); else the CI actor in CI; else git's
    `user.name <user.email>`; else the login."""
    from reconciler.git import identity

    env = os.environ
    if env.get("RECONCILER_ACTOR"):
        return env["RECONCILER_ACTOR"]
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_ACTOR"):
        return env["GITHUB_ACTOR"]
    if in_ci():
        for name in _CI_ACTOR_VARS:
            if env.get(name):
                return env[name]
    ident = identity(root)
    if ident:
        return ident
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def in_ci() -> bool:
    """`CI` is set true, as every CI service sets it."""
    return _truthy(os.environ.get("CI"))


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}


# --- the record as text ----------------------------------------------------------------------


def compose_message(*, environment: str, revision: str | None, outcome: str, actor: str, ticket: str | None,
                    subject: str, body: str) -> str:
    """Subject, blank line, body, blank line, trailers (Ticket only when there is one)."""
    trailers = {"Environment": environment, "Revision": revision or "none", "Outcome": outcome, "Actor": actor}
    if ticket:
        trailers["Ticket"] = ticket
    parts = [_single(subject) or f"{outcome} {environment}"]
    if body.strip():
        parts.append(body.strip("\n"))
    parts.append("\n".join(f"{key}: {_single(value)}" for key, value in trailers.items()))
    return "\n\n".join(parts) + "\n"


def _single(text: str) -> str:
    return " ".join(str(text).split())


def log_line(entry: Entry) -> str:
    """`<env>.log`'s line of a record: time, outcome, revision, actor, ticket, subject, and its id."""
    from datetime import UTC

    stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
    fields = [stamp, entry.outcome, (entry.revision or "none")[:12], entry.actor, entry.ticket or "-", entry.subject]
    return "\t".join([*(_single(f) for f in fields), *([entry.record_id] if entry.record_id else [])]) + "\n"


def file_stem(environment: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", environment) or "_"


def parse_record(sha: str, at: str, message: str) -> ActivityRecord | None:
    """One commit message back into a record; None when it carries no Environment trailer."""
    paragraphs = message.strip("\n").split("\n\n")
    trailers: dict[str, str] = {}
    if len(paragraphs) > 1 or ":" in paragraphs[-1]:
        for row in paragraphs[-1].splitlines():
            key, sep, value = row.partition(":")
            if sep and key.strip() in TRAILERS:
                trailers[key.strip()] = value.strip()
    if "Environment" not in trailers:
        return None
    subject = paragraphs[0].splitlines()[0] if paragraphs and paragraphs[0] else ""
    body = "\n\n".join(paragraphs[1:-1]) if len(paragraphs) > 2 else ""
    revision = trailers.get("Revision")
    return ActivityRecord(
        sha=sha, at=datetime.fromisoformat(at), environment=trailers["Environment"],
        revision=None if revision in (None, "none") else revision, outcome=trailers.get("Outcome", ""),
        actor=trailers.get("Actor", ""), ticket=trailers.get("Ticket"), subject=subject, body=body,
    )
