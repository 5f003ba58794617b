"""Credentials in the YAML, and the one redaction every message goes through (DESIGN §2, §6). Pure.

Place in the flow: `load` builds a document; `secret_problems` (and `comment_secrets`, for the file's
comments) turns what looks like a credential into `secret-in-config` problems, once per document at load
time, so the warm cache keeps the answer. `redacted` is applied by the loader to every schema, dialect and
policy message before it is kept or shown: no message ever repeats a value shaped like a credential.

Two kinds of evidence: a value's *shape* (a GitHub token, a JWT, `user:pass@` in a URL…) counts wherever
it stands, keys included; a key's *name* (token, password, secret…) counts only where the schema fixes
the keys — role and permission names (`reset_user_password`, `password_admins`) are the platform's words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.model import Document, Path_, Problem, Severity

RULE = "secret-in-config"
REDACTED = "<redacted>"
ANY = -1
"""In a shape path (`free_key_paths`): any list index, or any key of a mapping whose keys the user names."""

SECRET_KEY = re.compile(r"(token|passw(or)?d|secret|api[_-]?key|private[_-]?key|credential)", re.I)
ALLOWED_KEYS = frozenset({"token_env", "read_token_env"})
"""Fixed keys named like a secret that hold the *name* of the variable holding it."""

_QUERY_NAMES = r"[a-z0-9_.-]*(?:token|secret|passw(?:or)?d|pwd|api[_-]?key|apikey|signature|credential)[a-z0-9_.-]*"
# (what it is, its pattern; a group `s` marks the part to hide when not the whole match)
_SHAPES: tuple[tuple[str, str], ...] = (
    ("a GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    ("a GitLab token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("an AWS access key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("a Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/(?P<s>[A-Za-z0-9/]{20,})"),
    ("a private key", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY"
                      r"(?: BLOCK)?-----)?"),
    ("a JWT", r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    ("an API key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bsk-[A-Za-z0-9_-]*[A-Za-z0-9]{20}"
                   r"|\bAIza[0-9A-Za-z_-]{35}|\bnpm_[A-Za-z0-9]{36}|\bpypi-AgE[A-Za-z0-9_-]{20,}"),
    ("a bearer token", r"\b(?:[Bb]earer|BEARER|Basic)\s+(?P<s>[A-Za-z0-9._~+/=-]{20,})"),
    ("a password in a URL", r"://(?P<s>[^/\s:@]+:[^/\s@]+)@"),
    ("a token in a URL", r"://[^\s?#]*[?#](?:[^\s#]*?[&;])?(?i:" + _QUERY_NAMES + r"|key|pass|sig|auth)"
                              r"=(?P<s>[^&#;\s'\"]+)"),
)
_HINTS = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "akia", "asia", "xox", "hooks.slack",
          "-----begin", "eyj", "sk_", "rk_", "sk-", "aiza", "npm_", "pypi-", "bearer", "basic", "://")
"""A literal part of every shape, lower-cased: the quick look before the patterns (tests hold them together)."""
_KEY_HINTS = ("token", "passw", "secret", "apikey", "api_key", "api-key", "private", "credential")
_BYTE_HINTS = tuple(hint.encode() for hint in _HINTS)

_PATTERNS = tuple(re.compile(pattern) for _, pattern in _SHAPES)
CREDENTIAL = re.compile("|".join(f"(?P<g{i}>{p.replace('(?P<s>', '(?:')})" for i, (_, p) in enumerate(_SHAPES)))
"""Any credential shape at once (detection); `shape_of` names the one that matched."""
_RANDOM = (
    re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{32,}(?![0-9A-Za-z])", re.I),
    re.compile(r"(?<![A-Za-z0-9+/_-])(?=[A-Za-z0-9+/_-]*[0-9])(?=[A-Za-z0-9+/_-]*[a-z])(?=[A-Za-z0-9+/_-]*[A-Z])"
               r"[A-Za-z0-9+/_-]{32,}=*"),
)
"""Long hex or mixed-case runs: not evidence enough to refuse a value (a commit sha in a window's reason is
fine), but never repeated in a message either."""


def shape_of(match: re.Match[str]) -> str:
    return _SHAPES[int(str(match.lastgroup)[1:])][0]


def redact(text: str) -> str:
    """`text` with every credential-shaped part, and every long random-looking run, as `<redacted>`."""
    for pattern in _PATTERNS:
        text = pattern.sub(_hide, text)
    for pattern in _RANDOM:
        text = pattern.sub(REDACTED, text)
    return text


def _hide(match: re.Match[str]) -> str:
    if match.groupdict().get("s") is None:
        return REDACTED
    start, end = match.span("s")
    whole = match.group()
    return whole[: start - match.start()] + REDACTED + whole[end - match.start():]


def redacted(problem: Problem) -> Problem:
    """The problem with its message redacted (itself when there was nothing to hide)."""
    message = redact(problem.message)
    if message == problem.message:
        return problem
    return Problem(problem.file, problem.line, problem.column, problem.severity, problem.rule, message)


def may_hold_a_secret(text: str) -> bool:
    """A quick look at every key and value at once for the literal part of each pattern: the regular
    expressions cost a hundred times more, and most documents hold nothing suspect."""
    lower = text.lower()
    return any(hint in lower for hint in _KEY_HINTS) or any(hint in lower for hint in _HINTS)


def free_key_paths(schema: Mapping[str, Any]) -> frozenset[Path_]:
    """The shape paths (`ANY` for a list index or a user-named key) of the mappings whose keys the user
    names (a schema `additionalProperties` or `patternProperties`): role names, permission names."""
    found: set[Path_] = set()
    _visit(schema, schema, (), found, 0)
    return frozenset(found)


def _visit(root: Mapping[str, Any], node: Any, path: Path_, found: set[Path_], depth: int) -> None:
    if not isinstance(node, Mapping) or depth > 40:
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        _visit(root, _resolve(root, ref), path, found, depth + 1)
    for word in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(word) or ():
            _visit(root, sub, path, found, depth + 1)
    for word in ("then", "else"):
        _visit(root, node.get(word), path, found, depth + 1)
    for key, sub in (node.get("properties") or {}).items():
        _visit(root, sub, (*path, key), found, depth + 1)
    extra, patterns = node.get("additionalProperties"), node.get("patternProperties") or {}
    if isinstance(extra, Mapping) or extra is True or patterns:
        found.add(path)
        for sub in (extra, *patterns.values()):
            _visit(root, sub, (*path, ANY), found, depth + 1)
    _visit(root, node.get("items"), (*path, ANY), found, depth + 1)


def _resolve(root: Mapping[str, Any], ref: str) -> Any:
    """A `$ref` into the same schema, relative (`#/$defs/x`) or by its `$id` (as fastjsonschema rewrites
    them); None for any other."""
    uri, _, fragment = ref.partition("#")
    if uri not in ("", root.get("$id")) or not fragment.startswith("/"):
        return None
    node: Any = root
    for part in fragment[1:].split("/"):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def names_a_secret(path: Path_, free: frozenset[Path_]) -> bool:
    """Is the value at `path` under a fixed key named like a secret (`token_env`, `password`)? A list item
    answers for its list's key; a user-named key (a permission) is never a secret's name."""
    shape: Path_ = ()
    key: str | None = None
    for part in path:
        if isinstance(part, int):
            shape = (*shape, ANY)
            continue
        key = None if shape in free else part
        shape = (*shape, ANY if key is None else part)
    return key is not None and bool(SECRET_KEY.search(key))


def secret_problems(doc: Document, free: frozenset[Path_] = frozenset()) -> list[Problem]:
    """Secrets in one document; `free`: the document's user-named key positions (`free_key_paths`)."""
    if not may_hold_a_secret(json.dumps(doc.data, default=str)):
        return []
    found: list[Problem] = []
    for path, key, named, value in _walk(doc.data, (), (), free):
        if key is not None:
            found.extend(_key_problems(doc, path, key, named))
        if isinstance(value, str):
            found.extend(_value_problems(doc, path, key, value))
    return found


