"""The bytes of a YAML file around an edit: what `reconciler.edit` keeps that ruamel would not.

Place in the flow: `edit.load` splits a file into a `Frame` (a BOM, the lines up to a `---` document
start, each line's end) and the body ruamel reads; `edit.dump` renders the document twice, as read and
as edited, and `splice` puts into the file's own text only the lines where those two renderings differ.
Every other line of the file comes back byte for byte, however ruamel would have spelled it (`~`,
`"\\u00e9"`, a flow mapping over two lines). Comment lines next to an edit go with what they describe: an
appended item goes above the comments that close its list, a removed item takes its own leading comment
and leaves the next item's. No files: text and ruamel documents in, text out.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_MARKER = re.compile(r"---(?:[ \t]+#.*)?[ \t]*")
_PREAMBLE = re.compile(r"[ \t]*(?:[#%].*)?")
_SPACES = re.compile(r"(?<=\S)\s+")


@dataclass(frozen=True)
class Frame:
    """A file as read: `prefix` (BOM, comments and directives up to and including `---`) is never parsed
    again; `lines` is the body without line ends, `ends` their ends ("" for a last line without one)."""

    prefix: str
    lines: tuple[str, ...]
    ends: tuple[str, ...]
    newline: str

    @property
    def body(self) -> str:
        """What ruamel reads: the body with LF line ends, the last line ended too."""
        return "".join(line + "\n" for line in self.lines)


@dataclass(frozen=True)
class Rendered:
    """One ruamel dump: `raw` as ruamel wrote it, `lines` at the file's columns, and which lines are
    `solid` (hold YAML content) rather than comments or blank."""

    raw: tuple[str, ...]
    lines: tuple[str, ...]
    solid: tuple[bool, ...]


@dataclass(frozen=True)
class _Hunk:
    """Lines start..end of the first rendering become `lines`."""

    start: int
    end: int
    lines: tuple[str, ...]


def split(text: str) -> Frame:
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    parts = text[len(bom):].split("\n")
    lines, ends = [], []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if last and not part:
            break
        crlf = part.endswith("\r") and not last
        lines.append(part[:-1] if crlf else part)
        ends.append("" if last else "\r\n" if crlf else "\n")
    cut = _document_start(lines)
    prefix = bom + "".join(line + end for line, end in zip(lines[:cut], ends[:cut], strict=True))
    newline = "\r\n" if ends.count("\r\n") > ends.count("\n") else "\n"
    return Frame(prefix, tuple(lines[cut:]), tuple(ends[cut:]), newline)


def _document_start(lines: Sequence[str]) -> int:
    """How many lines come before the body: through `---`, when only comments and directives precede it
    (ruamel drops a comment above `---`)."""
    for index, line in enumerate(lines):
        if _MARKER.fullmatch(line):
            return index + 1
        if not _PREAMBLE.fullmatch(line):
            return 0
    return 0


def splice(frame: Frame, before: Rendered, after: Rendered) -> str:
    """The file's text with the lines where `after` differs from `before` replaced, and nothing else."""
    hunks = _hunks(before, after)
    blocks = _opcodes([_norm(x) for x in frame.lines], [_norm(x) for x in before.lines])
    out: list[tuple[str, str | None]] = []
    kept = 0
    for start, end, lines in _on_the_file(blocks, before, hunks):
        out.extend(zip(frame.lines[kept:start], frame.ends[kept:start], strict=True))
        out.extend((line, None) for line in lines)
        kept = end
    out.extend(zip(frame.lines[kept:], frame.ends[kept:], strict=True))
    return frame.prefix + _join(out, frame)


def _join(lines: Sequence[tuple[str, str | None]], frame: Frame) -> str:
    final = frame.ends[-1] if frame.ends else frame.newline
    text = []
    for index, (line, end) in enumerate(lines):
        # a kept last line without an end gets one when something now follows it
        text.append(line + (final if index == len(lines) - 1 else end or frame.newline))
    return "".join(text)


