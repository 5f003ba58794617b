"""EDGE: finds the root, reads `environments/`, and turns it into specs and problems.

The reading is here; the turning of bytes into documents is `core.load`, and the warm cache
(keyed by the bytes) lets a second run skip parsing and schema checks altogether.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.cache import DocumentCache
from reconciler.core import load
from reconciler.core.secrets import comment_secrets, redacted, secret_problems
from reconciler.core.yamlstrict import MAX_BYTES, Parsed
from reconciler.errors import RootNotFound, UsageError
from reconciler.model import (
    BASE_FOLDER,
    ENV_NAME_PATTERN,
    FILE_KINDS,
    Document,
    EnvironmentSpec,
    Kind,
    Problem,
    Severity,
)
from reconciler.resources import load_schemas

ENVIRONMENTS = "environments"
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_YAML_SUFFIXES = (".yaml", ".yml")
_IGNORED_PREFIXES = (".", "#", "~")
"""Hidden files and editors' locks and backups (`.#phases.yaml`, `~$phases.yaml`) are none of ours; `#phases.yaml#`,
`phases.yaml~` and `.phases.yaml.swp` do not end in .yaml and are skipped anyway. Any other *.yaml or *.yml
name that is not a kind file is an "unknown file" (a misspelt `phase.yaml` must not pass unseen)."""
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
"""Control characters (C0, DEL, C1), line separators, bidi overrides, and bytes that are not UTF-8
(decoded by the OS layer as lone surrogates): none of them may reach a terminal from a file name."""
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
CACHE_FORMAT = 7  # 7: the merge-settings rules (unknown-state, reference-data-off, deprecated-key)


def find_root(explicit: str | Path | None, cwd: Path | None = None) -> Path:
    """`--root`, else the nearest folder at or above the working one that holds environments/."""
    if explicit is not None:
        root = Path(explicit)
        if not (root / ENVIRONMENTS).is_dir():
            raise RootNotFound(f"--root {explicit}: no {ENVIRONMENTS}/ folder there")
        return root.resolve()
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ENVIRONMENTS).is_dir():
            return folder
    raise RootNotFound(
        f"no {ENVIRONMENTS}/ folder in {here} or above it; pass --root DIR or run `reconciler init`"
    )


def check_env_name(name: str) -> str:
    if not _ENV_NAME.match(name):
        raise UsageError(f"environment name {name!r} is not valid: it must match {ENV_NAME_PATTERN}")
    return name


@dataclass
class Repository:
    """What `environments/` declares: the specs that loaded and every problem found."""

    root: Path
    envs: dict[str, EnvironmentSpec] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    """Problems of no single environment: badly named folders, unknown files in _base/."""
    env_problems: dict[str, list[Problem]] = field(default_factory=dict)
    folders: list[str] = field(default_factory=list)
    doc_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per environment, the cache keys of its documents: a digest of exactly the bytes it was loaded from."""

    def select(self, names: Sequence[str], shard: tuple[int, int] | None = None) -> list[str]:
        """The environments a command acts on, in a stable order: named ones, or all."""
        for name in names:
            check_env_name(name)
            if name not in self.folders:
                raise UsageError(f"no environment {name!r} under {ENVIRONMENTS}/ ({did_you_mean(name, self.folders)})")
        chosen = list(dict.fromkeys(names)) if names else list(self.folders)
        if shard:
            index, count = shard
            chosen = [n for i, n in enumerate(chosen) if i % count == index - 1]
        return chosen


def did_you_mean(name: str, folders: Sequence[str]) -> str:
    """The closest environment name, if one is close, then every one (DESIGN §4: a mistyped name gets a
    did-you-mean)."""
    import difflib

    have = f"have: {', '.join(folders) or 'none'}"
    close = difflib.get_close_matches(name, list(folders), n=1)
    return f"did you mean {close[0]!r}? {have}" if close else have