def _key_problems(doc: Document, path: Path_, key: str, named: bool) -> Iterator[Problem]:
    mark = doc.mark_of(path, key=True)
    shape = CREDENTIAL.search(key)
    if shape:
        yield Problem.at(mark, Severity.ERROR, RULE, f"this key looks like a credential ({shape_of(shape)}); "
                         "keep secrets out of YAML (use token_env)")
    elif not named and key not in ALLOWED_KEYS and SECRET_KEY.search(key):
        message = f"key {key!r} looks like a secret; tokens come only from the environment (token_env)"
        yield Problem.at(mark, Severity.ERROR, RULE, message)


def _value_problems(doc: Document, path: Path_, key: str | None, value: str) -> Iterator[Problem]:
    mark = doc.mark_of(path)
    shape = CREDENTIAL.search(value)
    if shape:
        yield Problem.at(mark, Severity.ERROR, RULE, f"this value looks like a credential ({shape_of(shape)}); "
                         "keep secrets out of YAML (use token_env)")
    elif key in ALLOWED_KEYS and _not_a_name(value):
        yield Problem.at(mark, Severity.ERROR, RULE, f"{key} holds what looks like a token itself; it names the "
                         "environment variable that holds the token")


def _not_a_name(value: str) -> bool:
    """Random-looking, or long without a word break: a token rather than a variable's name
    (RECONCILER_TOKEN_PRODUCTION)."""
    return any(p.search(value) for p in _RANDOM) or (len(value) >= 32 and "_" not in value)


