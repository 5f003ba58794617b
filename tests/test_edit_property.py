"""reconciler.edit, as a property: whatever a file's line ends, head, indentation and comments, an edit
changes the lines of the edited spot and no other byte."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from reconciler import edit
from reconciler.core.load import parse_file
from reconciler.core.rollover import Changes, Edit, Flow

MODELINE = "# yaml-language-server: $schema=../../schemas/maintenance.schema.json"
HEADS = ["", MODELINE, f"{MODELINE}\n---", "---", "---  # one document"]
STYLES = [(0, 2), (2, 2), (4, 2), (2, 4), (4, 4)]  # (dash column, columns from dash to item)
REASONS = ["r", "Banner upgrade", "weekly hosting window"]
COMMENTS = ["# a note", "#\ttabbed\tnote", "# note: with a colon", "#"]
FLOW = (-1, 0)


@dataclass
class Item:
    id: str
    reason: str
    lead: str | None
    eol: str | None
    pause: tuple[int, int] | None
    """None: no `pause`; (-1, 0): `pause: [nightly]`; else a block list at that (dash column, gap)."""
    blank: bool
    """A blank line above the item (and its leading comment)."""


@dataclass
class File:
    newline: str
    bom: bool
    head: str
    other: tuple[int, int] | None
    style: tuple[int, int]
    items: list[Item]
    footer: list[str]
    final_newline: bool
    tab_before_eol: bool
    after: bool
    """A key follows the list (`notes: …`), the footer comments above it."""
    tags: list[tuple[str, int]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The body lines, and in `tags` what each is: ("item", i), ("lead", i), ("footer", 0), ("top", 0)."""
        out: list[tuple[str, tuple[str, int]]] = [(line, ("top", 0)) for line in self.head.split("\n") if line]
        out += [("apiVersion: reconciler/v1", ("top", 0)), ("kind: MaintenanceWindows", ("top", 0))]
        if self.other is not None:
            dash, gap = self.other
            out += [("other:", ("top", 0)), (" " * dash + "-" + " " * (gap - 1) + "x", ("top", 0))]
        out.append(("windows:", ("top", 0)))
        dash, gap = self.style
        sep = "\t" if self.tab_before_eol else "  "
        for index, item in enumerate(self.items):
            if item.blank:
                out.append(("", ("blank", index)))
            if item.lead is not None:
                out.append((" " * dash + item.lead, ("lead", index)))
            first = " " * dash + "-" + " " * (gap - 1) + f"id: {item.id}"
            out.append((first, ("item", index)))
            reason = " " * (dash + gap) + f"reason: {item.reason}"
            out.append((reason + (sep + item.eol if item.eol else ""), ("item", index)))
            if item.pause == FLOW:
                out.append((" " * (dash + gap) + "pause: [nightly]", ("item", index)))
            elif item.pause is not None:
                inner, space = item.pause
                out.append((" " * (dash + gap) + "pause:", ("item", index)))
                out.append((" " * (dash + gap + inner) + "-" + " " * (space - 1) + "nightly", ("item", index)))
        out += [(line, ("footer", 0)) for line in self.footer]
        if self.after:
            out.append(("notes: none", ("top", 0)))
        self.tags = [tag for _, tag in out]
        return [line for line, _ in out]

    def text(self) -> str:
        lines = self.lines()
        body = self.newline.join(lines) + (self.newline if self.final_newline else "")
        return ("\ufeff" if self.bom else "") + body


@st.composite
def files(draw: st.DrawFn) -> File:
    count = draw(st.integers(1, 4))
    pauses = st.none() | st.just(FLOW) | st.sampled_from(STYLES)
    items = [Item(f"w{i}", draw(st.sampled_from(REASONS)), draw(st.none() | st.sampled_from(COMMENTS)),
                  draw(st.none() | st.sampled_from(COMMENTS)), draw(pauses), draw(st.booleans()))
             for i in range(count)]
    footer = draw(st.sampled_from([[], ["# footer"], ["", "# footer", "#\tsecond\tline"], [""]]))
    final_newline = footer == [""] or draw(st.booleans())  # a last blank line is a final newline
    return File(draw(st.sampled_from(["\n", "\r\n"])), draw(st.booleans()), draw(st.sampled_from(HEADS)),
                draw(st.none() | st.sampled_from(STYLES)), draw(st.sampled_from(STYLES)), items, footer,
                final_newline, draw(st.booleans()), draw(st.booleans()))


def render(root: Path, text: str, change: Edit) -> str:
    note(f"file: {text!r}")
    (root / "f.yaml").write_bytes(text.encode("utf-8"))
    changes = Changes()
    changes.add("f.yaml", change)
    return edit.render(root, changes).get("f.yaml", text)


def body_lines(text: str, f: File) -> list[str]:
    assert text.startswith("\ufeff") == f.bom
    body = text.removeprefix("\ufeff")
    assert body.endswith(f.newline) == f.final_newline
    rows = body.split(f.newline)
    if f.final_newline:
        rows.pop()
    assert all("\n" not in row and "\r" not in row for row in rows), "a line end other than the file's"
    return rows