def load_repository(root: Path, cache: DocumentCache | None = None) -> Repository:
    repo = Repository(root)
    env_root = root / ENVIRONMENTS
    loader = _Loader(root, cache or DocumentCache())
    base = loader.read_folder(env_root / BASE_FOLDER) if (env_root / BASE_FOLDER).is_dir() else {}
    folders: list[Path] = []
    for folder in sorted(p for p in env_root.iterdir() if p.name != BASE_FOLDER and not p.name.startswith(".")
                         and p.is_dir()):
        if _ENV_NAME.match(folder.name):
            folders.append(folder)
        else:
            repo.problems.append(_bad_folder(root, folder))
    files = {folder.name: loader.read_folder(folder) for folder in folders}
    keys = {name: {kind: loader.key(kind, base, own) for kind in Kind} for name, own in files.items()}
    hits = loader.cache.get_many(k for table in keys.values() for k in table.values() if k)
    hits.update(_build_misses(loader, base, files, keys, hits))
    for folder in folders:
        repo.folders.append(folder.name)
        lost = loader.lost(folder)
        repo.doc_keys[folder.name] = tuple("!" if kind in lost else k or "-" for kind, k in keys[folder.name].items())
        spec, problems = loader.environment(folder, base, files[folder.name], keys[folder.name], hits)
        repo.env_problems[folder.name] = problems
        if spec is not None:
            repo.envs[folder.name] = spec
    loader.cache.flush()
    for problem in loader.folder_problems:
        owner = problem.file.split("/")[1] if problem.file.count("/") >= 2 else ""
        repo.env_problems.get(owner, repo.problems).append(redacted(problem))
    return repo


def policy_problems(
    repo: Repository, names: Sequence[str], at: datetime, cache: DocumentCache | None = None
) -> dict[str, list[Problem]]:
    """The policy rules' problems of each named (loaded) environment, from the warm cache where the
    environment and every environment its rules read have the same bytes, within the same UTC hour
    (the rules read the date, and look a year ahead for overlapping windows)."""
    from reconciler.core.policy import check, references

    cache = cache or DocumentCache()
    hour = at.astimezone(UTC).strftime("%Y-%m-%dT%H")
    keys = {name: _policy_key(repo, name, hour, references(repo.envs[name], repo.envs))
            for name in names if name in repo.envs}
    hits = cache.get_many(keys.values())
    found: dict[str, list[Problem]] = {}
    for name, key in keys.items():
        entry = hits.get(key)
        if entry is not None and isinstance(entry.get("problems"), list):
            found[name] = [_problem_from(p) for p in entry["problems"]]
            continue
        found[name] = [redacted(p) for p in check(repo.envs[name], repo.envs, at)]
        cache.put(key, {"problems": [p.data for p in found[name]]})
    cache.flush()
    return found


def _policy_key(repo: Repository, name: str, hour: str, others: set[str]) -> str:
    digest = hashlib.sha256(f"policy\0{CACHE_FORMAT}\0{__version__}\0{hour}\0{name}".encode())
    for env in (name, *sorted(others)):
        loaded = "loaded" if env in repo.envs else "missing"
        digest.update(f"\0{env}\0{loaded}\0{','.join(repo.doc_keys.get(env, ()))}".encode())
    return digest.hexdigest()


def _bad_folder(root: Path, folder: Path) -> Problem:
    rel = shown_name(folder.relative_to(root).as_posix())
    message = f"environment folder {folder.name!r} must be named like {ENV_NAME_PATTERN}"
    return Problem(rel, 1, 1, Severity.ERROR, "name-mismatch", message)


def shown_name(name: str) -> str:
    """A file name as one printable line: control characters escaped as `repr` does (`phases\\x1b.yaml`), a
    byte that is not UTF-8 as `\\xff`, and a backslash doubled when anything was escaped."""
    if not _UNSAFE_NAME.search(name):
        return name
    return re.sub(r"\\|" + _UNSAFE_NAME.pattern, _escaped, name)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if 0xDC80 <= ord(char) <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
        return f"\\x{ord(char) - 0xDC00:02x}"
    return repr(char)[1:-1]


