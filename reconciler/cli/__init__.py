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

COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("reconciler.cli.init", "Write a working example repository."),
    "validate": ("reconciler.cli.validate", "Check the YAML against the schemas and the policy rules."),
    "plan": ("reconciler.cli.plan", "Show the changes that take live to the YAML."),
    "apply": ("reconciler.cli.apply", "Apply the plan to the live side."),
    "drift": ("reconciler.cli.drift", "Show live changes made outside git since the last apply."),
    "import": ("reconciler.cli.import_", "Write the live state into the YAML (adopt drift)."),
    "status": ("reconciler.cli.status", "Show what is applied, whether live is in sync, and what comes next."),
    "schedule": ("reconciler.cli.schedule", "List upcoming windows, phases and term boundaries."),
    "log": ("reconciler.cli.log", "The activity log from git: what changed, who, why."),
    "pause": ("reconciler.cli.pause", "Pause merges now for an unplanned outage: a window, a commit, an apply."),
    "resume": ("reconciler.cli.resume", "End the open pause window now: a commit, an apply."),
    "term": ("reconciler.cli.term", "Roll a new term into every environment, or expire ended ones."),
    "promote": ("reconciler.cli.promote", "Copy term scopes and phases from one environment to another."),
    "merge": ("reconciler.cli.merge", "Run an execute merge of one term, in the SIS's order."),
    "watch": ("reconciler.cli.watch", "Reconcile continuously, acting at each window boundary on time."),
    "report": ("reconciler.cli.report", "Write a static HTML report of the environments."),
    "emulator": ("reconciler.cli.emulator", "Serve a local stand-in for the platform's admin API."),
    "activity": ("reconciler.cli.activity", "Push the activity branch, replaying this run's records if needed."),
}
"""Command name → (module, one-line help). `--help` lists commands from here without importing them."""


class LazyGroup(click.Group):
    """Imports a command's module only when that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (module, _) in COMMANDS.items() if importlib.util.find_spec(module) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name, _ = COMMANDS.get(cmd_name, (None, ""))
        if module_name is None or importlib.util.find_spec(module_name) is None:
            return None
        return importlib.import_module(module_name).command  # type: ignore[no-any-return]

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                             list[str]]:
        """A mistyped command gets a did-you-mean (DESIGN §4)."""
        name = args[0] if args else ""
        if args and not name.startswith("-") and self.get_command(ctx, name) is None:
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


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
