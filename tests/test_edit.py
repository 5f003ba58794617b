"""reconciler.edit: round-trip YAML edits keep comments, key order, flow/block style, quoting and spacing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from reconciler import edit
from reconciler.core.rollover import Changes, Code, Edit, Flow
from reconciler.errors import ConfigError
from reconciler.model import Kind


def test_every_example_file_round_trips_byte_for_byte(repo: Path) -> None:
    files = sorted((repo / "environments").rglob("*.yaml"))
    assert len(files) > 10
    for path in files:
        loaded = edit.load(path, path.name)
        assert edit.dump(loaded) == path.read_text(), path


def render_one(tmp_path: Path, text: str, *edits: Edit) -> str:
    (tmp_path / "f.yaml").write_bytes(text.encode("utf-8"))
    changes = Changes()
    for item in edits:
        changes.add("f.yaml", item)
    return edit.render(tmp_path, changes).get("f.yaml", text)


ALIGNED = """\
# head comment
terms:
  - {code: "1", name: A,    start: 2026-01-01, end: 2026-02-01}
  - {code: '2', name: Bee,  start: 2026-03-01, end: 2026-04-01}   # the second
"""


def test_appended_flow_item_follows_its_siblings_and_spacing_is_kept(tmp_path: Path) -> None:
    item = {"code": Code("3"), "name": "Cee", "start": date(2026, 5, 1), "end": date(2026, 6, 1)}
    out = render_one(tmp_path, ALIGNED, Edit("append_item", ("terms",), item))
    assert out == ALIGNED + "  - {code: '3', name: Cee, start: 2026-05-01, end: 2026-06-01}\n"


def test_list_edits_keep_flow_style_and_quotes(tmp_path: Path) -> None:
    text = 'merges:\n  courses:\n    terms: ["a1", "b2"]   # kept\n  sections:\n    terms:\n      - "a1"\n'
    out = render_one(tmp_path, text,
                     Edit("append", ("merges", "courses", "terms"), Code("c3")),
                     Edit("remove", ("merges", "courses", "terms"), Code("a1")),
                     Edit("append", ("merges", "sections", "terms"), Code("c3")))
    assert out == 'merges:\n  courses:\n    terms: ["b2", "c3"]   # kept\n  sections:\n    terms:\n      - "a1"\n' \
                  '      - "c3"\n'


def test_set_makes_missing_keys_in_merge_order(tmp_path: Path) -> None:
    text = "merges:\n  courses:\n    terms: []\n  relationships:\n    terms: []\n"
    out = render_one(tmp_path, text, Edit("set", ("merges", "sections", "terms"), Flow([Code("x")])))
    assert out == ('merges:\n  courses:\n    terms: []\n  sections:\n    terms: ["x"]\n'
                   '  relationships:\n    terms: []\n')


def test_four_space_files_stay_four_space(tmp_path: Path) -> None:
    text = "phases:\n    -   name: a\n        editable: [x]\n"
    out = render_one(tmp_path, text, Edit("append_item", ("phases",), {"name": "b", "editable": Flow(["*"])}))
    assert out == text + '    -   name: b\n        editable: ["*"]\n'
    assert edit.indentation(text) == (2, 8, 4)
    assert edit.indentation("a:\n    b: 1\nc:\n- 1\n") == (4, 2, 0)
    assert edit.indentation("a: 1\n") == (2, 4, 2)


def test_comments_on_a_key_come_and_go(tmp_path: Path) -> None:
    text = "windows:\n  - id: a\n    end: x\n    pause: [nightly]\n"
    added = render_one(tmp_path, text, Edit("comment", ("windows", 0, "end"), "open"))
    assert added == "windows:\n  - id: a\n    end: x  # open\n    pause: [nightly]\n"
    dropped = render_one(tmp_path, added, Edit("drop_comment", ("windows", 0, "end")),
                         Edit("set", ("windows", 0, "end"), "y"))
    assert dropped == "windows:\n  - id: a\n    end: y\n    pause: [nightly]\n"


def test_new_file_has_header_and_kind(tmp_path: Path) -> None:
    changes = Changes()
    changes.create["environments/x/terms.yaml"] = Kind.TERMS
    (tmp_path / "environments/x").mkdir(parents=True)
    changes.add("environments/x/terms.yaml", Edit("set", ("terms",), []))
    written = edit.write_changes(tmp_path, changes)
    assert written == ["environments/x/terms.yaml"]
    assert (tmp_path / written[0]).read_text() == (
        "# yaml-language-server: $schema=../../schemas/terms.schema.json\n"
        "apiVersion: reconciler/v1\nkind: Terms\nterms: []\n")


def test_restore_puts_back_old_bytes_and_removes_new_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: 1\n")
    old = edit.write_texts(tmp_path, {"a.yaml": "a: 2\n", "b.yaml": "b: 1\n"})
    assert (tmp_path / "b.yaml").exists()
    edit.restore(tmp_path, old)
    assert (tmp_path / "a.yaml").read_text() == "a: 1\n"
    assert not (tmp_path / "b.yaml").exists()


@pytest.mark.parametrize("text", [pytest.param("a: [\n", id="broken"), pytest.param("- 1\n", id="not-a-mapping")])
def test_unreadable_files_are_one_line_errors(tmp_path: Path, text: str) -> None:
    (tmp_path / "f.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"^f\.yaml: "):
        edit.load(tmp_path / "f.yaml", "f.yaml")


def test_only_the_changed_line_comes_from_ruamel(tmp_path: Path) -> None:
    text = "a: {x: 1,   y: 2}   # aligned\nb: 1\n"
    assert render_one(tmp_path, text, Edit("set", ("b",), 2)) == "a: {x: 1,   y: 2}   # aligned\nb: 2\n"


def test_an_empty_flow_list_grows_into_a_block_list(tmp_path: Path) -> None:
    text = "# keep\nwindows: []   # none yet\n"
    item = {"id": "a", "start": "2026-12-01T10:00", "pause": Flow(["nightly"])}
    out = render_one(tmp_path, text, Edit("append_item", ("windows",), item))
    assert out.startswith("# keep\nwindows:")
    assert "  - id: a\n    start: 2026-12-01T10:00\n    pause: [nightly]\n" in out


@pytest.mark.parametrize("text", [
    pytest.param("a: !!python/object:os.system {}\n", id="tag"),
    pytest.param("a: &x [1]\nb: *x\n", id="alias"),
    pytest.param("a: 1\na: 2\n", id="duplicate-key"),
])
def test_the_strict_loader_reads_a_file_before_the_round_trip(tmp_path: Path, text: str) -> None:
    """Comment-keeping edits never read what `validate` would refuse: the strict dialect comes first."""
    (tmp_path / "f.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"^f\.yaml: line \d+, column \d+: "):
        edit.load(tmp_path / "f.yaml", "f.yaml")


# --- bytes outside the edited spot ---------------------------------------------------------------

HEAD = "apiVersion: reconciler/v1\nkind: MaintenanceWindows\n"
MODELINE = "# yaml-language-server: $schema=../../schemas/maintenance.schema.json\n"
WINDOWS = HEAD + "windows:\n  - id: a\n    reason: r\n"
NEW_WINDOW = Edit("append_item", ("windows",), {"id": "b", "reason": "x"})
SET_REASON = Edit("set", ("windows", 0, "reason"), "z")


@pytest.mark.parametrize("head", [
    pytest.param(MODELINE + "---\n", id="modeline-and-document-start"),
    pytest.param("---\n", id="document-start"),
    pytest.param("%YAML 1.2\n---   # the one document\n", id="directive"),
    pytest.param("\ufeff" + MODELINE + "---\n", id="bom-modeline-and-document-start"),
    pytest.param("\ufeff", id="bom"),
])
def test_the_lines_before_the_document_are_kept(tmp_path: Path, head: str) -> None:
    text = head + WINDOWS
    assert render_one(tmp_path, text, NEW_WINDOW) == text + "  - id: b\n    reason: x\n"
    assert render_one(tmp_path, text, SET_REASON) == text.replace("reason: r", "reason: z")


def test_a_crlf_file_stays_all_crlf(tmp_path: Path) -> None:
    text = (MODELINE + "---\n" + WINDOWS + "# footer\n").replace("\n", "\r\n")
    appended = render_one(tmp_path, text, NEW_WINDOW)
    assert appended == text.replace("# footer", "  - id: b\r\n    reason: x\r\n# footer")
    assert render_one(tmp_path, text, SET_REASON) == text.replace("reason: r", "reason: z")
    commented = render_one(tmp_path, text, Edit("comment", ("windows", 0, "reason"), "why"))
    assert commented == text.replace("reason: r", "reason: r  # why")


def test_written_files_keep_their_line_ends_on_disk(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_bytes(WINDOWS.replace("\n", "\r\n").encode())
    changes = Changes()
    changes.add("f.yaml", NEW_WINDOW)
    edit.write_changes(tmp_path, changes)
    assert (tmp_path / "f.yaml").read_bytes() == (WINDOWS + "  - id: b\n    reason: x\n").replace("\n", "\r\n").encode()


@pytest.mark.parametrize(("text", "added"), [
    pytest.param(HEAD + "windows:\n- id: a\n  reason: r\n", "- id: b\n  reason: x\n", id="compact"),
    pytest.param(WINDOWS, "  - id: b\n    reason: x\n", id="offset"),
    pytest.param(HEAD + "windows:\n    -   id: a\n        reason: r\n", "    -   id: b\n        reason: x\n",
                 id="four"),
    pytest.param(HEAD + "other:\n  - x\nwindows:\n- id: a\n  reason: r\n", "- id: b\n  reason: x\n",
                 id="compact-after-an-offset-list"),
    pytest.param(HEAD + "other:\n- x\nwindows:\n  - id: a\n    reason: r\n", "  - id: b\n    reason: x\n",
                 id="offset-after-a-compact-list"),
    pytest.param(HEAD + "windows:\n- id: a\n  pause:\n      - nightly\n", "- id: b\n  reason: x\n",
                 id="compact-holding-an-offset-list"),
])
def test_each_list_keeps_its_own_indentation(tmp_path: Path, text: str, added: str) -> None:
    assert render_one(tmp_path, text, NEW_WINDOW) == text + added
    changed = render_one(tmp_path, text, Edit("set", ("windows", 0, "id"), "c"))
    assert changed == text.replace("id: a", "id: c")


def test_a_file_without_a_final_newline_keeps_going_without_one(tmp_path: Path) -> None:
    text = WINDOWS.rstrip("\n")
    assert render_one(tmp_path, text, NEW_WINDOW) == text + "\n  - id: b\n    reason: x"
    assert render_one(tmp_path, text, SET_REASON) == text.replace("reason: r", "reason: z")


def test_tabs_in_comments_and_before_them_are_kept(tmp_path: Path) -> None:
    text = HEAD + "#\ta\tcomment\nwindows:\t# the windows\n  - id: a\t# tab\n    reason: r\n"
    assert render_one(tmp_path, text, NEW_WINDOW) == text + "  - id: b\n    reason: x\n"
    assert render_one(tmp_path, text, SET_REASON) == text.replace("reason: r", "reason: z")


FOOTED = HEAD + "windows:\n  # lead a\n  - id: a\n    reason: r  # eol a\n  # lead b\n  - id: b\n    reason: s\n" \
         "    # about b\n\n# footer\n# more footer\n"


def test_an_appended_item_goes_before_the_comments_that_close_the_file(tmp_path: Path) -> None:
    out = render_one(tmp_path, FOOTED, NEW_WINDOW)
    assert out == FOOTED.replace("\n\n# footer", "\n  - id: b\n    reason: x\n\n# footer")


def test_a_scalar_appended_goes_before_the_comments_that_close_the_file(tmp_path: Path) -> None:
    text = 'merges:\n  courses:\n    terms:\n      - "a1"  # first\n# footer\n'
    out = render_one(tmp_path, text, Edit("append", ("merges", "courses", "terms"), Code("c3")))
    assert out == text.replace("# footer", '      - "c3"\n# footer')


@pytest.mark.parametrize(("index", "gone"), [
    pytest.param(0, "  # lead a\n  - id: a\n    reason: r  # eol a\n", id="first"),
    pytest.param(1, "  # lead b\n  - id: b\n    reason: s\n    # about b\n", id="last"),
])
def test_a_removed_item_takes_its_own_comments_and_leaves_the_others(tmp_path: Path, index: int,
                                                                      gone: str) -> None:
    out = render_one(tmp_path, FOOTED, Edit("remove_item", ("windows", index)))
    assert out == FOOTED.replace(gone, "")


def test_a_removed_scalar_leaves_the_comments_around_it(tmp_path: Path) -> None:
    text = 'terms:\n  - "a"  # eol a\n  # lead b\n  - "b"\n# footer\n'
    assert render_one(tmp_path, text, Edit("remove", ("terms",), "b")) == text.replace('  # lead b\n  - "b"\n', "")
    assert render_one(tmp_path, text, Edit("remove", ("terms",), "a")) == text.replace('  - "a"  # eol a\n', "")


def test_comments_come_and_go_without_taking_the_next_lines(tmp_path: Path) -> None:
    text = "windows:\n  - id: a\n    end: x  # old\n  # lead b\n  - id: b\n    end: y\n  # lead c\n  - id: c\n"
    added = render_one(tmp_path, text, Edit("comment", ("windows", 1, "end"), "open"))
    assert added == text.replace("end: y", "end: y  # open")
    dropped = render_one(tmp_path, text, Edit("drop_comment", ("windows", 0, "end")))
    assert dropped == text.replace("end: x  # old", "end: x")


@pytest.mark.parametrize("line", [
    pytest.param("note: ~", id="tilde"),
    pytest.param("note: null", id="null"),
    pytest.param("count: 0o17", id="octal"),
    pytest.param("count: 0x1F", id="hex"),
    pytest.param('name: "caf\\u00e9"', id="escape"),
    pytest.param("name: a plain\n  text on two lines", id="folded-plain"),
    pytest.param("item: {code: a,\n       name: b}", id="flow-on-two-lines"),
    pytest.param("name: 'it''s'", id="single-quote"),
])
def test_untouched_values_keep_their_spelling(tmp_path: Path, line: str) -> None:
    text = f"{HEAD}{line}\nwindows:\n  - id: a\n"
    assert render_one(tmp_path, text, NEW_WINDOW) == text + "  - id: b\n    reason: x\n"
    assert render_one(tmp_path, text + "...\n", NEW_WINDOW) == text + "  - id: b\n    reason: x\n...\n"