def data_of(text: str) -> dict[str, Any]:
    parsed = parse_file(text.encode("utf-8"), "f.yaml")
    assert not hasattr(parsed, "severity"), parsed
    return parsed.data  # type: ignore[union-attr,no-any-return]


def windows(f: File) -> list[dict[str, Any]]:
    return [{"id": i.id, "reason": i.reason, **({"pause": ["nightly"]} if i.pause else {})} for i in f.items]


def footer_start(f: File, old: list[str]) -> int:
    return len(old) - len(f.footer) - (1 if f.after else 0)


PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@PROPERTY
@given(f=files())
def test_an_appended_item_is_the_only_change(tmp_path: Path, f: File) -> None:
    old = f.lines()
    out = body_lines(render(tmp_path, f.text(), Edit("append_item", ("windows",), {"id": "new", "reason": "x"})), f)
    dash, gap = f.style
    added = [" " * dash + "-" + " " * (gap - 1) + "id: new", " " * (dash + gap) + "reason: x"]
    at = footer_start(f, old)
    assert out == old[:at] + added + old[at:]
    assert data_of(f.newline.join(out))["windows"] == [*windows(f), {"id": "new", "reason": "x"}]


@PROPERTY
@given(f=files(), data=st.data())
def test_a_set_value_changes_its_own_line_only(tmp_path: Path, f: File, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(f.items) - 1))
    old = f.lines()
    out = body_lines(render(tmp_path, f.text(), Edit("set", ("windows", index, "reason"), "changed")), f)
    line = [i for i, tag in enumerate(f.tags) if tag == ("item", index)][1]
    assert len(out) == len(old)
    assert [i for i, (a, b) in enumerate(zip(old, out, strict=True)) if a != b] == [line]
    assert out[line].lstrip(" ").startswith("reason: changed")
    assert data_of(f.newline.join(out))["windows"][index]["reason"] == "changed"


@PROPERTY
@given(f=files(), data=st.data())
def test_a_removed_item_takes_its_lines_and_its_leading_comment(tmp_path: Path, f: File,
                                                                data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(f.items) - 1))
    old = f.lines()
    out = body_lines(render(tmp_path, f.text(), Edit("remove_item", ("windows", index))), f)
    gone = {("item", index), ("lead", index)}
    after = [i for i, tag in enumerate(f.tags) if tag in gone][-1] + 1
    if after >= len(old) or f.tags[after] not in {("item", index + 1), ("lead", index + 1)}:
        gone.add(("blank", index))  # its blank line goes too unless the next item follows right below
    kept = [line for line, tag in zip(old, f.tags, strict=True) if tag not in gone]
    if len(f.items) == 1:
        kept[kept.index("windows:")] = "windows: []"
    assert out == kept
    rest = windows(f)
    del rest[index]
    assert data_of(f.newline.join(out))["windows"] == rest


@PROPERTY
@given(f=files(), data=st.data())
def test_comments_come_and_go_on_their_own_line(tmp_path: Path, f: File, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(f.items) - 1))
    old = f.lines()
    line = [i for i, tag in enumerate(f.tags) if tag == ("item", index)][1]
    op = "drop_comment" if f.items[index].eol else "comment"
    out = body_lines(render(tmp_path, f.text(), Edit(op, ("windows", index, "reason"), "added")), f)
    assert len(out) == len(old)
    assert [i for i, (a, b) in enumerate(zip(old, out, strict=True)) if a != b] == [line]
    assert out[line].endswith(f"reason: {f.items[index].reason}" if op == "drop_comment" else "# added")


@PROPERTY
@given(f=files())
def test_a_scalar_list_changes_where_it_is(tmp_path: Path, f: File) -> None:
    old = f.lines()
    first = next(i for i, tag in enumerate(f.tags) if tag == ("item", 0))
    out = body_lines(render(tmp_path, f.text(), Edit("set", ("windows", 0, "pause"), Flow(["realtime"]))), f)
    line = first + 2
    if f.items[0].pause is None:
        dash, gap = f.style
        assert out == [*old[:line], " " * (dash + gap) + "pause: [realtime]", *old[line:]]
    else:
        line += 0 if f.items[0].pause == FLOW else 1
        assert out == [*old[:line], old[line].replace("nightly", "realtime"), *old[line + 1:]]
    assert data_of(f.newline.join(out))["windows"][0]["pause"] == ["realtime"]


@PROPERTY
@given(f=files())
def test_an_appended_scalar_follows_the_last_one(tmp_path: Path, f: File) -> None:
    old = f.lines()
    last = len(f.items) - 1
    out = body_lines(render(tmp_path, f.text(), Edit("append", ("windows", last, "pause"), "realtime")), f)
    pause = f.items[last].pause
    at = footer_start(f, old)
    if pause is None:
        dash, gap = f.style
        assert out == [*old[:at], " " * (dash + gap) + "pause: [realtime]", *old[at:]]
    elif pause == FLOW:
        assert out == [*old[:at - 1], old[at - 1].replace("nightly", "nightly, realtime"), *old[at:]]
    else:
        assert out == [*old[:at], old[at - 1].replace("nightly", "realtime"), *old[at:]]
    assert data_of(f.newline.join(out))["windows"][last]["pause"] == [*(["nightly"] if pause else []), "realtime"]
