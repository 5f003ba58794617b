"""EDGE: the emulator's HTTP vocabulary — replies, refusals, the ETag and If-Match, and request parsing
(environment name, query integers, JSON bodies checked against the contract) with the JSON error handlers."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.core.plan import fingerprint
from reconciler.emulator.contract import BadBody, body_pointer, check_body
from reconciler.model import ENV_NAME_PATTERN

ENV_NAME = re.compile(ENV_NAME_PATTERN)


@dataclass
class Reply:
    """One answer: status, JSON body, headers (also what an idempotent write stores for a retry)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        if self.status == 204:
            return Response(status_code=204, headers=self.headers)
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


class Refusal(Exception):
    """A 4xx answer raised inside a transaction: nothing of it is kept."""

    def __init__(self, status: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.reply = Reply(status, {"error": error, **extra})


def etag(doc: Mapping[str, Any]) -> str:
    return f'"{fingerprint(doc)}"'


def required_if_match(request: Request) -> str:
    """The If-Match header of a write that needs one (428 without it), checked later against live."""
    tag = request.headers.get("if-match")
    if tag is None:
        raise HTTPException(428, "If-Match is required: send the ETag the write was planned against")
    return tag


def check_if_match(header: str | None, doc: Mapping[str, Any], *, required: bool) -> None:
    """412 unless If-Match names the current ETag (or is `*`); 428 when it is required and missing."""
    if header is None:
        if required:
            raise Refusal(428, "If-Match is required: send the ETag the change was planned against")
        return
    current = fingerprint(doc)
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    if "*" not in tags and current not in tags:
        raise Refusal(412, "live moved: If-Match is not the current ETag", etag=current)


def environment(request: Request) -> str:
    env = str(request.path_params["env"])
    if not ENV_NAME.match(env):
        raise HTTPException(404, f"no environment {env[:80]!r}: a name matches {ENV_NAME.pattern}")
    return env


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise HTTPException(400, f"{name} must be between {low} and {high}")
    return value


async def json_body(request: Request, path: str, method: str) -> Any:
    """The request's JSON body, checked against the operation's schema (400 naming the problem)."""
    environment(request)
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise HTTPException(400, "the body is not JSON") from None
    try:
        check_body(body, body_pointer(path, method))
    except BadBody as e:
        raise HTTPException(400, f"bad body: {e}") from None
    return body


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def live_error(request: Request, exc: Exception) -> Response:
    # the store is busy or unreadable: the client may retry
    return JSONResponse({"error": str(exc).splitlines()[0]}, status_code=503, headers={"Retry-After": "1"})


async def store_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"the store is busy: {exc}".splitlines()[0]}, status_code=503,
                        headers={"Retry-After": "1"})


