"""The emulator against its published contract: schemathesis generates requests from
schemas/admin-api.openapi.yaml, a real emulator on 127.0.0.1 answers, and every answer must be documented
(status, content type, headers, body schema) and never a 5xx. Fault injection is off here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from emulator_fixture import PROJECT, Emulator, launch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SPEC = PROJECT / "schemas" / "admin-api.openapi.yaml"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]

# the live-state schema's own format (a local date and time); valid values, so writes can succeed too
schemathesis.openapi.format("local-datetime", st.from_regex(
    r"\A20[2-3][0-9]-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]\Z"))
schema = schemathesis.openapi.from_path(SPEC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    running = launch(tmp_path_factory.mktemp("schemathesis"))
    yield running
    assert running.stop() == 0


@schema.parametrize()
@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_contract(case: Any, server: Emulator) -> None:
    case.call_and_validate(base_url=server.base, headers=server.headers, checks=CHECKS)


def test_every_operation_is_tested() -> None:
    """The contract has every endpoint of /work/briefs/api.md (so the test above covers them all)."""
    operations = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    base = "/api/v1/environments/{env}"
    assert operations == {
        ("GET", "/healthz"), ("GET", base), ("POST", f"{base}/changes"), ("POST", f"{base}/lease"),
        ("DELETE", f"{base}/lease"), ("GET", f"{base}/activity"), ("POST", f"{base}/activity"),
        ("GET", f"{base}/update-requests"), ("POST", f"{base}/update-requests"),
        ("DELETE", f"{base}/update-requests/{{id}}"), ("PUT", f"{base}/update-requests/{{id}}/status"),
        ("POST", f"{base}/merges"), ("PUT", f"{base}/available-terms"), ("PATCH", f"{base}/console"),
    }


def test_the_contract_is_valid_openapi_3_1() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    readers = pytest.importorskip("openapi_spec_validator.readers")
    spec, url = readers.read_from_filename(str(SPEC))
    assert spec["openapi"] == "3.1.0"
    validator.validate(spec, base_uri=url)  # resolves the $refs into live-state.schema.json too
