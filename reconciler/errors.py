"""One error tree for the whole tool; the CLI maps each class to an exit code.

    ReconcilerError                 exit 1: a one-line reason for the user
    ├── UsageError                  a bad argument or option
    │   └── TimeInputError          a time that is malformed, missing or ambiguous
    ├── ConfigError                 the YAML repository cannot be used (see Problem for rule hits)
    │   └── RootNotFound            no environments/ folder at or above the working folder
    ├── LiveError                   the live side failed
    │   ├── StoreError              the embedded store is unreadable or not ours
    │   ├── ConnectorError          a connector could not read or write
    │   │   └── UnreachableError    the platform did not answer
    │   ├── LockError               another run holds the environment's lease
    │   └── ConflictError           live moved under us (412, stale ETag)
    ├── PlanError                   a saved plan is stale, edited or refused by safety
    │   ├── StalePlanError
    │   └── SafetyError
    ├── ApplyFailed                 some changes were applied, one failed
    └── GitError                    the git repository cannot be read or written
"""

from __future__ import annotations


class ReconcilerError(Exception):
    """Base of every error a user may see; `str(err)` is the one line we print."""

    exit_code = 1


class UsageError(ReconcilerError):
    pass


class TimeInputError(UsageError):
    pass


class ConfigError(ReconcilerError):
    pass


class RootNotFound(ConfigError):
    pass


class LiveError(ReconcilerError):
    pass


class StoreError(LiveError):
    pass


class ConnectorError(LiveError):
    pass


class UnreachableError(ConnectorError):
    pass


class LockError(LiveError):
    pass


class ConflictError(LiveError):
    pass


class PlanError(ReconcilerError):
    pass


class StalePlanError(PlanError):
    pass


class SafetyError(PlanError):
    pass


class ApplyFailed(ReconcilerError):
    pass


class GitError(ReconcilerError):
    pass
