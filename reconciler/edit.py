"""EDGE: comment-keeping YAML edits (ruamel.yaml round-trip) for pause, resume, term, promote and import.

Place in the flow: a command reads files here as plain data (`read_plain`), asks the core
(`core.rollover`, or its own small rules) for `Edit`s, and `write_changes` makes them on the
round-trip document: comments, key order, flow/block style and quoting stay as they were. `dump`
renders the document as read and as edited, and `reconciler.layout` splices only the lines that differ
into the file's own text (at the file's columns, see `restyle`), so every other byte stays: the BOM,
a modeline above `---`, CRLF line ends, a missing final newline. Files are written all or nothing.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import layout
from reconciler.core.rollover import Changes, Code, Edit, Flow, YamlFile
from reconciler.errors import ConfigError, UsageError
from reconciler.layout import Frame, Rendered, is_flow
from reconciler.model import API_VERSION, MERGE_TYPES, Kind, Problem

_KEY_LINE = re.compile(r"^(\s*)[^\s#-][^:#]*:\s*(#.*)?$")
_ITEM_LINE = re.compile(r"^(\s*)-\s+")
_ANY_KEY = re.compile(r"^(\s*)[^\s#-][^:#]*:(\s|$)")
_ORDERED_KEYS = {"merges": MERGE_TYPES}
_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")
_NOT_TEXT = re.compile(r"true|false|null|~|[-+]?(\d+|0o[0-7]+|0x[0-9a-fA-F]+|\d*\.\d+([eE][-+]?\d+)?)|\d\d:\d\d",
                       re.IGNORECASE)


@dataclass
class Loaded:
    """One file's round-trip document, the YAML instance that dumps it, and its text as read.

    `frame` holds what ruamel never sees (BOM, the lines up to `---`, line ends); `before` is ruamel's
    rendering of the document as read, which `dump` compares the edited one with. A new file has neither,
    only a `header`."""

    doc: Any
    yaml: Any
    text: str
    header: str = ""
    frame: Frame | None = None
    before: Rendered | None = None


# --- reading and writing -------------------------------------------------------------------------


def make_yaml(text: str = "") -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    mapping, sequence, offset = indentation(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def indentation(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) the file uses; 2, 4, 2 when it does not say."""
    mapping, item = None, None
    previous: re.Match[str] | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if previous is not None:
            dash, key = _ITEM_LINE.match(line), _ANY_KEY.match(line)
            depth = len(previous.group(1))
            if dash and item is None and len(dash.group(1)) >= depth:
                item = (len(dash.group(1)) - depth, len(dash.group(0)) - depth)
            elif key and not dash and mapping is None and len(key.group(1)) > depth:
                mapping = len(key.group(1)) - depth
        previous = _KEY_LINE.match(line)
    offset, sequence = item or (2, 4)
    return (mapping or 2), sequence, offset


def load(path: Path, rel: str) -> Loaded:
    """The file's round-trip document, ready to edit and `dump`."""
    loaded = _read(path, rel)
    # rendered before any edit, as the lines to compare the edited document's rendering with
    loaded.before = layout.restyle(_dump_text(loaded.yaml, loaded.doc), loaded.doc)
    return loaded


def _read(path: Path, rel: str) -> Loaded:
    """The file's round-trip document. The strict loader reads it first, so ruamel only ever sees text of
    the project's dialect (no tags, aliases or duplicate keys; at most 1 MiB)."""
    from reconciler.core.load import parse_file

    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{rel}: cannot read it: {e.strerror or e}") from e
    checked = parse_file(raw, rel)
    if isinstance(checked, Problem):
        raise ConfigError(f"{rel}: line {checked.line}, column {checked.column}: {checked.message}")
    text = raw.decode("utf-8")
    frame = layout.split(text)
    yaml = make_yaml(frame.body)
    try:
        # text the strict loader accepted above; comments kept
        doc = _read_round_trip(yaml, frame.body)
    except Exception as e:  # ruamel's errors have no common base worth naming
        raise ConfigError(f"{rel}: not readable YAML: {' '.join(str(e).split())}") from e
    return Loaded(doc, yaml, text, frame=frame)


def _read_round_trip(round_trip: Any, text: str) -> Any:
    """ruamel's document of `text`. A tab ruamel refuses where YAML allows one (before a comment, after a
    colon) is read as a space, the same separation to any YAML reader; the file keeps its tab."""
    from ruamel.yaml.scanner import ScannerError

    for _ in range(text.count("\t") + 1):
        try:
            return round_trip.load(text)
        except ScannerError as e:
            mark = e.problem_mark
            if mark is None or not 0 <= mark.index < len(text) or text[mark.index] != "\t":
                raise
            text = text[:mark.index] + " " + text[mark.index + 1:]
    return round_trip.load(text)


def new_file(kind: Kind) -> Loaded:
    from ruamel.yaml.comments import CommentedMap

    doc = CommentedMap()
    doc["apiVersion"] = API_VERSION
    doc["kind"] = kind.value
    header = f"# yaml-language-server: $schema=../../schemas/{kind.schema_name}\n"
    return Loaded(doc, make_yaml(), "", header)