def _walk(node: Any, path: Path_, shape: Path_,
          free: frozenset[Path_]) -> Iterator[tuple[Path_, str | None, bool, Any]]:
    """(path, key or None for list items, whether the user names that key, value) for every entry below
    `node`; `shape` is `path` with list indexes and user-named keys as `ANY`."""
    if isinstance(node, Mapping):
        named = shape in free
        for key, value in node.items():
            child = (*path, key)
            yield child, str(key), named, value
            if isinstance(value, (Mapping, list)):
                yield from _walk(value, child, (*shape, ANY if named else key), free)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            child = (*path, index)
            yield child, None, False, value
            if isinstance(value, (Mapping, list)):
                yield from _walk(value, child, (*shape, ANY), free)


def comment_secrets(raw: bytes, file: str, skip_lines: frozenset[int] = frozenset()) -> list[Problem]:
    """Credential shapes in the comments of one file (a comment is in git history just the same); words
    like "token" in a comment are fine. `skip_lines`: lines whose value was already reported."""
    lower = raw.lower()
    if b"#" not in raw or not any(hint in lower for hint in _BYTE_HINTS):
        return []
    found: list[Problem] = []
    for number, line in enumerate(raw.decode("utf-8-sig", errors="replace").split("\n"), 1):
        start = _comment_start(line)
        match = CREDENTIAL.search(line, start) if start >= 0 and number not in skip_lines else None
        if match:
            message = f"this comment holds what looks like a credential ({shape_of(match)}); remove it (and revoke it)"
            found.append(Problem(file, number, match.start() + 1, Severity.ERROR, RULE, message))
    return found


def _comment_start(line: str) -> int:
    """Where a comment starts in a line (`#` first, or after a space or tab), -1 without one. Quotes are
    not followed: a value holding ` #` is reported as a value, and its line skipped here."""
    if line.lstrip(" \t").startswith("#"):
        return line.index("#")
    starts = [i + 1 for i in (line.find(" #"), line.find("\t#")) if i >= 0]
    return min(starts, default=-1)
