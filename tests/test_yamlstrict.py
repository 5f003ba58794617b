"""The strict dialect: YAML 1.2 core scalars, and every trap refused with a mark."""

from __future__ import annotations

import pytest

from reconciler.core.yamlstrict import MAX_DEPTH, DialectError, parse, resolve_plain


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("NO", "NO", id="NO-stays-string"),
        pytest.param("yes", "yes", id="yes-stays-string"),
        pytest.param("on", "on", id="on-stays-string"),
        pytest.param("04:00", "04:00", id="sexagesimal-stays-string"),
        pytest.param("2026-12-05", "2026-12-05", id="date-stays-string"),
        pytest.param("true", True, id="true"),
        pytest.param("False", False, id="False"),
        pytest.param("~", None, id="tilde-null"),
        pytest.param("null", None, id="null"),
        pytest.param("0o17", 15, id="octal"),
        pytest.param("0x1F", 31, id="hex"),
        pytest.param("012", 12, id="leading-zero-decimal"),
        pytest.param("1.5e3", 1500.0, id="float"),
        pytest.param("1_000", "1_000", id="underscore-stays-string"),
        pytest.param(".", ".", id="dot-stays-string"),
    ],
)
def test_plain_scalars_resolve_as_yaml_1_2_core(text: str, expected: object) -> None:
    assert resolve_plain(text) == expected
    assert type(resolve_plain(text)) is type(expected)


def test_quoted_scalars_are_strings_and_marks_are_one_based() -> None:
    parsed = parse(b'a:\n  b: "true"\n  c: [1, x]\n', "f.yaml")
    assert parsed.data == {"a": {"b": "true", "c": [1, "x"]}}
    assert (parsed.marks[("a", "b")].line, parsed.marks[("a", "b")].column) == (2, 6)
    assert (parsed.marks[("a", "c", 1)].line, parsed.marks[("a", "c", 1)].column) == (3, 10)
    assert (parsed.key_marks[("a", "c")].line, parsed.key_marks[("a", "c")].column) == (3, 3)


@pytest.mark.parametrize(
    ("raw", "line", "column", "words"),
    [
        pytest.param(b"a: 1\nb: 2\na: 3\n", 3, 1, "duplicate key 'a'", id="duplicate-key"),
        pytest.param(b"a: &x 1\nb: *x\n", 1, 4, "anchors are not allowed", id="anchor"),
        pytest.param(b"a: 1\nb: *x\n", 2, 4, "aliases are not allowed", id="undefined-alias"),
        pytest.param(b"a: !!python/object:os.system x\n", 1, 4, "tags are not allowed", id="python-tag"),
        pytest.param(b"a: !custom x\n", 1, 4, "tags are not allowed", id="local-tag"),
        pytest.param(b"a:\n\tb: 1\n", 2, 1, "tab", id="tab-indent"),
        pytest.param(b"a: \xff\xfe\n", 1, 4, "not UTF-8", id="binary"),
        pytest.param(b"a: b\x00c\n", 1, 1, "NUL", id="nul-byte"),
        pytest.param(b"", 1, 1, "empty document", id="empty"),
        pytest.param(b"# only a comment\n", 1, 1, "empty document", id="comment-only"),
        pytest.param(b"a: 1\n---\nb: 2\n", 3, 1, "one YAML document", id="two-documents"),
        pytest.param(b"? [a]\n: 1\n", 1, 3, "key must be a plain value", id="complex-key"),
        pytest.param(b"a: [1, 2\n", 2, 1, "not valid YAML", id="unclosed-flow"),
    ],
)
def test_dialect_traps_are_refused_at_their_mark(raw: bytes, line: int, column: int, words: str) -> None:
    with pytest.raises(DialectError) as caught:
        parse(raw, "env/x.yaml")
    assert (caught.value.mark.line, caught.value.mark.column) == (line, column)
    assert caught.value.mark.file == "env/x.yaml"
    assert words in caught.value.message


def test_billion_laughs_is_refused_at_the_first_anchor_without_expanding() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]")
    with pytest.raises(DialectError) as caught:
        parse("\n".join(lines).encode(), "bomb.yaml")
    assert caught.value.mark.line == 1
    assert "anchors" in caught.value.message


def test_nesting_beyond_the_limit_is_refused() -> None:
    ok = b"a: " + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1)
    assert parse(ok, "f.yaml").data is not None
    with pytest.raises(DialectError, match="nesting deeper"):
        parse(b"a: " + b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5), "f.yaml")


def test_file_over_one_mebibyte_is_refused_before_parsing() -> None:
    raw = b"a: " + b"x" * (1 << 20)
    with pytest.raises(DialectError, match="1 MiB"):
        parse(raw, "big.yaml")