def dump(loaded: Loaded) -> str:
    """The document as text. For a file read from disk, only the lines the edits changed come from ruamel:
    the file's own bytes are kept everywhere else (see `reconciler.layout`)."""
    after = _dump_text(loaded.yaml, loaded.doc)
    if loaded.frame is None or loaded.before is None:
        return loaded.header + after
    if tuple(after.split("\n")[:-1]) == loaded.before.raw:
        return loaded.text
    return layout.splice(loaded.frame, loaded.before, layout.restyle(after, loaded.doc))


def _dump_text(yaml: Any, doc: Any) -> str:
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def plain(node: Any) -> Any:
    """A round-trip node as plain dicts, lists, strings (dates stay dates)."""
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def read_plain(root: Path, rel: str, kind: Kind) -> YamlFile:
    """The file as plain data (None when it does not exist)."""
    path = root / rel
    if not path.is_file():
        return YamlFile(rel, kind, None)
    return YamlFile(rel, kind, plain(_read(path, rel).doc))


def render(root: Path, changes: Changes) -> dict[str, str]:
    """path → new text, for every file the changes touch (nothing is written)."""
    texts: dict[str, str] = {}
    for rel, edits in changes.files.items():
        path = root / rel
        loaded = load(path, rel) if path.is_file() else new_file(changes.create.get(rel) or _kind_of(rel))
        apply_edits(loaded.doc, edits)
        text = dump(loaded)
        if text != loaded.text:
            texts[rel] = text
    return texts


def _kind_of(rel: str) -> Kind:
    from reconciler.model import FILE_KINDS

    return FILE_KINDS[Path(rel).name]


def write_texts(root: Path, texts: Mapping[str, str]) -> dict[str, bytes | None]:
    """Write every text; on failure put back what was written. Returns the old bytes (None: new file)."""
    old = snapshot(root, texts)
    try:
        for rel, text in texts.items():
            # newline="": the text carries the file's own line ends (CRLF stays CRLF on every platform)
            (root / rel).write_text(text, encoding="utf-8", newline="")
    except OSError as e:
        restore(root, old)
        raise UsageError(f"cannot write {rel}: {e.strerror or e}") from e
    return old


def write_changes(root: Path, changes: Changes) -> list[str]:
    """Make `changes` on disk; the paths actually changed."""
    texts = render(root, changes)
    write_texts(root, texts)
    return list(texts)


def snapshot(root: Path, rels: Iterable[str]) -> dict[str, bytes | None]:
    return {rel: (root / rel).read_bytes() if (root / rel).is_file() else None for rel in rels}


def restore(root: Path, old: Mapping[str, bytes | None]) -> None:
    for rel, raw in old.items():
        path = root / rel
        if raw is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(raw)


# --- edits on round-trip nodes -------------------------------------------------------------------


def apply_edits(doc: Any, edits: Iterable[Edit]) -> None:
    for edit in edits:
        _OPS[edit.op](doc, edit)


def _at(doc: Any, path: tuple[str | int, ...], create: bool = False) -> Any:
    from ruamel.yaml.comments import CommentedMap

    node = doc
    for depth, key in enumerate(path):
        if isinstance(key, int):
            node = node[key]
            continue
        child = node.get(key)
        if child is None:
            if not create:
                return None
            child = CommentedMap()
            _insert(node, key, child, path[depth - 1] if depth else None)
        node = child
    return node


def _insert(parent: Any, key: str, value: Any, parent_key: Any) -> None:
    """Add key in its natural place (merge types in merge order), else at the end."""
    order = _ORDERED_KEYS.get(str(parent_key), ())
    if key in order:
        later = [i for i, k in enumerate(parent) if k in order and order.index(k) > order.index(key)]
        if later:
            parent.insert(later[0], key, value)
            return
    parent[key] = value


def _like_scalar(value: Any, like: Any) -> Any:
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    quoted = DoubleQuotedScalarString | SingleQuotedScalarString
    if isinstance(value, Code):
        return (type(like) if isinstance(like, quoted) else DoubleQuotedScalarString)(str(value))
    if isinstance(value, str) and not isinstance(value, quoted) and _needs_quotes(value):
        # these files double-quote what YAML would not read back as plain text
        return DoubleQuotedScalarString(value)
    return value


def _needs_quotes(text: str) -> bool:
    return not text or text[0] in _INDICATORS or text != text.strip() or bool(_NOT_TEXT.fullmatch(text))


