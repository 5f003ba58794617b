"""EDGE: the `reconciler` command. Commands load lazily so `--help` stays fast.

One error handler (pre-commit): a ReconcilerError prints one line and exits with its
code; anything else prints "unexpected error" with a hint to rerun with --debug.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from reconciler import __version__

COMMANDS: dict[str, str] = {
    "init": "reconciler.cli.init",
    "validate": "reconciler.cli.validate",
    "plan": "reconciler.cli.plan",
    "apply": "reconciler.cli.apply",
    "drift": "reconciler.cli.drift",
    "import": "reconciler.cli.import_",
    "status": "reconciler.cli.status",
    "schedule": "reconciler.cli.schedule",
    "log": "reconciler.cli.log",
    "pause": "reconciler.cli.pause",
    "resume": "reconciler.cli.resume",
    "term": "reconciler.cli.term",
    "promote": "reconciler.cli.promote",
    "merge": "reconciler.cli.merge",
    "watch": "reconciler.cli.watch",
    "report": "reconciler.cli.report",
    "emulator": "reconciler.cli.emulator",
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if importlib.util.find_spec(COMMANDS[name]) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None or importlib.util.find_spec(module_name) is None:
            return None
        return importlib.import_module(module_name).command  # type: ignore[no-any-return]


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example: reconciler init demo && reconciler --root demo validate",
)
@click.version_option(__version__, prog_name="reconciler")
@click.option(
    "--root", "root", metavar="DIR", help="The repository root (default: the nearest folder holding environments/)."
)
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, root: str | None, debug: bool) -> None:
    """Declarative, git-versioned integration settings for a class-scheduling platform."""
    ctx.ensure_object(dict)
    ctx.obj["root"] = root
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; every error becomes one line on stderr."""
    from reconciler.errors import ReconcilerError

    args = sys.argv[1:] if argv is None else argv
    try:
        result: Any = cli.main(args=args, prog_name="reconciler", standalone_mode=False)
    except ReconcilerError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return 1
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # the one place an unexpected error is caught
        if "--debug" in args:
            raise
        click.echo(f"unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
        return 1
    return int(result or 0)
