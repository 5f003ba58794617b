"""The one connector conformance suite (reconciler.testing), run against every built-in connector:
`embedded` on a real SQLite store and `http` against a real `reconciler emulator` on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator_fixture import TOKEN_ENV, Emulator, launch

from reconciler.connectors import get_connector
from reconciler.connectors.embedded import EmbeddedConnector
from reconciler.connectors.http import HttpConnector
from reconciler.model import EnvironmentSpec
from reconciler.testing import ConnectorConformance, Factory, with_live


class TestEmbedded(ConnectorConformance):
    @pytest.fixture
    def make_connector(self, example_root: Path) -> Factory:
        def make(spec: EnvironmentSpec) -> EmbeddedConnector:
            made = get_connector(spec, example_root)
            assert isinstance(made, EmbeddedConnector)
            return made

        return make


@pytest.fixture(scope="module")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One emulator for the whole class: every test uses its own environment names."""
    server = launch(tmp_path_factory.mktemp("emulator"))
    yield server
    server.stop()


class TestHttp(ConnectorConformance):
    @pytest.fixture
    def make_connector(self, example_root: Path, shared_emulator: Emulator,
                       monkeypatch: pytest.MonkeyPatch) -> Factory:
        monkeypatch.setenv(TOKEN_ENV, shared_emulator.token)
        monkeypatch.setenv("RECONCILER_HTTP_BACKOFF", "0.01")

        def make(spec: EnvironmentSpec) -> HttpConnector:
            made = get_connector(with_live(spec, connector="http", url=shared_emulator.url, token_env=TOKEN_ENV),
                                 example_root)
            assert isinstance(made, HttpConnector)
            return made

        return make


def test_the_plugin_example_in_the_docs_passes_the_suite(tmp_path: Path) -> None:
    """docs/connectors.md's `jsonfile` plugin, written out as its files say and 'installed' through a
    dist-info folder carrying its entry point, passes the suite directly and through the registry."""
    import os
    import re
    import subprocess
    import sys
    import tomllib

    project = Path(__file__).resolve().parents[1]
    text = (project / "docs" / "connectors.md").read_text(encoding="utf-8")
    files = re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", text, flags=re.S)
    assert [name for name, _ in files] == ["pyproject.toml", "reconciler_jsonfile/__init__.py",
                                           "tests/test_conformance.py"]
    for name, body in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body, encoding="utf-8")
    meta = tomllib.loads((tmp_path / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dist = tmp_path / f"reconciler_jsonfile-{meta['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    points = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
                     for group, eps in meta["entry-points"].items())
    (dist / "entry_points.txt").write_text(points, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(project)]),
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # the suite needs no plugin; loading them all costs seconds
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error",
                           "tests/test_conformance.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b32 passed\b", done.stdout), done.stdout[-500:]
