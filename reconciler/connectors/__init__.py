"""Connectors: the registry. `embedded`, `http` and `coursedog` are built in; others come from the entry-point group
`reconciler.connectors` (each entry point is a factory `(spec, root) -> Connector`; see docs/connectors.md)."""

from __future__ import annotations

from pathlib import Path

from reconciler.connectors.base import Connector
from reconciler.errors import ConnectorError
from reconciler.model import EnvironmentSpec

GROUP = "reconciler.connectors"
BUILT_IN = ("embedded", "http", "coursedog")

__all__ = ["GROUP", "Connector", "can_write", "connector_name", "get_connector"]


def connector_name(spec: EnvironmentSpec) -> str:
    live = spec.config.get("live") or {}
    return str(live.get("connector") or "embedded")


def can_write(spec: EnvironmentSpec) -> bool:
    """Whether the environment's connector declares it writes (`capabilities` has "write"), read from its
    class without making one (no token is needed): False means `apply --guided`, a person at the console.
    A plugin whose factory does not declare `capabilities` is taken to write (apply then says otherwise)."""
    name = connector_name(spec)
    if name in ("embedded", "http"):
        return True
    if name == "coursedog":
        from reconciler.connectors.coursedog import CoursedogConnector

        return "write" in CoursedogConnector.capabilities
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    try:
        factory = found[0].load() if found else None
    except Exception:  # a broken plugin: apply and plan say so, in their words
        return True
    return "write" in getattr(factory, "capabilities", ("write",))


def get_connector(spec: EnvironmentSpec, root: Path, *, writing: bool = True) -> Connector:
    """The connector the environment's `live.connector` names. `writing=False` makes one for reading only
    (plan, drift, status, report): http then uses `live.read_token_env`'s token where given, never asks
    for the write token, and refuses to write. The embedded store has no token; a plugin's factory is
    called as `(spec, root)` whatever the purpose."""
    name = connector_name(spec)
    if name == "embedded":
        from reconciler.connectors.embedded import EmbeddedConnector

        return EmbeddedConnector(spec, root)
    if name == "http":
        from reconciler.connectors.http import HttpConnector

        return HttpConnector(spec, root, writing=writing)
    if name == "coursedog":
        from reconciler.connectors.coursedog import CoursedogConnector

        return CoursedogConnector(spec, root)
    from importlib.metadata import entry_points  # only for a plugin: it reads every installed package

    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        have = ", ".join(sorted({*BUILT_IN, *(ep.name for ep in entry_points(group=GROUP))}))
        raise ConnectorError(f"{spec.name}: unknown connector {name!r} (have: {have})")
    try:
        factory = found[0].load()
    except Exception as e:  # a broken plugin is the user's problem to fix: one line
        raise ConnectorError(f"{spec.name}: connector {name!r} could not be loaded: {e}") from e
    return factory(spec, root)  # type: ignore[no-any-return]