class _Loader:
    """Reads one folder at a time; parses each `_base/` file once, on first use."""

    def __init__(self, root: Path, cache: DocumentCache) -> None:
        self.root = root
        self.cache = cache
        self._schemas: load.SchemaSet | None = None
        self._base_parsed: dict[str, Parsed | Problem] = {}
        self.folder_problems: list[Problem] = []
        self.unreadable: set[str] = set()
        """Kind files (relative paths) that are there but could not be read: their kinds are broken."""
        self._real_root = Path(os.path.realpath(root))
        self._linked = Path(os.path.realpath(root / ENVIRONMENTS)) != self._real_root / ENVIRONMENTS
        """`environments/` itself is a link: every file under it is checked to stay inside the root."""

    @property
    def schemas(self) -> load.SchemaSet:
        if self._schemas is None:
            self._schemas = load.SchemaSet(load_schemas())
        return self._schemas

    def read_folder(self, folder: Path) -> dict[str, tuple[str, bytes]]:
        """File name → (path relative to the root, bytes), for the kind files of one folder. A file that
        cannot be read as one is a problem (its kind then counts as broken) and the run goes on."""
        found: dict[str, tuple[str, bytes]] = {}
        prefix = folder.relative_to(self.root).as_posix()
        linked = self._linked or folder.is_symlink()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            self.folder_problems.append(_file_problem(prefix, _why_unreadable(exc, link=False, what="folder")))
            return found
        for entry in entries:
            rel = f"{prefix}/{entry.name}"
            read = self._read_entry(entry, rel, linked)
            if isinstance(read, Problem):
                self.folder_problems.append(read)
                if entry.name in FILE_KINDS:
                    self.unreadable.add(rel)
            elif read is not None:
                found[entry.name] = (rel, read)
        return found

    def _read_entry(self, entry: os.DirEntry[str], rel: str, linked: bool) -> bytes | Problem | None:
        """The bytes of a kind file, its problem, or None for a file that is none of ours."""
        name = entry.name
        if _UNSAFE_NAME.search(name):
            message = "the file name has control characters (shown escaped); rename the file"
            return Problem(shown_name(rel), 1, 1, Severity.ERROR, "yaml", message)
        if name.startswith(_IGNORED_PREFIXES) or not name.endswith(_YAML_SUFFIXES):
            return None
        if name not in FILE_KINDS:
            if _is_dir(entry):
                return None
            known = ", ".join(FILE_KINDS)
            message = f"unknown file {name!r}; an environment holds only: {known}"
            return Problem(rel, 1, 1, Severity.ERROR, "schema", message)
        return self._read_kind_file(entry, rel, linked)

    def _read_kind_file(self, entry: os.DirEntry[str], rel: str, linked: bool) -> bytes | Problem:
        """A regular file inside the root, or why not. A plain file costs no stat beyond the one on its open
        descriptor; a link (or anything odd) is looked at before it is opened."""
        link = entry.is_symlink()
        if (linked or link) and not Path(os.path.realpath(entry.path)).is_relative_to(self._real_root):
            return _file_problem(rel, "the file links outside the root")
        if link or not entry.is_file(follow_symlinks=False):
            try:
                mode = entry.stat().st_mode
            except OSError as exc:
                return _file_problem(rel, _why_unreadable(exc, link=link))
            if not stat.S_ISREG(mode):
                return _file_problem(rel, f"not a regular file: it is {_kind_of(mode)}")
        return _read_regular(entry.path, rel)

    def lost(self, folder: Path) -> frozenset[Kind]:
        """The kinds of an environment with a file that is there but could not be read (its own or `_base/`'s)."""
        if not self.unreadable:
            return frozenset()
        rel = folder.relative_to(self.root).as_posix()
        return frozenset(kind for kind in Kind if f"{rel}/{kind.filename}" in self.unreadable
                         or f"{ENVIRONMENTS}/{BASE_FOLDER}/{kind.filename}" in self.unreadable)

    def environment(
        self,
        folder: Path,
        base: Mapping[str, tuple[str, bytes]],
        files: Mapping[str, tuple[str, bytes]],
        keys: Mapping[Kind, str | None],
        hits: Mapping[str, Any],
    ) -> tuple[EnvironmentSpec | None, list[Problem]]:
        docs: dict[Kind, Document] = {}
        problems: list[Problem] = []
        broken: set[Kind] = set()
        lost = self.lost(folder)
        for kind, key in keys.items():
            if kind in lost:
                broken.add(kind)
                continue
            if key is None:
                continue
            entry = hits.get(key) or self.build(kind, base.get(kind.filename), files.get(kind.filename))
            if key not in hits:
                self.cache.put(key, entry)
            problems.extend(_problem_from(p) for p in entry["problems"])
            problems.extend(_problem_from(p) for p in entry.get("secrets", []))
            if entry["doc"] is not None and not entry["problems"]:
                docs[kind] = load.from_json(entry["doc"])
            else:
                broken.add(kind)
        if Kind.ENVIRONMENT not in docs:
            if Kind.ENVIRONMENT not in lost and not any(
                    p.rule in {"yaml", "schema"} and "environment.yaml" in p.file for p in problems):
                rel = folder.relative_to(self.root).as_posix()
                message = f"{rel}/environment.yaml is required"
                problems.append(Problem(rel, 1, 1, Severity.ERROR, "schema", message))
            return None, problems
        return EnvironmentSpec(folder.name, docs, frozenset(broken)), problems

    def key(
        self, kind: Kind, base: Mapping[str, tuple[str, bytes]], files: Mapping[str, tuple[str, bytes]]
    ) -> str | None:
        parts = [base.get(kind.filename), files.get(kind.filename)]
        if parts == [None, None]:
            return None
        digest = hashlib.sha256(f"{CACHE_FORMAT}\0{__version__}\0{self.schemas.digest}\0{kind.value}".encode())
        for part in parts:
            rel, raw = part or ("", b"")
            digest.update(b"\0" + rel.encode() + b"\0" + hashlib.sha256(raw).digest())
        return digest.hexdigest()

    def build(
        self, kind: Kind, base: tuple[str, bytes] | None, own: tuple[str, bytes] | None
    ) -> dict[str, Any]:
        parsed_base = self.parse_base(kind, base) if base else None
        parsed_own = self._parse(kind, *own) if own else None
        failed = [p for p in (parsed_base, parsed_own) if isinstance(p, Problem)]
        if failed:  # the comments are still read: a credential there is refused before the YAML is fixed
            secrets = _comment_problems((base, own), [])
            return {"doc": None, "problems": [redacted(p).data for p in failed], "secrets": [p.data for p in secrets]}
        assert parsed_own is None or isinstance(parsed_own, Parsed)
        assert parsed_base is None or isinstance(parsed_base, Parsed)
        merged = load.merge(parsed_base, parsed_own) if parsed_own else parsed_base
        assert merged is not None
        file = (own or base or ("", b""))[0]
        doc = Document(kind, file, merged.data, merged.marks, merged.key_marks)
        problems = [redacted(p) for p in self.schemas.problems(doc)]
        secrets = secret_problems(doc, self.schemas.free_keys[kind.schema_name])
        secrets += _comment_problems((base, own), secrets)
        return {"doc": load.to_json(doc), "problems": [p.data for p in problems], "secrets": [p.data for p in secrets]}

    def parse_base(self, kind: Kind, base: tuple[str, bytes]) -> Parsed | Problem:
        rel = base[0]
        if rel not in self._base_parsed:
            self._base_parsed[rel] = self._parse(kind, *base)
        return self._base_parsed[rel]

    def _parse(self, kind: Kind, rel: str, raw: bytes) -> Parsed | Problem:
        parsed = load.parse_file(raw, rel)
        if isinstance(parsed, Problem):
            return parsed
        return load.check_header(parsed, rel, kind) or parsed