def _opcodes(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib's opcodes, with the common head and tail matched first: an edit touches a few lines of a
    file that may be long, and difflib is quadratic in the lines between."""
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    middle = difflib.SequenceMatcher(None, a[head:len(a) - tail], b[head:len(b) - tail], autojunk=False)
    ops = [("equal", 0, head, 0, head)] if head else []
    ops += [(tag, i1 + head, i2 + head, j1 + head, j2 + head) for tag, i1, i2, j1, j2 in middle.get_opcodes()]
    if tail:
        ops.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    return _merged(ops)


def _merged(ops: list[tuple[str, int, int, int, int]]) -> list[tuple[str, int, int, int, int]]:
    """Neighbouring equal runs as one (difflib's opcodes never have two in a row; `_room` counts on it)."""
    out: list[tuple[str, int, int, int, int]] = []
    for op in ops:
        if out and op[0] == "equal" == out[-1][0]:
            out[-1] = ("equal", out[-1][1], op[2], out[-1][3], op[4])
        elif op[1] < op[2] or op[3] < op[4]:
            out.append(op)
    return out


def _norm(line: str) -> str:
    return _SPACES.sub(" ", line.rstrip())


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


# --- ruamel's rendering, at the file's columns -----------------------------------------------------


@dataclass(frozen=True)
class _Move:
    """Where one line of a dump starts in the file: `at` → `to`; a dash line also moves its content."""

    at: int
    to: int
    content: tuple[int, int] | None = None
    block: bool = False
    """The line's value is a block scalar: the lines under it move with it."""


def restyle(text: str, src: Any) -> Rendered:
    """`text` (ruamel's dump of `src`) with every block node at the column it has in the file, and every
    new node at its siblings' column: ruamel writes one indentation for the whole file, a file may use
    several (a compact `windows:` list next to an indented `terms:` one)."""
    import yaml

    lines = text.split("\n")[:-1]
    moves: dict[int, _Move] = {}
    try:
        # libyaml's composer gives every node's place in the dump, many times faster than ruamel reading it
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        node = None  # not expected (ruamel wrote it); the lines then stay at ruamel's columns
    if node is not None:
        _walk(src, node, 0, moves)
    out: list[str] = []
    solid: list[bool] = []
    delta, carry = 0, False
    for index, line in enumerate(lines):
        move = moves.get(index)
        if move is not None:
            moved = _moved(line, move)
            delta, carry = _indent(moved) - _indent(line), move.block
            out.append(moved)
            solid.append(True)
            continue
        text_ = line.strip()
        content = carry or bool(text_ and not text_.startswith("#"))
        out.append(_shift(line, delta) if content else line)
        solid.append(content)
    return Rendered(tuple(lines), tuple(out), tuple(solid))


def _walk(src: Any, node: Any, col: int, moves: dict[int, _Move]) -> None:
    """Record where each block line of `node` (composed from the dump of `src`) goes; `col`: `src`'s column
    in the file."""
    import yaml

    if isinstance(node, yaml.ScalarNode) or node.flow_style:
        return
    if isinstance(node, yaml.MappingNode):
        children = {str(k): v for k, v in src.items()} if isinstance(src, Mapping) else {}
        for key, value in node.value:
            line, at = key.start_mark.line, key.start_mark.column
            moves.setdefault(line, _Move(at, col, block=_is_block_scalar(value)))
            if isinstance(value, yaml.CollectionNode) and not value.flow_style:
                derived = col + value.start_mark.column - at
                child = children.get(str(key.value))
                _walk(child, value, derived if _was_flow(src, key.value) else _column(child, derived), moves)
    else:
        dash = node.start_mark.column
        gap = _gap(src)
        items = list(src) if isinstance(src, list) else []
        for index, item in enumerate(node.value):
            line, at = item.start_mark.line, item.start_mark.column
            child = items[index] if index < len(items) else None
            to = _column(child, col + (at - dash if gap is None else gap))
            moves.setdefault(line, _Move(dash, col, (at, to), block=_is_block_scalar(item)))
            if isinstance(item, yaml.CollectionNode):
                _walk(child, item, to, moves)


def _column(node: Any, derived: int) -> int:
    """The column `node` was read at; `derived` (from its parent, as the dump places it) for a new node."""
    lc = getattr(node, "lc", None)
    return derived if lc is None or lc.line is None or is_flow(node) else int(lc.col)


def _was_flow(parent: Any, key: Any) -> bool:
    """Did the value start on its key's line when read (`windows: []`, since grown into a block list)?"""
    place = _positions(parent).get(key)
    return place is not None and place[2] == place[0]


def _gap(seq: Any) -> int | None:
    """Columns from a list's dash to its first item, as read (None for a new list)."""
    first = _positions(seq).get(0)
    return int(first[1]) - int(seq.lc.col) if first else None


def _positions(node: Any) -> dict[Any, Any]:
    """ruamel's (line, column…) per key or index of a node read from the file; {} for a new node."""
    lc = getattr(node, "lc", None)
    return (lc.data or {}) if lc is not None and lc.line is not None else {}


def _is_block_scalar(node: Any) -> bool:
    return getattr(node, "style", None) in ("|", ">")


def _moved(line: str, move: _Move) -> str:
    if len(line) <= move.at or line[:move.at].strip():
        return line
    if move.content is None:
        return " " * move.to + line[move.at:]
    at, to = move.content
    if line[move.at] != "-" or line[move.at + 1:at].strip() or to - move.to < 2:
        return _shift(line, move.to - move.at)
    return " " * move.to + "-" + " " * (to - move.to - 1) + line[at:]


def _shift(line: str, delta: int) -> str:
    return " " * delta + line if delta >= 0 else line[min(-delta, _indent(line)):]


def is_flow(node: Any) -> bool:
    """Is this round-trip node written in flow style (`[a, b]`, `{k: v}`)?"""
    fa = getattr(node, "fa", None)
    return bool(fa is not None and fa.flow_style())


# --- which lines the edit changed -----------------------------------------------------------------


def _hunks(before: Rendered, after: Rendered) -> list[_Hunk]:
    opcodes = _opcodes(before.raw, after.raw)
    hunks: list[_Hunk] = []
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            continue
        floor = hunks[-1].end if hunks else 0
        if i1 == i2 or j1 == j2:
            room = _room(opcodes, index)
            i1, i2, j1, j2 = _slide(before, after, (i1, i2, j1, j2), room)
        hunk = _Hunk(i1, i2, after.lines[j1:j2])
        hunk = _lift(before, hunk, floor) if i1 == i2 else _trim(before, hunk, floor)
        if hunk.start < hunk.end or hunk.lines:
            hunks.append(hunk)
    return hunks


def _room(opcodes: Sequence[tuple[str, int, int, int, int]], index: int) -> tuple[int, int]:
    """How far a hunk may slide up and down: the equal lines on either side of it."""
    up = opcodes[index - 1][2] - opcodes[index - 1][1] if index > 0 else 0
    down = opcodes[index + 1][2] - opcodes[index + 1][1] if index + 1 < len(opcodes) else 0
    return up, down


def _slide(before: Rendered, after: Rendered, span: tuple[int, int, int, int],
           room: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where an insertion or a removal of lines ruamel writes alike (two items that both end `- nightly`)
    really is: the place where its first node is at the lowest column, the lowest such place. The diff
    alone may pick a place that is the same text but other lines of the file."""
    i1, i2, j1, j2 = span
    side, lo, hi = (before, i1, i2) if i1 < i2 else (after, j1, j2)
    options = [0]
    for step in (-1, 1):
        shift = 0
        while abs(shift + step) <= room[0 if step < 0 else 1]:
            first, last = (lo + shift - 1, hi + shift - 1) if step < 0 else (lo + shift, hi + shift)
            if side.raw[first] != side.raw[last]:
                break
            shift += step
            options.append(shift)
    best = min(options, key=lambda s: (_rank(side, lo + s, hi + s), -s))
    return i1 + best, i2 + best, j1 + best, j2 + best


def _rank(side: Rendered, start: int, end: int) -> int:
    """The column of the first node in lines start..end (comments and blank lines above it do not count)."""
    return next((_indent(side.lines[i]) for i in range(start, end) if side.solid[i]), 1 << 16)


def _lift(before: Rendered, hunk: _Hunk, floor: int) -> _Hunk:
    """Move an insertion above the comments and blank lines at its column or left of it: they close the
    block it joins, or lead what follows (ruamel hangs them on the last item, above the new one). Deeper
    comments belong to the last item and stay with it."""
    first = next((line for line in hunk.lines if line.strip()), "")
    if not first or first.lstrip().startswith("#"):
        return hunk
    column = _indent(first)
    start = hunk.start
    while start > floor and not before.solid[start - 1]:
        line = before.lines[start - 1]
        if line.strip() and _indent(line) > column:
            break
        start -= 1
    return _Hunk(start, start, hunk.lines)


def _trim(before: Rendered, hunk: _Hunk, floor: int) -> _Hunk:
    """Lines ruamel dropped or rewrote keep the comments after them, which belong to what follows (ruamel
    hangs them on the item before). A removal also takes the comment right above what it removes, and the
    blank line above that when no sibling follows right below (so removing keeps one blank line, not two)."""
    start, end = hunk.start, hunk.end
    while not hunk.lines and start < end and not before.solid[start]:
        start += 1  # comments and blank lines above a removed node are judged below, like those outside
    if start == end:
        return _Hunk(hunk.start, hunk.start, ())
    column = _indent(before.lines[start])
    first = before.lines[start]
    written = {line.strip() for line in hunk.lines}
    while end > start and not before.solid[end - 1] and (not before.lines[end - 1].strip() or (
            _indent(before.lines[end - 1]) <= column and before.lines[end - 1].strip() not in written)):
        end -= 1
    if hunk.lines or start == end:
        return _Hunk(start, end, hunk.lines)
    while start > floor and _comment_at(before, start - 1, column):
        start -= 1
    if not _sibling_below(before, end, first):
        while start > floor and not before.solid[start - 1] and not before.lines[start - 1].strip():
            start -= 1
    return _Hunk(start, end, hunk.lines)


def _comment_at(before: Rendered, line: int, column: int) -> bool:
    return not before.solid[line] and bool(before.lines[line].strip()) and _indent(before.lines[line]) == column


def _sibling_below(before: Rendered, line: int, first: str) -> bool:
    """Does a node like `first` (same column, both list items or both keys) follow at `line`, past its
    leading comment?"""
    column = _indent(first)
    while line < len(before.lines) and _comment_at(before, line, column):
        line += 1
    if line >= len(before.lines) or not before.solid[line]:
        return False
    below = before.lines[line]
    return _indent(below) == column and below.lstrip().startswith("-") == first.lstrip().startswith("-")


# --- where those lines are in the file ------------------------------------------------------------


def _on_the_file(blocks: Sequence[tuple[str, int, int, int, int]], before: Rendered,
                 hunks: Sequence[_Hunk]) -> list[tuple[int, int, tuple[str, ...]]]:
    """Each hunk as (first file line, end, new lines). A hunk that ends inside lines ruamel spelled
    differently from the file (a flow mapping it joined onto one line) takes those lines whole."""
    placed: list[tuple[int, int, tuple[str, ...]]] = []
    pending = list(hunks)
    while pending:
        hunk = pending.pop(0)
        start, old_start, end, old_end = _widen(blocks, hunk)
        if pending and pending[0].start < end:
            after = pending.pop(0)
            gap = before.lines[hunk.end:after.start]
            pending.insert(0, _Hunk(hunk.start, after.end, hunk.lines + gap + after.lines))
            continue
        lines = before.lines[start:hunk.start] + hunk.lines + before.lines[hunk.end:end]
        placed.append((old_start, old_end, lines))
    return placed


def _widen(blocks: Sequence[tuple[str, int, int, int, int]], hunk: _Hunk) -> tuple[int, int, int, int]:
    """(start, file start, end, file end) of the hunk, widened over lines the file spells differently."""
    insertion = hunk.start == hunk.end
    start, old_start = _at(blocks, hunk.start, down=True, highest=not insertion)
    end, old_end = _at(blocks, hunk.end, down=False, highest=False)
    if insertion and start == end:
        old_end = old_start
    return start, old_start, end, old_end


def _at(blocks: Sequence[tuple[str, int, int, int, int]], position: int, *, down: bool,
        highest: bool) -> tuple[int, int]:
    """A line boundary of the rendering, and the file's boundary there. Inside lines without a match it
    moves to the edge of them (`down`: to their start)."""
    found: list[int] = []
    for tag, i1, i2, j1, j2 in blocks:
        if tag == "equal" and j1 <= position <= j2:
            found.append(i1 + position - j1)
        elif tag != "equal" and j1 < position < j2:
            return (j1, i1) if down else (j2, i2)
        elif tag != "equal" and position in (j1, j2):
            found.append(i1 if position == j1 else i2)
    return position, (max(found, default=0) if highest else min(found, default=0))
