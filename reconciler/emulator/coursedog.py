"""EDGE: `reconciler emulator --api coursedog` — the scheduling platform's read API over the same store.

`{school}` is the environment's name in the store; each answer is made from that environment's live
document through `core.platform_map.from_live`, the table the coursedog connector reads with (404 when the
store has no document for it). The rehearsal console endpoint (`PATCH /api/v1/environments/{env}/console`)
is the admin API's, so a test's "person" can click. The guard's token rule (401) applies before routing.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reconciler.core.platform_map import ENTITY_TYPES, from_live
from reconciler.emulator.app import BASE, Api
from reconciler.emulator.replies import Reply

SAVED_STATE = "default"
"""The id of the one saved state the emulator says is enabled."""
SCHOOL = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


class PlatformApi:
    """The three reads, answered from the store the admin API writes."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def _answer(self, school: str) -> tuple[str, dict[str, bool]] | None:
        store = self.api.store(school)
        with store.transaction(write=False) as conn:
            if conn.execute("SELECT 1 FROM live WHERE env = ?", (school,)).fetchone() is None:
                return None
            return from_live(store.live(conn))

    async def _school(self, request: Request) -> tuple[str, dict[str, bool]] | Response:
        from starlette.concurrency import run_in_threadpool

        school = str(request.path_params["school"])
        found = await run_in_threadpool(self._answer, school) if SCHOOL.match(school) else None
        if found is None:
            return JSONResponse({"error": f"no school {school[:80]!r}"}, status_code=404)
        return found

    async def schedule(self, request: Request) -> Response:
        found = await self._school(request)
        if isinstance(found, Response):
            return found
        return JSONResponse({"integrationSchedule": {"syncType": found[0]}})

    async def saved_state(self, request: Request) -> Response:
        found = await self._school(request)
        if isinstance(found, Response):
            return found
        return JSONResponse({"enabledIntegrationSaveState": {"integrationSaveStateId": SAVED_STATE}})

    async def merge_settings(self, request: Request) -> Response:
        found = await self._school(request)
        if isinstance(found, Response):
            return found
        entity = str(request.query_params.get("entityType"))
        if request.query_params.get("integrationSaveStateId") != SAVED_STATE:
            return JSONResponse({"error": "no such integration saved state"}, status_code=404)
        if entity not in ENTITY_TYPES:
            return JSONResponse({"error": f"unknown entityType {str(entity)[:40]!r}"}, status_code=400)
        body: dict[str, Any] = {"entityType": entity, "stepsToExecute": {"syncSisData": found[1][entity]}}
        return Reply(200, body).response()


def routes(api: Api) -> list[Route]:
    platform = PlatformApi(api)
    return [
        Route("/api/v1/{school}/general/integrationSchedule", platform.schedule, methods=["GET"]),
        Route("/api/v1/{school}/general/enabledIntegrationSaveState", platform.saved_state, methods=["GET"]),
        Route("/api/v1/int/{school}/merge-settings", platform.merge_settings, methods=["GET"]),
        Route(f"{BASE}/console", api.console, methods=["PATCH"]),
    ]
