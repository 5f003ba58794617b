"""EDGE: the admin API as a Starlette app over the SQLite live store (the contract: schemas/admin-api.openapi.yaml).

Each handler checks the request (name, headers, body), then does its work in one store transaction on a
worker thread (SQLite is blocking). An idempotent write looks its key up in that same transaction, so a
retry after a dropped connection gets the first response and changes nothing again.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reconciler.connectors.base import PartialApplyError
from reconciler.connectors.embedded import LiveStore
from reconciler.core.plan import CANCELLABLE, NEW_REQUEST_STATUS, Action, Change, canonical_json, fingerprint
from reconciler.emulator.contract import LiveChecker, warm_up
from reconciler.emulator.guard import Faults, Guard
from reconciler.emulator.replies import (
    Refusal,
    Reply,
    check_if_match,
    environment,
    etag,
    http_error,
    json_body,
    live_error,
    query_int,
    required_if_match,
    store_error,
)
from reconciler.errors import LiveError, ReconcilerError

BASE = "/api/v1/environments/{env}"
READ_ONLY_PATHS = ("applied", "available_terms", "activity")
ACTIVITY_LIMIT = 100


class Api:
    """The handlers, sharing the store file, the clock and the live-state checker."""

    def __init__(self, db_path: Path, clock: Callable[[], float]) -> None:
        self.db_path = db_path
        self.clock = clock
        self.check_live = LiveChecker()
        self.connections = threading.local()  # one store connection per worker thread, kept

    def store(self, env: str) -> LiveStore:
        return LiveStore(self.db_path, env, clock=self.clock, sync_each_commit=False, connections=self.connections)

    # --- plumbing --------------------------------------------------------------------------

    async def _run(self, request: Request, work: Callable[[LiveStore, Any], Reply], *, idempotent: bool = False,
                   body: Any = None, write: bool = True) -> Response:
        """Run `work(store, conn)` in one transaction on a worker thread; with `idempotent`, honour the key."""
        env = environment(request)
        key = request.headers.get("idempotency-key")
        if idempotent and not key:
            return Reply(400, {"error": "Idempotency-Key is required on every write"}).response()
        digest = hashlib.sha256(f"{request.method} {request.url.path} {canonical_json(body)}".encode()).hexdigest()
        reply = await run_in_threadpool(self._transaction, env, key if idempotent else None, digest, work, write)
        return reply.response()

    def _transaction(self, env: str, key: str | None, digest: str, work: Callable[[LiveStore, Any], Reply],
                     write: bool) -> Reply:
        store = self.store(env)
        try:
            with store.transaction(write=write) as conn:
                if key is not None:
                    stored = store.recall(conn, key)
                    if stored is not None:
                        if stored[0] != digest:
                            raise Refusal(422, "this Idempotency-Key was used for a different request")
                        return Reply(stored[1], stored[3], stored[2])
                reply = work(store, conn)
                if key is not None:
                    store.remember(conn, key, digest, reply.status, reply.headers, reply.body)
                return reply
        except Refusal as refusal:
            return refusal.reply

    # --- reading ---------------------------------------------------------------------------

    async def read_live(self, request: Request) -> Response:
        def work(store: LiveStore, conn: Any) -> Reply:
            doc = store.live(conn)
            return Reply(200, doc, {"ETag": etag(doc)})

        return await self._run(request, work, write=False)

    async def list_activity(self, request: Request) -> Response:
        since_id = query_int(request, "since_id", 0, 0, 2**63 - 1)
        limit = query_int(request, "limit", ACTIVITY_LIMIT, 1, 1000)

        def work(store: LiveStore, conn: Any) -> Reply:
            rows = store.activity(conn, since_id, limit)
            return Reply(200, {"entries": [{"id": i, "at": at, "entry": entry} for i, at, entry in rows]})

        return await self._run(request, work, write=False)

    async def list_requests(self, request: Request) -> Response:
        def work(store: LiveStore, conn: Any) -> Reply:
            doc = store.live(conn)
            return Reply(200, {"requests": doc.get("update_requests") or {}}, {"ETag": etag(doc)})

        return await self._run(request, work, write=False)

    # --- writing ---------------------------------------------------------------------------

    async def apply_changes(self, request: Request) -> Response:
        environment(request)
        if_match = required_if_match(request)
        body = await json_body(request, "/api/v1/environments/{env}/changes", "post")
        changes = [Change(Action(c["action"]), c["path"], c.get("before"), c.get("after"), c.get("value"),
                          c.get("because")) for c in body["changes"]]

        def work(store: LiveStore, conn: Any) -> Reply:
            lease = store.lease(conn)
            if lease is not None and lease[0] != body.get("lease_holder"):
                raise Refusal(423, f"the live side is locked by {lease[0]}", holder=lease[0], expires=lease[1])
            check_if_match(if_match, store.live(conn), required=True)
            self._apply(store, conn, changes, body["record"])
            doc = store.live(conn)
            return Reply(200, {"applied": len(changes), "etag": fingerprint(doc)}, {"ETag": etag(doc)})

        return await self._run(request, work, idempotent=True, body=body)

    def _apply(self, store: LiveStore, conn: Any, changes: list[Change], record: dict[str, Any]) -> None:
        if not changes:
            return
        rolled = store.available_terms(conn)
        for index, change in enumerate(changes):
            if rolled is not None and change.action is Action.ADD and change.path.startswith("merges.") \
                    and change.path.endswith(".terms") and change.value not in rolled:
                raise Refusal(422, f"{change.path}: term {change.value} is not rolled in the SIS",
                              applied=0, failed=index)
        try:
            store.apply_changes(conn, changes, record, check=self.check_live)
        except PartialApplyError as e:
            raise Refusal(422, f"{e.failed.path}: {e}", applied=0, failed=_index(changes, e.failed)) from e
        except (LookupError, TypeError, ValueError, AttributeError) as e:  # the change does not fit the document
            index = _index(changes, getattr(e, "failed", None))
            raise Refusal(422, f"{changes[index].path}: cannot be applied ({type(e).__name__}: {e})",
                          applied=0, failed=index) from e

    async def take_lease(self, request: Request) -> Response:
        body = await json_body(request, "/api/v1/environments/{env}/lease", "post")

        def work(store: LiveStore, conn: Any) -> Reply:
            # `takeover`: the client saw that holder die on its own host; swap only if it still holds
            taken, holder, expires = store.take_lease(conn, body["holder"], float(body["ttl_s"]), body.get("takeover"))
            if not taken:
                raise Refusal(423, f"the live side is locked by {holder}", holder=holder, expires=expires)
            return Reply(200, {"holder": holder, "expires": expires})

        return await self._run(request, work)

    async def release_lease(self, request: Request) -> Response:
        holder = request.query_params.get("holder")
        if not holder:
            return Reply(400, {"error": "the query parameter holder is required"}).response()

        def work(store: LiveStore, conn: Any) -> Reply:
            store.release_lease(conn, holder)
            return Reply(204)

        return await self._run(request, work)

    async def append_activity(self, request: Request) -> Response:
        body = await json_body(request, "/api/v1/environments/{env}/activity", "post")

        def work(store: LiveStore, conn: Any) -> Reply:
            return Reply(201, {"id": store.insert_activity(conn, body)})

        return await self._run(request, work, idempotent=True, body=body)

    async def execute_merge(self, request: Request) -> Response:
        body = await json_body(request, "/api/v1/environments/{env}/merges", "post")

        def work(store: LiveStore, conn: Any) -> Reply:
            rolled = store.available_terms(conn)
            if rolled is not None and body["term"] not in rolled:
                raise Refusal(409, f"term {body['term']} is not rolled in the SIS")
            result = store.merge(conn, body["term"], body["types"], send_updates=body["send_updates"],
                                 record=body.get("record") or {})
            return Reply(200, result)

        return await self._run(request, work, idempotent=True, body=body)

    # --- update requests -------------------------------------------------------------------

    async def submit_request(self, request: Request) -> Response:
        environment(request)
        if_match = required_if_match(request)
        body = await json_body(request, "/api/v1/environments/{env}/update-requests", "post")

        def work(store: LiveStore, conn: Any) -> Reply:
            check_if_match(if_match, store.live(conn), required=True)
            doc = store.doc(conn)
            requests = doc.setdefault("update_requests", {})
            if body["id"] in requests:
                raise Refusal(409, f"update request {body['id']} exists already")
            item = {k: v for k, v in body.items() if k != "id"}
            requests[body["id"]] = {**item, "status": NEW_REQUEST_STATUS}
            return self._write_request(store, conn, doc, body["id"], 201)

        return await self._run(request, work, idempotent=True, body=body)

    async def cancel_request(self, request: Request) -> Response:
        environment(request)
        if_match = required_if_match(request)
        rid = request.path_params["id"]

        def work(store: LiveStore, conn: Any) -> Reply:
            check_if_match(if_match, store.live(conn), required=True)
            doc, item = self._request(store, conn, rid)
            if item.get("status") not in CANCELLABLE:
                raise Refusal(409, f"update request {rid} is {item.get('status')}; only To Be Scheduled or "
                                   "Scheduled can be cancelled")
            item["status"] = "Cancelled"
            return self._write_request(store, conn, doc, rid, 200)

        return await self._run(request, work, idempotent=True)

    async def set_request_status(self, request: Request) -> Response:
        body = await json_body(request, "/api/v1/environments/{env}/update-requests/{id}/status", "put")
        rid = request.path_params["id"]

        def work(store: LiveStore, conn: Any) -> Reply:
            doc, item = self._request(store, conn, rid)
            item["status"] = body["status"]
            return self._write_request(store, conn, doc, rid, 200)

        return await self._run(request, work)

    def _request(self, store: LiveStore, conn: Any, rid: str) -> tuple[dict[str, Any], dict[str, Any]]:
        doc = store.doc(conn)
        item = (doc.get("update_requests") or {}).get(rid)
        if not isinstance(item, dict):
            raise Refusal(404, f"no update request {rid}")
        return doc, item

    def _write_request(self, store: LiveStore, conn: Any, doc: dict[str, Any], rid: str, status: int) -> Reply:
        try:
            self.check_live(doc)
        except ReconcilerError as e:
            raise Refusal(422, str(e)) from e
        store.write_doc(conn, doc)
        return Reply(status, {"id": rid, **doc["update_requests"][rid]}, {"ETag": etag(store.live(conn))})

    # --- rehearsal: the SIS and the console ------------------------------------------------

    async def set_available_terms(self, request: Request) -> Response:
        body = await json_body(request, "/api/v1/environments/{env}/available-terms", "put")

        def work(store: LiveStore, conn: Any) -> Reply:
            store.set_available_terms(conn, body["terms"])
            doc = store.live(conn)
            return Reply(200, doc, {"ETag": etag(doc)})

        return await self._run(request, work)

    async def console(self, request: Request) -> Response:
        body = await json_body(request, "/api/v1/environments/{env}/console", "patch")
        if_match = request.headers.get("if-match")
        for path in body["set"]:
            if path.split(".")[0] in READ_ONLY_PATHS:
                return Reply(422, {"error": f"{path}: not settable at the console"}).response()

        def work(store: LiveStore, conn: Any) -> Reply:
            check_if_match(if_match, store.live(conn), required=False)
            try:
                store.console_set(conn, body["set"], check=self.check_live)
            except ReconcilerError as e:
                raise Refusal(422, str(e)) from e
            doc = store.live(conn)
            return Reply(200, doc, {"ETag": etag(doc)})

        return await self._run(request, work)


def _index(changes: list[Change], failed: Any) -> int:
    return next((i for i, change in enumerate(changes) if change is failed), 0)


async def _health(request: Request) -> Response:
    return JSONResponse({"ok": True})


def routes(api: Api) -> list[Route]:
    return [
        Route("/healthz", _health, methods=["GET"]),
        Route(BASE, api.read_live, methods=["GET"]),
        Route(f"{BASE}/changes", api.apply_changes, methods=["POST"]),
        Route(f"{BASE}/lease", api.take_lease, methods=["POST"]),
        Route(f"{BASE}/lease", api.release_lease, methods=["DELETE"]),
        Route(f"{BASE}/activity", api.list_activity, methods=["GET"]),
        Route(f"{BASE}/activity", api.append_activity, methods=["POST"]),
        Route(f"{BASE}/update-requests", api.list_requests, methods=["GET"]),
        Route(f"{BASE}/update-requests", api.submit_request, methods=["POST"]),
        Route(f"{BASE}/update-requests/{{id}}", api.cancel_request, methods=["DELETE"]),
        Route(f"{BASE}/update-requests/{{id}}/status", api.set_request_status, methods=["PUT"]),
        Route(f"{BASE}/merges", api.execute_merge, methods=["POST"]),
        Route(f"{BASE}/available-terms", api.set_available_terms, methods=["PUT"]),
        Route(f"{BASE}/console", api.console, methods=["PATCH"]),
    ]


def create_app(
    db_path: Path | str,
    token: str,
    *,
    latency_ms: int = 0,
    error_rate: float = 0.0,
    drop_rate: float = 0.0,
    seed: int | None = None,
    max_in_flight: int = 64,
    clock: Callable[[], float] | None = None,
    api_kind: str = "reconciler",
) -> Starlette:
    """The admin API over the store at `db_path`, answering only requests bearing `token`; with
    `api_kind="coursedog"`, the scheduling platform's read API over it instead (emulator/coursedog.py)."""
    import time

    if not token:
        raise ValueError("the emulator needs a token")
    api = Api(Path(db_path), clock or time.time)
    warm_up()
    faults = Faults(latency_ms, error_rate, drop_rate, seed)
    if api_kind == "coursedog":
        from reconciler.emulator.coursedog import routes as platform_routes

        served = [Route("/healthz", _health, methods=["GET"]), *platform_routes(api)]
    else:
        served = routes(api)
    return Starlette(
        routes=served,
        middleware=[Middleware(Guard, token=token, faults=faults, max_in_flight=max_in_flight)],
        exception_handlers={HTTPException: http_error, LiveError: live_error, sqlite3.Error: store_error},
    )
