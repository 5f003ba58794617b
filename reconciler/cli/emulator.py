"""EDGE: `reconciler emulator` — serve the admin API (schemas/admin-api.openapi.yaml) from the live store.

Starlette and uvicorn are imported only when the command runs, so `reconciler --help` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from reconciler.cli.options import note, resolve_root, root_option
from reconciler.errors import RootNotFound, UsageError

FALLBACK_DB = "reconciler-emulator.sqlite"


@click.command(
    epilog="Example: RECONCILER_TOKEN=s3cret reconciler emulator --port 8700 --latency 50 --error-rate 0.05",
    short_help="Serve the admin API from the live store (rehearsals and tests).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True, help="Port to listen on.")
@click.option("--db", "db", metavar="FILE", default=None,
              help="The store (default: <root>/.reconciler/live.sqlite, or ./reconciler-emulator.sqlite "
                   "outside a repository).")
@click.option("--token-env", metavar="VAR", default="RECONCILER_TOKEN", show_default=True,
              help="Variable holding the bearer token clients must send.")
@click.option("--latency", "latency_ms", metavar="MS", type=click.IntRange(0, 60_000), default=0,
              help="Wait this long before answering each API request.")
@click.option("--error-rate", metavar="P", type=click.FloatRange(0.0, 1.0), default=0.0,
              help="Share of API requests answered 500/503 without doing anything.")
@click.option("--drop-rate", metavar="P", type=click.FloatRange(0.0, 1.0), default=0.0,
              help="Share of writes that are made and then answered by dropping the connection.")
@click.option("--seed", metavar="N", type=int, default=None, help="Seed of the injected faults (repeatable runs).")
@click.option("--max-in-flight", metavar="N", type=click.IntRange(1, 10_000), default=64, show_default=True,
              help="Requests served at once; more get 429 with Retry-After.")
@click.option("--allow-remote", is_flag=True, help="Allow a --host that is not a loopback address.")
@click.option("--api", "api_kind", type=click.Choice(["reconciler", "coursedog"]), default="reconciler",
              show_default=True, help="Serve our admin API, or the scheduling platform's own read API (coursedog).")
@root_option
def command(host: str, port: int, db: str | None, token_env: str, latency_ms: int, error_rate: float,
            drop_rate: float, seed: int | None, max_in_flight: int, allow_remote: bool, api_kind: str,
            root: str | None) -> int:
    """Serve the platform's admin API for rehearsals: the live side of every environment in the store."""
    return run_emulator(host=host, port=port, db=_default_db(db, root), token_env=token_env, latency_ms=latency_ms,
                        error_rate=error_rate, drop_rate=drop_rate, seed=seed, max_in_flight=max_in_flight,
                        allow_remote=allow_remote, api_kind=api_kind)


def _default_db(db: str | None, root: str | None) -> Path:
    if db is not None:
        return Path(db)
    from reconciler.connectors.embedded import store_path

    try:
        return store_path(resolve_root(root))
    except RootNotFound:
        if root is not None:
            raise
        return Path(FALLBACK_DB)


def run_emulator(*, host: str, port: int, db: Path, token_env: str, latency_ms: int = 0, error_rate: float = 0.0,
                 drop_rate: float = 0.0, seed: int | None = None, max_in_flight: int = 64,
                 allow_remote: bool = False, api_kind: str = "reconciler") -> int:
    token = os.environ.get(token_env)
    if not token:
        raise UsageError(f"--token-env {token_env}: the variable {token_env} is not set; put the API token in it")
    from reconciler.connectors.http import is_loopback

    if not is_loopback(host):
        if not allow_remote:
            raise UsageError(f"--host {host} is not a loopback address; pass --allow-remote to serve other machines")
        note(f"warning: serving on {host}: other machines can reach the emulator (plain http, bearer token)")
    from reconciler.connectors.embedded import open_store
    from reconciler.emulator.app import create_app
    from reconciler.emulator.server import configure_logging, listen, serve

    open_store(db).close()  # a bad or foreign store file is a one-line error now, not on the first request
    sock = listen(host, port)
    app = create_app(db, token, latency_ms=latency_ms, error_rate=error_rate, drop_rate=drop_rate, seed=seed,
                     max_in_flight=max_in_flight, api_kind=api_kind)
    configure_logging()
    shown = f"[{host}]" if ":" in host else host
    what = "the platform's read API (coursedog)" if api_kind == "coursedog" else "the admin API"
    note(f"serving {what} at http://{shown}:{sock.getsockname()[1]}/api/v1 from {db} (token from ${token_env}); "
         "stop with Ctrl-C")
    serve(app, sock)
    note("stopped")
    return 0
