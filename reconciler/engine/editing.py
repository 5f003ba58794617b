"""The YAML edits that go to a pull request (term roll / expire, promote): refused while the repository
does not validate, kept only if the result validates, reported file by file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.core.rollover import Changes
    from reconciler.repo import Repository


def refuse_errors(root: Path, repo: Repository, note: Callable[[str], None]) -> None:
    """Refuse to edit a repository that does not validate."""
    from reconciler.engine.selection import refuse_on_errors

    refuse_on_errors(root, [], None, repo, before="editing it", note=note)


def write_checked(root: Path, changes: Changes) -> list[str]:
    """Write the changes; if the result does not validate, put every file back and refuse."""
    from reconciler import edit
    from reconciler.engine.selection import collect_problems

    texts = edit.render(root, changes)
    if not texts:
        return []
    old = edit.write_texts(root, texts)
    edit.keep_if_valid(root, old, lambda: collect_problems(root, [])[0])
    return list(texts)


def report(changes: Changes, written: Sequence[str], emit: Callable[[str], None]) -> None:
    for rel in written:
        for edit in changes.files.get(rel, []):
            if edit.note:
                emit(f"  {rel}: {edit.note}")
    count = len(written)
    emit(f"{count} file{'s' if count != 1 else ''} changed, not committed; review with `git diff`, "
         "then open a pull request")
