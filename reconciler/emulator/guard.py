"""EDGE: what the emulator does before routing an /api request — the token (401), the load limit (429) and
the injected faults (errors, latency, dropped connections) — and the one access-log line per request.

A pure ASGI middleware, so a dropped connection can be a real one: the write is made, then the
client's TCP connection is closed before any byte of the response is sent.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("reconciler.emulator")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RETRY_AFTER_S = 1


@dataclass(frozen=True)
class Faults:
    """Injected faults: `error_rate` of API requests fail (500/503) untouched, `drop_rate` of writes are made
    and then their connection is dropped, every API request waits `latency_ms` first."""

    latency_ms: int = 0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    seed: int | None = None


class ConnectionDropped(Exception):
    """Raised after a response has started, so the server closes the connection mid-response."""


class Guard:
    def __init__(self, app: ASGIApp, *, token: str, faults: Faults, max_in_flight: int) -> None:
        self.app = app
        self.token = f"Bearer {token}".encode()
        self.faults = faults
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.random = random.Random(faults.seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith("/api/"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status: list[int] = [0]

        async def logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self._guarded(scope, receive, logged)
        finally:
            # the path only: never the query string or a header (the token travels in one)
            log.info("%s %s %s %.0fms", scope["method"], scope["path"], status[0] or "dropped",
                     (time.monotonic() - started) * 1000)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._authorized(scope):
            await reply(send, 401, {"error": "unauthorized"}, {"www-authenticate": "Bearer"})
            return
        if self.in_flight >= self.max_in_flight:
            await reply(send, 429, {"error": "too many requests in flight; retry later"},
                        {"retry-after": str(RETRY_AFTER_S)})
            return
        self.in_flight += 1
        try:
            await self._faulty(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _authorized(self, scope: Scope) -> bool:
        given = [value for name, value in scope["headers"] if name == b"authorization"]
        return len(given) == 1 and hmac.compare_digest(given[0], self.token)

    async def _faulty(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.faults
        if faults.error_rate and self.random.random() < faults.error_rate:
            status = self.random.choice((500, 503))
            headers = {"retry-after": str(RETRY_AFTER_S)} if status == 503 else {}
            await reply(send, status, {"error": f"injected fault ({status}); nothing was done"}, headers)
            return
        drop = bool(faults.drop_rate) and scope["method"] in WRITES and self.random.random() < faults.drop_rate
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if not drop:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _discard)  # the write is made (and committed); its answer is lost
        await drop_connection(scope, send)


async def _discard(message: Message) -> None:
    return None


async def drop_connection(scope: Scope, send: Send) -> None:
    """Close the client's connection without a response. Under uvicorn, the connection is found by the client's
    address and its transport closed (the client sees the server disconnect); elsewhere the response is started
    and then broken off, which closes the connection too."""
    server = getattr(getattr(scope.get("app"), "state", None), "server", None)
    state = getattr(server, "server_state", None)
    client = tuple(scope.get("client") or ())
    for connection in list(getattr(state, "connections", ())):
        if tuple(getattr(connection, "client", None) or ()) == client and client:
            connection.transport.close()
            for _ in range(3):  # let the server see the connection lost, so it sends nothing more
                await asyncio.sleep(0)
            return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")]})
    raise ConnectionDropped("connection dropped by fault injection")


async def reply(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    """Send a whole JSON response from the middleware (before routing)."""
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})
