"""EDGE: options shared by several commands, as small decorators."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from reconciler.core.words import Words
    from reconciler.engine import Engine
    from reconciler.model import EnvironmentSpec

F = TypeVar("F", bound=Callable[..., Any])


def root_option(func: F) -> F:
    return click.option(
        "--root", "root", metavar="DIR", default=None,
        help="The repository root (default: the nearest folder holding environments/).",
    )(func)


def format_option(*choices: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        return click.option(
            "--format", "fmt", type=click.Choice(choices), default=choices[0], show_default=True,
            help="Output for a person (text) or a program (json).",
        )(func)

    return decorate


def fleet_options(func: F) -> F:
    func = click.option(
        "--shard", metavar="K/N", default=None, callback=_parse_shard,
        help="Handle only the K-th of N slices of the environments (a fleet split over CI jobs).",
    )(func)
    return click.option(
        "--parallel", metavar="N", type=click.IntRange(1, 64), default=None,
        help="How many environments to handle at once (default: a bound that suits the machine).",
    )(func)


def _parse_shard(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", value)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise click.BadParameter(f"{value!r} is not K/N with 1 <= K <= N", ctx=ctx, param=param)
    return int(match[1]), int(match[2])


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def one_line_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A value that goes into a commit message or a record (--reason, --ticket, --message): refused with
    a control character, so a newline cannot forge a trailer such as `Actor:`."""
    if value is not None and _CONTROL.search(value):
        raise click.BadParameter("must be one line of text, without control characters (a newline could "
                                 "forge the record's trailers)", ctx=ctx, param=param)
    return value


def resolve_root(root: str | None) -> Path:
    """The command's --root, else the group's --root, else discovery."""
    from reconciler.repo import find_root

    ctx = click.get_current_context(silent=True)
    group_root = (ctx.find_root().obj or {}).get("root") if ctx else None
    return find_root(root or group_root)


def instant(option: str, text: str, tz: Any) -> datetime:
    """`--at T` and the like: an aware datetime, or a TimeInputError that names the option."""
    from reconciler.engine.selection import instant as parse

    return parse(option, text, tz)


def fleet_instant(option: str, text: str, specs: Sequence[EnvironmentSpec]) -> datetime:
    """`--from T` and the like over several environments: refused without an offset when their zones differ."""
    from reconciler.engine.selection import fleet_instant as parse

    return parse(option, text, specs)


def use_color() -> bool:
    """Colour at a terminal unless NO_COLOR is set to a non-empty value (no-color.org: an empty one is as
    if unset)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def emit(text: str) -> None:
    click.echo(text, nl=not text.endswith("\n"))


def note(text: str) -> None:
    click.echo(text, err=True)


def refuse_faults(faults: Mapping[str, object], what: str = "planned") -> None:
    """The end of a fleet command: each environment that could not be read says why on stderr, then the
    command exits 1 naming them all; nothing when every one was read."""
    from reconciler.errors import LiveError

    if not faults:
        return
    for fault in faults.values():
        note(f"error: {fault}")
    names = ", ".join(faults)
    raise LiveError(f"{len(faults)} environment{'s' if len(faults) != 1 else ''} not {what} ({names}); "
                    "see the errors above")


class ConsoleReporter:
    """The engine's Reporter at a terminal or in CI: lines on stdout, notes and progress on stderr."""

    def __init__(self) -> None:
        self.color = use_color()
        self.interactive = sys.stdin.isatty()

    def emit(self, text: str) -> None:
        emit(text)

    def note(self, text: str) -> None:
        note(text)

    def progress(self, description: str, total: int) -> AbstractContextManager[Callable[[], None]]:
        return progress(description, total)

    def ask(self, question: str, preface: str = "") -> bool | None:
        if not self.interactive:
            return None
        if preface:
            emit(preface)
        return bool(click.confirm(question, default=False))


def engine(root: Path) -> Engine:
    """The engine of a command run, speaking through the console."""
    from reconciler.engine import Engine

    return Engine(root, out=ConsoleReporter())


def words(run: Engine) -> Words:
    """Term names, zones and protected flags of the work tree's environments, for a person's output."""
    from reconciler.core.words import Words

    repo = run.selected.repo if run.selected is not None else run.repository()  # loaded once per command
    return Words.of(repo.envs.values()) if repo is not None else Words()


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr for fleet work a person watches: only when stderr is a terminal and
    more than one environment is handled; otherwise (CI, pipes, tests) a no-op. Never on stdout."""
    if total <= 1 or not stderr_is_tty():
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task(description, total=total)
    with bar:
        yield lambda: bar.advance(task)


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