def to_node(value: Any, like: Any = None) -> Any:
    """Plain data as round-trip nodes: Flow lists in flow style, short all-scalar mappings in flow style."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, Mapping):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = to_node(item, like.get(key) if hasattr(like, "get") else None)
        flow = is_flow(like) if like is not None else all(not isinstance(v, list | tuple | Mapping)
                                                          for v in value.values())
        if flow:
            node.fa.set_flow_style()
        return node
    if isinstance(value, list | tuple):
        first = like[0] if isinstance(like, list) and like else None
        seq = CommentedSeq([to_node(v, first) for v in value])
        if isinstance(value, Flow) or (like is not None and is_flow(like)):
            seq.fa.set_flow_style()
        return seq
    return _like_scalar(value, like)


def _append(doc: Any, edit: Edit) -> None:
    seq = _at(doc, edit.path)
    if seq is None:
        parent = _at(doc, edit.path[:-1], create=True)
        _insert(parent, str(edit.path[-1]), to_node(Flow([edit.value])), edit.path[-2] if len(edit.path) > 1 else None)
        return
    like = seq[-1] if len(seq) else None
    seq.append(_like_scalar(edit.value, like))


def _remove(doc: Any, edit: Edit) -> None:
    seq = _at(doc, edit.path)
    for index in reversed(range(len(seq or []))):
        if str(seq[index]) == str(edit.value):
            _delete(doc, edit.path, index)


def _set(doc: Any, edit: Edit) -> None:
    parent = _at(doc, edit.path[:-1], create=True)
    key = edit.path[-1]
    current = parent[key] if isinstance(key, int) else parent.get(key)
    if isinstance(current, list) and isinstance(edit.value, list | tuple):
        like = current[0] if len(current) else None
        current[:] = [to_node(v, like) for v in edit.value]
        return
    node = to_node(edit.value, current)
    if isinstance(key, int) or key in parent:
        parent[key] = node
    else:
        _insert(parent, key, node, edit.path[-2] if len(edit.path) > 1 else None)


def _append_item(doc: Any, edit: Edit) -> None:
    from ruamel.yaml.comments import CommentedSeq

    seq = _at(doc, edit.path)
    if seq is None:
        seq = CommentedSeq()
        _insert(_at(doc, edit.path[:-1], create=True), str(edit.path[-1]), seq, None)
    like = seq[-1] if len(seq) else None
    if not len(seq) and is_flow(seq):
        seq.fa.set_block_style()  # `windows: []` grows into a block list, like the files around it
    seq.append(to_node(edit.value, like))


def _remove_item(doc: Any, edit: Edit) -> None:
    _delete(doc, edit.path[:-1], int(edit.path[-1]))


def _delete(doc: Any, path: tuple[str | int, ...], index: int) -> None:
    seq = _at(doc, path)
    del seq[index]
    if len(seq) or not path:
        return
    # the first item's leading comment hangs on the list and its key: ruamel would write it above `[]`
    if getattr(seq, "ca", None) is not None:
        seq.ca.comment = None
    entry = getattr(getattr(_at(doc, path[:-1]), "ca", None), "items", {}).get(path[-1])
    if entry and len(entry) > 3:
        entry[3] = None


def _unset(doc: Any, edit: Edit) -> None:
    parent = _at(doc, edit.path[:-1])
    if parent is not None and edit.path[-1] in parent:
        del parent[edit.path[-1]]


def _comment(doc: Any, edit: Edit) -> None:
    parent = _at(doc, edit.path[:-1])
    old = _comment_token(parent, edit.path[-1])
    parent.yaml_add_eol_comment(str(edit.value), edit.path[-1])
    new = _comment_token(parent, edit.path[-1])
    if old is not None and new is not None and "\n" in old.value:
        # ruamel's token also holds the comment lines below (the next item's); the new one keeps them
        new.value += old.value[old.value.index("\n"):]


def _comment_token(parent: Any, key: Any) -> Any:
    entry = getattr(getattr(parent, "ca", None), "items", {}).get(key)
    return entry[2] if entry and len(entry) > 2 else None


def _drop_comment(doc: Any, edit: Edit) -> None:
    parent = _at(doc, edit.path[:-1])
    token = _comment_token(parent, edit.path[-1])
    if token is None:
        return
    if "\n" not in token.value:
        parent.ca.items[edit.path[-1]][2] = None
    else:
        # drop the text on the key's line; keep the line break and the comment lines below it
        token.value = token.value[token.value.index("\n"):]


_OPS = {
    "append": _append,
    "remove": _remove,
    "set": _set,
    "append_item": _append_item,
    "remove_item": _remove_item,
    "unset": _unset,
    "comment": _comment,
    "drop_comment": _drop_comment,
}


def keep_if_valid(root: Path, old: Mapping[str, bytes | None], problems: Callable[[], Iterable[Any]]) -> None:
    """Keep the files just written if `problems()` finds no error; else put every file back (`old`, from
    `write_texts`) and refuse with the first error, so a refused edit leaves nothing behind."""
    from reconciler.model import Severity

    try:
        errors = [p for p in problems() if p.severity is Severity.ERROR]
    except Exception:
        restore(root, old)
        raise
    if errors:
        restore(root, old)
        raise ConfigError(f"the edit would leave the YAML invalid ({errors[0]}); nothing written")
