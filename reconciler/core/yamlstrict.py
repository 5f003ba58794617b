"""Text → plain data under the strict dialect of DESIGN §2, with the mark of every value.

YAML 1.1 turns `NO` into false and `04:00` into 240; here scalars resolve as in the
YAML 1.2 core schema and everything else stays a string for the schema to check (so do
`.nan`, `.inf` and numbers too big for a float: no rule can compare them). Anchors,
aliases, tags (the bare `!` too), duplicate keys, several documents, deep nesting and big
files are refused. Only LF and CR break lines, as in YAML 1.2: NEL, LS and PS (which the
YAML 1.1 parser would break on) are plain characters, in comments and in values.
We build the tree from the parser's events (C parser where present) because the composer
would silently expand aliases before we could refuse them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model import Mark, Path_

yaml: Any = None
"""PyYAML, imported by the first parse (`_pyyaml`): a warm run, served from the cache, parses nothing."""

MAX_BYTES = 1 << 20
# Anchors, aliases and tags can only be written with these characters; text without them
# takes the fast path through the C composer.
_MAY_HOLD_REFUSED = re.compile(r"[&*!]")
MAX_DEPTH = 64



def _pyyaml() -> Any:
    global yaml, _Loader
    if yaml is None:
        import yaml as module

        yaml, _Loader = module, getattr(module, "CSafeLoader", module.SafeLoader)
    return yaml


_Loader: Any = None

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES = frozenset({"true", "True", "TRUE"})
_FALSES = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"[-+]?[0-9]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_MAX_DIGITS = 4300  # Python's limit for int(text); a longer run of digits stays a string
# YAML 1.1 line breaks that YAML 1.2 reads as ordinary characters; see `_hide_breaks`.
_OLD_BREAKS = "\x85\u2028\u2029"
_PRIVATE_USE = range(0xF0000, 0xF0100)  # stand-ins for them, taken from a plane editors leave alone


class DialectError(Exception):
    """The text is not a document of the strict dialect; `mark` says where."""

    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


@dataclass(frozen=True)
class Parsed:
    data: Any
    marks: dict[Path_, Mark]
    key_marks: dict[Path_, Mark]


def resolve_plain(text: str) -> Any:
    """Resolve a plain (unquoted) scalar as the YAML 1.2 core schema does."""
    if text in _NULLS:
        return None
    if text in _TRUES:
        return True
    if text in _FALSES:
        return False
    if len(text) > _MAX_DIGITS:
        return text
    if _INT.match(text):
        return int(text)
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text) and any(ch.isdigit() for ch in text):
        number = float(text)
        return number if math.isfinite(number) else text
    return text


def decode(raw: bytes, file: str) -> str:
    if len(raw) > MAX_BYTES:
        raise DialectError(Mark(file, 1, 1), f"file is {len(raw):,} bytes; the limit is 1 MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DialectError(Mark(file, line, column), "not UTF-8 text (binary content?)") from None
    if "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        raise DialectError(Mark(file, line, 1), "not text: it contains a NUL byte")
    return text


def parse(raw: bytes, file: str) -> Parsed:
    """Parse one strict-dialect document; raise DialectError at the first violation."""
    _pyyaml()
    text, stand_ins = _hide_breaks(decode(raw, file))
    parsed = _parse_text(text, file)
    return _restore_breaks(parsed, stand_ins) if stand_ins else parsed


def _hide_breaks(text: str) -> tuple[str, dict[int, int]]:
    """Swap NEL, LS and PS for private-use characters the text does not hold, so the YAML 1.1 parser
    sees no line break where YAML 1.2 has none (a column stays a column: one character for one)."""
    found = [ch for ch in _OLD_BREAKS if ch in text]
    if not found:
        return text, {}
    free = (chr(c) for c in _PRIVATE_USE if chr(c) not in text and f"{c:x}" not in text.lower())
    swap = {ord(ch): ord(next(free)) for ch in found}
    return text.translate(swap), {new: old for old, new in swap.items()}


def _restore_breaks(parsed: Parsed, table: dict[int, int]) -> Parsed:
    def back(value: Any) -> Any:
        if isinstance(value, str):
            return value.translate(table)
        if isinstance(value, Mapping):
            return {back(k): back(v) for k, v in value.items()}
        return [back(v) for v in value] if isinstance(value, list) else value

    def paths(marks: dict[Path_, Mark]) -> dict[Path_, Mark]:
        return {tuple(back(part) for part in path): mark for path, mark in marks.items()}

    return Parsed(back(parsed.data), paths(parsed.marks), paths(parsed.key_marks))


def _parse_text(text: str, file: str) -> Parsed:
    if not _MAY_HOLD_REFUSED.search(text):
        return _parse_composed(text, file)
    builder = _Builder(file)
    try:
        for event in yaml.parse(text, Loader=_Loader):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _mark(file, mark) if mark else Mark(file, 1, 1)
        raise DialectError(where, _describe(exc, text, mark)) from None
    except yaml.YAMLError as exc:
        raise DialectError(Mark(file, 1, 1), f"not valid YAML: {exc}") from None
    return builder.result()


def _parse_composed(text: str, file: str) -> Parsed:
    """The fast path: the C composer builds the nodes; we resolve scalars and check keys."""
    try:
        loader = _Loader(text)
        try:
            nodes = [loader.get_node()] if loader.check_node() else []
            if loader.check_node():
                nodes.append(loader.get_node())
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _mark(file, mark) if mark else Mark(file, 1, 1)
        raise DialectError(where, _describe(exc, text, mark)) from None
    if not nodes:
        raise DialectError(Mark(file, 1, 1), "empty document")
    if len(nodes) > 1:
        raise DialectError(_mark(file, nodes[1].start_mark), "only one YAML document per file")
    marks: dict[Path_, Mark] = {}
    key_marks: dict[Path_, Mark] = {}
    data = _from_node(nodes[0], (), file, marks, key_marks)
    return Parsed(data, marks, key_marks)


def _from_node(node: Any, path: Path_, file: str, marks: dict[Path_, Mark], key_marks: dict[Path_, Mark]) -> Any:
    start = node.start_mark
    marks[path] = Mark(file, start.line + 1, start.column + 1)
    if isinstance(node, yaml.ScalarNode):
        return resolve_plain(node.value) if not node.style else node.value
    if len(path) >= MAX_DEPTH:
        raise DialectError(marks[path], f"nesting deeper than {MAX_DEPTH} levels")
    if isinstance(node, yaml.SequenceNode):
        return [_from_node(item, (*path, i), file, marks, key_marks) for i, item in enumerate(node.value)]
    mapping: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key_mark = Mark(file, key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        if not isinstance(key_node, yaml.ScalarNode):
            raise DialectError(key_mark, "a key must be a plain value, not a list or mapping")
        key = key_node.value
        if key in mapping:
            raise DialectError(key_mark, f"duplicate key {key!r}")
        key_marks[(*path, key)] = key_mark
        mapping[key] = _from_node(value_node, (*path, key), file, marks, key_marks)
    return mapping


def _describe(exc: yaml.MarkedYAMLError, text: str, mark: Any) -> str:
    if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        return "a tab cannot indent YAML; use spaces"
    return f"not valid YAML: {exc.problem or exc.context}"


def _mark(file: str, mark: Any) -> Mark:
    return Mark(file, mark.line + 1, mark.column + 1)


class _Builder:
    """Turns parser events into plain data, refusing what the dialect forbids."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.stack: list[tuple[Any, Path_, Any]] = []  # (container, path, pending key)
        self.documents = 0
        self.root: Any = None
        self.marks: dict[Path_, Mark] = {}
        self.key_marks: dict[Path_, Mark] = {}

    def feed(self, event: Any) -> None:
        if isinstance(event, yaml.AliasEvent):
            self._fail(event, "aliases are not allowed (write the value out)")
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            self._fail(event, f"anchors are not allowed (&{event.anchor})")
        if isinstance(event, yaml.ScalarEvent):
            self._scalar(event)
        elif isinstance(event, yaml.CollectionStartEvent):
            self._start(event)
        elif isinstance(event, yaml.CollectionEndEvent):
            self._end()
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                self._fail(event, "only one YAML document per file")

    def result(self) -> Parsed:
        if self.documents == 0 or self.root is None:
            raise DialectError(Mark(self.file, 1, 1), "empty document")
        return Parsed(self.root, self.marks, self.key_marks)

    def _fail(self, event: Any, message: str) -> None:
        raise DialectError(_mark(self.file, event.start_mark), message)

    def _check_tag(self, event: Any) -> None:
        # An untagged node has no tag at all; the bare `!` comes as the tag "!" on a plain scalar.
        if event.tag is not None:
            self._fail(event, f"tags are not allowed ({event.tag})")

    def _scalar(self, event: Any) -> None:
        plain = bool(event.implicit[0])
        self._check_tag(event)
        if self.stack and isinstance(self.stack[-1][0], dict) and self.stack[-1][2] is None:
            self._key(event)
            return
        value = resolve_plain(event.value) if plain and not event.style else event.value
        self._place(value, event)

    def _key(self, event: Any) -> None:
        container, path, _ = self.stack[-1]
        key = event.value
        if key in container:
            self._fail(event, f"duplicate key {key!r}")
        self.stack[-1] = (container, path, key)
        self.key_marks[(*path, key)] = _mark(self.file, event.start_mark)

    def _start(self, event: Any) -> None:
        self._check_tag(event)
        if len(self.stack) >= MAX_DEPTH:
            self._fail(event, f"nesting deeper than {MAX_DEPTH} levels")
        if self.stack and isinstance(self.stack[-1][0], dict) and self.stack[-1][2] is None:
            self._fail(event, "a key must be a plain value, not a list or mapping")
        container: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
        path = self._place(container, event)
        self.stack.append((container, path, None))

    def _end(self) -> None:
        self.stack.pop()

    def _place(self, value: Any, event: Any) -> Path_:
        if not self.stack:
            self.root = value
            path: Path_ = ()
        else:
            container, parent, key = self.stack[-1]
            if isinstance(container, dict):
                container[key] = value
                path = (*parent, key)
                self.stack[-1] = (container, parent, None)
            else:
                path = (*parent, len(container))
                container.append(value)
        self.marks[path] = _mark(self.file, event.start_mark)
        return path
