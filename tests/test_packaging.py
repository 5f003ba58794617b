"""The distribution as PyPI would receive it (DESIGN §7): `python -m build` makes an sdist and a wheel named
`sis-reconciler`, with the LICENSE, classifiers, project URLs, the `reconciler` command, the shipped
folders inside the wheel and `docs/` inside the sdist."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from reconciler import __version__

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(PROJECT)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def test_the_wheel_is_sis_reconciler_with_its_metadata(built: Path) -> None:
    wheel = built / f"sis_reconciler-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = Parser().parsestr(archive.read(f"sis_reconciler-{__version__}.dist-info/METADATA").decode())
        entry_points = archive.read(f"sis_reconciler-{__version__}.dist-info/entry_points.txt").decode()
    assert meta["Name"] == "sis-reconciler"
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert f"sis_reconciler-{__version__}.dist-info/licenses/LICENSE" in names
    assert "Programming Language :: Python :: 3.11" in meta.get_all("Classifier")
    assert any(url.startswith("Homepage, https://") for url in meta.get_all("Project-URL"))
    assert "reconciler = reconciler.cli:main" in entry_points
    assert "reconciler/_data/.github/workflows/reconcile.yml" in names
    assert "reconciler/_data/schemas/live-state.schema.json" in names


def test_the_sdist_carries_the_docs_and_the_license(built: Path) -> None:
    with tarfile.open(built / f"sis_reconciler-{__version__}.tar.gz") as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "LICENSE" in names
    assert {f"docs/{path.name}" for path in (PROJECT / "docs").glob("*.md")} <= names
    assert "docs/connectors.md" in names


def test_the_classifiers_name_the_pythons_ci_runs() -> None:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    ci = (PROJECT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    oldest = project["requires-python"].removeprefix(">=")
    assert oldest == "3.11"
    for version in (oldest, "3.13"):
        assert f"Programming Language :: Python :: {version}" in project["classifiers"]
        assert f'"{version}"' in ci, f"ci.yml does not run Python {version}"
