"""Test helpers shipped with reconciler for connector authors (needs pytest: `pip install reconciler[test]`).

`ConnectorConformance` (reconciler.testing.conformance) is the one suite every connector passes —
`embedded`, `http` and any plugin. See docs/connectors.md.
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("reconciler.testing.conformance")  # readable failures for connector authors

from reconciler.testing.conformance import ConnectorConformance, Factory, with_live  # noqa: E402

__all__ = ["ConnectorConformance", "Factory", "with_live"]
