"""EDGE: the emulator's side of the API contract — request bodies checked against schemas/admin-api.openapi.yaml,
live documents against schemas/live-state.schema.json (so the server cannot drift from the published schema)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from reconciler.errors import ConnectorError
from reconciler.resources import schema_dir

OPENAPI = "admin-api.openapi.yaml"
LIVE_STATE = "live-state.schema.json"
OPERATIONS_WITH_BODY = (
    ("/api/v1/environments/{env}/changes", "post"),
    ("/api/v1/environments/{env}/lease", "post"),
    ("/api/v1/environments/{env}/activity", "post"),
    ("/api/v1/environments/{env}/update-requests", "post"),
    ("/api/v1/environments/{env}/update-requests/{id}/status", "put"),
    ("/api/v1/environments/{env}/merges", "post"),
    ("/api/v1/environments/{env}/available-terms", "put"),
    ("/api/v1/environments/{env}/console", "patch"),
)


class BadBody(ValueError):
    """The request body does not match the contract (one line, naming where)."""


@cache
def openapi() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((schema_dir() / OPENAPI).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@cache
def _registry() -> Any:
    import json

    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    live = Resource.from_contents(json.loads((schema_dir() / LIVE_STATE).read_text(encoding="utf-8")),
                                  default_specification=DRAFT202012)
    spec = Resource.from_contents(openapi(), default_specification=DRAFT202012)
    return Registry().with_resources([
        (_uri(OPENAPI), spec), (_uri(LIVE_STATE), live), (str(live.id()), live),
    ])


def _uri(name: str) -> str:
    return (schema_dir() / name).resolve().as_uri()


def _format_checker() -> Any:
    from jsonschema import FormatChecker

    from reconciler.core.load import FORMATS

    checker = FormatChecker(formats=())
    for name, check in FORMATS.items():
        checker.checks(name)(_strings_only(check))
    return checker


def _strings_only(check: Callable[[str], bool]) -> Callable[[Any], bool]:
    return lambda value: not isinstance(value, str) or check(value)


@cache
def validator(pointer: str) -> Any:
    """A validator for the schema at `pointer` in the OpenAPI document (e.g. /components/schemas/Lease)."""
    from jsonschema import Draft202012Validator

    schema = {"$ref": f"{_uri(OPENAPI)}#{pointer}"}
    return Draft202012Validator(schema, registry=_registry(), format_checker=_format_checker())


def body_pointer(path: str, method: str) -> str:
    """Where the request body schema of an operation is, e.g. ("/api/v1/environments/{env}/lease", "post")."""
    escaped = path.replace("~", "~0").replace("/", "~1")
    return f"/paths/{escaped}/{method}/requestBody/content/application~1json/schema"


def warm_up() -> None:
    """Build every body validator now, so the first request is not the slow one (and a broken spec fails early)."""
    for path, method in OPERATIONS_WITH_BODY:
        check_body({}, body_pointer(path, method), quiet=True)


def check_body(body: Any, pointer: str, *, quiet: bool = False) -> None:
    """Raise BadBody naming the first problem of `body` against the schema at `pointer`."""
    errors = sorted(validator(pointer).iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
    if errors and not quiet:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "body"
        raise BadBody(f"{where}: {_one_line(errors[0].message)}")


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:197] + "..."


class LiveChecker:
    """Is a document a valid live state? A compiled validator answers; jsonschema explains a refusal."""

    def __init__(self) -> None:
        import json

        import fastjsonschema

        from reconciler.core.load import FORMATS

        self.schema = json.loads((schema_dir() / LIVE_STATE).read_text(encoding="utf-8"))
        formats = {name: _strings_only(check) for name, check in FORMATS.items()}
        self._fast = fastjsonschema.compile(self.schema, formats=formats, use_default=False)

    def __call__(self, doc: Mapping[str, Any]) -> None:
        """Raise ConnectorError (one line) when `doc` is not a valid live state."""
        import fastjsonschema

        try:
            self._fast(dict(doc))
            return
        except fastjsonschema.JsonSchemaException:
            pass
        from jsonschema import Draft202012Validator

        errors = list(Draft202012Validator(self.schema, format_checker=_format_checker()).iter_errors(dict(doc)))
        if errors:
            where = ".".join(str(p) for p in errors[0].absolute_path) or "live state"
            raise ConnectorError(f"{where}: {_one_line(errors[0].message)}")
