"""EDGE: finds the root, reads `environments/`, and turns it into specs and problems.

The reading is here; the turning of bytes into documents is `core.load`, and the warm cache
(keyed by the bytes) lets a second run skip parsing and schema checks altogether.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.cache import DocumentCache
from reconciler.core import load
from reconciler.core.policy import secret_problems
from reconciler.core.yamlstrict import Parsed
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
CACHE_FORMAT = 5


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
                have = ", ".join(self.folders) or "none"
                raise UsageError(f"no environment {name!r} under {ENVIRONMENTS}/ (have: {have})")
        chosen = list(dict.fromkeys(names)) if names else list(self.folders)
        if shard:
            index, count = shard
            chosen = [n for i, n in enumerate(chosen) if i % count == index - 1]
        return chosen


def load_repository(root: Path, cache: DocumentCache | None = None) -> Repository:
    repo = Repository(root)
    env_root = root / ENVIRONMENTS
    loader = _Loader(root, cache or DocumentCache())
    base = loader.read_folder(env_root / BASE_FOLDER) if (env_root / BASE_FOLDER).is_dir() else {}
    folders: list[Path] = []
    for folder in sorted(p for p in env_root.iterdir() if p.is_dir() and p.name != BASE_FOLDER):
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
        repo.doc_keys[folder.name] = tuple(k or "-" for k in keys[folder.name].values())
        spec, problems = loader.environment(folder, base, files[folder.name], keys[folder.name], hits)
        repo.env_problems[folder.name] = problems
        if spec is not None:
            repo.envs[folder.name] = spec
    loader.cache.flush()
    for problem in loader.folder_problems:
        owner = problem.file.split("/")[1] if problem.file.count("/") >= 2 else ""
        repo.env_problems.get(owner, repo.problems).append(problem)
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
    keys = {name: _policy_key(repo, name, hour, references(repo.envs[name])) for name in names if name in repo.envs}
    hits = cache.get_many(keys.values())
    found: dict[str, list[Problem]] = {}
    for name, key in keys.items():
        entry = hits.get(key)
        if entry is not None and isinstance(entry.get("problems"), list):
            found[name] = [_problem_from(p) for p in entry["problems"]]
            continue
        found[name] = check(repo.envs[name], repo.envs, at)
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
    rel = folder.relative_to(root).as_posix()
    message = f"environment folder {folder.name!r} must be named like {ENV_NAME_PATTERN}"
    return Problem(rel, 1, 1, Severity.ERROR, "name-mismatch", message)


class _Loader:
    """Reads one folder at a time; parses each `_base/` file once, on first use."""

    def __init__(self, root: Path, cache: DocumentCache) -> None:
        self.root = root
        self.cache = cache
        self._schemas: load.SchemaSet | None = None
        self._base_parsed: dict[str, Parsed | Problem] = {}
        self.folder_problems: list[Problem] = []

    @property
    def schemas(self) -> load.SchemaSet:
        if self._schemas is None:
            self._schemas = load.SchemaSet(load_schemas())
        return self._schemas

    def read_folder(self, folder: Path) -> dict[str, tuple[str, bytes]]:
        """File name → (path relative to the root, bytes), for the YAML files of one folder."""
        found: dict[str, tuple[str, bytes]] = {}
        prefix = folder.relative_to(self.root).as_posix()
        linked = folder.is_symlink()
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if not entry.name.endswith(_YAML_SUFFIXES) or entry.is_dir():
                    continue
                rel = f"{prefix}/{entry.name}"
                problem = self._check_file(Path(entry.path), rel, linked or entry.is_symlink())
                if problem:
                    self.folder_problems.append(problem)
                    continue
                with open(entry.path, "rb") as handle:
                    found[entry.name] = (rel, handle.read())
        return found

    def _check_file(self, path: Path, rel: str, linked: bool) -> Problem | None:
        if path.name not in FILE_KINDS:
            known = ", ".join(FILE_KINDS)
            message = f"unknown file {path.name!r}; an environment holds only: {known}"
            return Problem(rel, 1, 1, Severity.ERROR, "schema", message)
        if linked and not path.resolve().is_relative_to(self.root.resolve()):
            return Problem(rel, 1, 1, Severity.ERROR, "yaml", "the file links outside the root")
        return None

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
        for kind, key in keys.items():
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
            if not any(p.rule in {"yaml", "schema"} and "environment.yaml" in p.file for p in problems):
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
        if failed:
            return {"doc": None, "problems": [p.data for p in failed]}
        assert parsed_own is None or isinstance(parsed_own, Parsed)
        assert parsed_base is None or isinstance(parsed_base, Parsed)
        merged = load.merge(parsed_base, parsed_own) if parsed_own else parsed_base
        assert merged is not None
        file = (own or base or ("", b""))[0]
        doc = Document(kind, file, merged.data, merged.marks, merged.key_marks)
        problems = self.schemas.problems(doc)
        secrets = secret_problems(doc)
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
