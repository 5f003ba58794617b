"""EDGE: the coursedog connector — the scheduling platform's own read API, for a college with a read-only API
user and no write API (DESIGN §5 `coursedog`).

Flow: `connectors.get_connector` → **CoursedogConnector.read** → three reads (the integration schedule, the
enabled saved state, each merge type's settings in that saved state) → `core.platform_map.to_live`, the one
table from the platform's values to our live paths. It declares no capability: it cannot write, lease or
keep an activity log, so `apply` to it needs `--guided`. Requests, retries, redaction, the https rule and
RECONCILER_ALLOWED_HOSTS are the http connector's, inherited rather than written again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.connectors.http import HttpConnector, RetryPolicy
from reconciler.core.platform_map import ENTITY_TYPES, to_live
from reconciler.errors import ConnectorError
from reconciler.model import EnvironmentSpec

if TYPE_CHECKING:
    import httpx

SCHOOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
"""A school id as it goes into the platform's paths (schemas/environment.schema.json says the same)."""


class CoursedogConnector(HttpConnector):
    """One environment's merge settings as the platform's read API shows them."""

    name = "coursedog"
    capabilities: frozenset[str] = frozenset()
    example_url = "https://app.coursedog.com"

    def __init__(self, spec: EnvironmentSpec, root: Path | None = None, *, client: httpx.Client | None = None,
                 policy: RetryPolicy | None = None, writing: bool = False) -> None:
        live = spec.config.get("live") or {}
        school = live.get("school")
        if not isinstance(school, str) or not SCHOOL.match(school):
            raise ConnectorError(f"{spec.name}: live.school is required for the coursedog connector: the "
                                 "platform's school id (letters, digits, _ and -), e.g. esu_banner")
        self.school = school
        super().__init__(spec, root, client=client, policy=policy, writing=False)  # it only ever reads

    def __repr__(self) -> str:
        return f"CoursedogConnector(env={self.env!r}, url={self.base!r}, school={self.school!r})"

    def _url(self, tail: str = "") -> str:
        return f"{self.base}{tail}"

    def read(self) -> dict[str, Any]:
        sync = self._field(f"/api/v1/{self.school}/general/integrationSchedule",
                           "integrationSchedule", "syncType")
        saved = self._field(f"/api/v1/{self.school}/general/enabledIntegrationSaveState",
                            "enabledIntegrationSaveState", "integrationSaveStateId", missing="no integration enabled")
        sends = {entity: self._send_updates(entity, str(saved)) for entity in ENTITY_TYPES}
        try:
            return to_live(sync, sends)
        except ConnectorError as e:
            raise ConnectorError(f"{self.env}: school {self.school}: {self._redact(str(e))}") from None

    def _send_updates(self, entity: str, saved: str) -> Any:
        doc = self._get(f"/api/v1/int/{self.school}/merge-settings", "merge settings",
                        params={"entityType": entity, "integrationSaveStateId": saved})
        steps = doc.get("stepsToExecute")
        return steps.get("syncSisData") if isinstance(steps, dict) else None

    def _field(self, tail: str, outer: str, inner: str, *, missing: str | None = None) -> Any:
        doc = self._get(tail, outer, missing=missing)
        block = doc.get(outer)
        return block.get(inner) if isinstance(block, dict) else None

    def _get(self, tail: str, what: str, *, params: dict[str, Any] | None = None,
             missing: str | None = None) -> dict[str, Any]:
        response = self._request("GET", tail, kind=what, params=params, expect=(200, 404))
        if response.status_code == 404:
            why = missing or "no such school"
            raise ConnectorError(f"{self.env}: GET {self.base}{tail} answered 404 ({why}); check live.school "
                                 f"{self.school} and live.url {self.base}")
        doc = self._json(response, what)
        if not isinstance(doc, dict):
            raise ConnectorError(f"{self.env}: the platform answered {what} that is not a JSON object")
        return doc
