"""EDGE: options shared by several commands, as small decorators."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

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


def resolve_root(root: str | None) -> Path:
    """The command's --root, else the group's --root, else discovery."""
    from reconciler.repo import find_root

    ctx = click.get_current_context(silent=True)
    group_root = (ctx.find_root().obj or {}).get("root") if ctx else None
    return find_root(root or group_root)


def instant(option: str, text: str, tz: Any) -> datetime:
    """`--at T` and the like: an aware datetime, or a TimeInputError that names the option."""
    from reconciler.core.timeline import parse_instant
    from reconciler.errors import TimeInputError

    try:
        return parse_instant(text, tz)
    except TimeInputError as e:
        raise TimeInputError(f"{option} {text}: {e}") from None


def use_color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def emit(text: str) -> None:
    click.echo(text, nl=not text.endswith("\n"))


def note(text: str) -> None:
    click.echo(text, err=True)
