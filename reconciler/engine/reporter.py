"""How the engine speaks while it works: lines for stdout, notes for stderr, progress, a question.

The engine never prints (STYLE rule 12); a command hands it a Reporter (cli/options.ConsoleReporter),
a test or `watch` another one. `Quiet` drops everything but keeps the notes, for callers that
render the result themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Reporter(Protocol):
    color: bool
    """Whether output for a person may be coloured."""
    interactive: bool
    """Whether a person is at a terminal to answer `ask`."""

    def emit(self, text: str) -> None:
        """A line of the command's output (stdout)."""

    def note(self, text: str) -> None:
        """A message for the person (stderr)."""

    def progress(self, description: str, total: int) -> AbstractContextManager[Callable[[], None]]:
        """A context whose value is called once per environment handled."""
        ...

    def ask(self, question: str, preface: str = "") -> bool | None:
        """The person's yes or no after showing `preface`, or None when nobody is at a terminal to answer."""


class Quiet:
    """A Reporter that keeps what it is told (for tests and for callers that render themselves)."""

    color = False
    interactive = False

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.notes: list[str] = []
        self.said: list[str] = []
        """Lines and notes together, in the order they were said."""

    def emit(self, text: str) -> None:
        self.lines.append(text)
        self.said.append(text)

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.said.append(text)

    @contextmanager
    def _progress(self) -> Iterator[Callable[[], None]]:
        yield lambda: None

    def progress(self, description: str, total: int) -> AbstractContextManager[Callable[[], None]]:
        return self._progress()

    def ask(self, question: str, preface: str = "") -> bool | None:
        return None