def _comment_problems(parts: Sequence[tuple[str, bytes] | None], found: Sequence[Problem]) -> list[Problem]:
    """Credentials in the comments of the files a document was read from, on lines not reported already."""
    out: list[Problem] = []
    for part in parts:
        if part is not None:
            rel, raw = part
            out.extend(comment_secrets(raw, rel, frozenset(p.line for p in found if p.file == rel)))
    return out


def _read_regular(path: str, rel: str) -> bytes | Problem:
    """A regular file's bytes, its size checked on the open descriptor before anything is read: never more
    than 1 MiB is read, and a FIFO swapped in since the listing cannot block the open (O_NONBLOCK)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        return _file_problem(rel, _why_unreadable(exc, link=False))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return _file_problem(rel, f"not a regular file: it is {_kind_of(info.st_mode)}")
        if info.st_size > MAX_BYTES:
            return _file_problem(rel, f"file is {info.st_size:,} bytes; the limit is 1 MiB")
        return _read_upto(fd, info.st_size)
    except OSError as exc:
        return _file_problem(rel, _why_unreadable(exc, link=False))
    finally:
        os.close(fd)


def _read_upto(fd: int, size: int) -> bytes:
    """The `size` bytes fstat gave (one read, as a rule); a file that grew since is read as it was."""
    data = os.read(fd, size) if size else b""
    while 0 < len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _file_problem(rel: str, message: str) -> Problem:
    return Problem(rel, 1, 1, Severity.ERROR, "yaml", message)


_KINDS_OF_FILE = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind_of(mode: int) -> str:
    return next((what for test, what in _KINDS_OF_FILE if test(mode)), "an unknown kind of file")


def _why_unreadable(exc: OSError, *, link: bool, what: str = "file") -> str:
    """Why a file (or folder) could not be read, in words, without its absolute path."""
    if exc.errno == errno.ELOOP:
        return "not a regular file: it is a symlink loop"
    if exc.errno == errno.ENOENT:
        return "not a regular file: it is a symlink to nothing (dangling)" if link else f"the {what} went away"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"the {what} cannot be read: permission denied"
    return f"the {what} cannot be read: {exc.strerror or type(exc).__name__}"


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a looping link
        return False


PARALLEL_MISSES = 400
_worker: _Loader | None = None


def _build_misses(
    loader: _Loader,
    base: Mapping[str, tuple[str, bytes]],
    files: Mapping[str, Mapping[str, tuple[str, bytes]]],
    keys: Mapping[str, Mapping[Kind, str | None]],
    hits: Mapping[str, Any],
) -> dict[str, Any]:
    """Parse a large cold fleet on every core; small or warm runs stay in this process."""
    misses: dict[str, tuple[str, tuple[str, bytes] | None, tuple[str, bytes] | None]] = {}
    for name, table in keys.items():
        for kind, key in table.items():
            if key and key not in hits:
                misses[key] = (kind.value, base.get(kind.filename), files[name].get(kind.filename))
    cores = os.cpu_count() or 1
    if len(misses) < PARALLEL_MISSES or cores < 2 or sys.platform != "linux":
        return {}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _worker
    _warm(loader, base)
    _worker = loader  # forked workers inherit it warm: schema validators compiled, `_base/` parsed once
    try:
        with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("fork")) as pool:
            built = dict(zip(misses, pool.map(_build_one, misses.values(), chunksize=64), strict=True))
    finally:
        _worker = None
    for key, entry in built.items():
        loader.cache.put(key, entry)
    return built


def _warm(loader: _Loader, base: Mapping[str, tuple[str, bytes]]) -> None:
    """What every worker would otherwise do for itself: compile the validators, parse `_base/`."""
    loader.schemas.warm_up()
    for kind in Kind:
        if kind.filename in base:
            loader.parse_base(kind, base[kind.filename])


def _build_one(job: tuple[str, tuple[str, bytes] | None, tuple[str, bytes] | None]) -> dict[str, Any]:
    assert _worker is not None
    kind, base, own = job
    return _worker.build(Kind(kind), base, own)


def _problem_from(data: Mapping[str, object]) -> Problem:
    return Problem(
        str(data["file"]),
        int(str(data["line"])),
        int(str(data["column"])),
        Severity(data["severity"]),
        str(data["rule"]),
        str(data["message"]),
    )
