"""EDGE: run the emulator app with uvicorn on one socket; SIGTERM and SIGINT stop it cleanly (exit 0).

Logging: one line per API request from the guard (method, path, status, time — never a header or the query
string), uvicorn's own messages, and no uvicorn access log.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

from reconciler.errors import UsageError

GRACEFUL_SHUTDOWN_S = 5


def listen(host: str, port: int) -> socket.socket:
    """Bind the server socket first, so a busy port is a one-line error, not a uvicorn traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise UsageError(f"--host {host} --port {port}: cannot listen there: {e.strerror or e}") from e
    sock.set_inheritable(True)
    return sock


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for name in ("reconciler.emulator", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


def _protocol() -> type:
    """uvicorn's h11 protocol with Nagle off: it writes a response's head and body separately, and with Nagle
    on, the body waits for the client's delayed ACK (about 40 ms per request on a kept-alive connection)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class NoDelay(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().connection_made(transport)

    return NoDelay


def serve(app: Any, sock: socket.socket) -> None:
    """Serve until SIGTERM or SIGINT, then finish the requests in flight (bounded) and return."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            # uvicorn re-raises the signal after shutting down; a signal is how the emulator is meant to
            # stop, so it ends with exit 0 instead
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", http=_protocol(), loop="asyncio",
                            ws="none", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, server_header=False)
    server = Server(config)
    app.state.server = server  # the guard finds a client's connection through it to drop it
    server.run(sockets=[sock])
