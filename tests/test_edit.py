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
    (tmp_path / "f.yaml").write_text(text)
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


def test_keep_layout_takes_changed_lines_from_the_new_text() -> None:
    old = "a: {x: 1,   y: 2}\nb: 1\n"
    new = "a: {x: 1, y: 2}\nb: 2\n"
    assert edit.keep_layout(old, new) == "a: {x: 1,   y: 2}\nb: 2\n"


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
