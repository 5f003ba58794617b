"""`reconciler promote SRC DST`: DST gets SRC's term scopes and phases, in its own files, comments kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.model import Kind
from reconciler.repo import load_repository


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "environments").rglob("*.yaml"))}


def test_promote_sandbox_to_staging(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    settings = repo / "environments/staging/merge-settings.yaml"
    old = settings.read_text()
    result = cli("--root", str(repo), "promote", "sandbox", "staging")
    assert result.code == 0, result.err
    assert "environments/staging/phases.yaml: phases + summer-open-scheduling (term 202730)" in result.out
    assert settings.read_text() == old + (
        '  sections:\n    terms: ["202710", "202720", "202730"]\n'
        '  relationships:\n    terms: ["202710", "202720", "202730"]\n'
    )
    repository = load_repository(repo)
    staging, sandbox = repository.envs["staging"], repository.envs["sandbox"]
    for mtype in ("courses", "sections", "relationships"):
        assert (staging.data(Kind.MERGE_SETTINGS)["merges"][mtype]["terms"]
                == sandbox.data(Kind.MERGE_SETTINGS)["merges"][mtype]["terms"])
    # only the scopes travel: sandbox's allow_empty stays sandbox's
    assert staging.data(Kind.MERGE_SETTINGS)["merges"]["sections"]["allow_empty"] is False
    assert staging.data(Kind.PHASES) == {**sandbox.data(Kind.PHASES)}
    assert cli("--root", str(repo), "validate").code == 0
    again = cli("--root", str(repo), "promote", "sandbox", "staging")
    assert again.code == 0 and "nothing written" in again.out


def test_promote_makes_the_destination_file_when_it_has_none(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    (repo / "environments/production/phases.yaml").unlink()
    result = cli("--root", str(repo), "promote", "staging", "production")
    assert result.code == 0, result.err
    text = (repo / "environments/production/phases.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/phases.schema.json\n"
                           "apiVersion: reconciler/v1\nkind: Phases\nphases:\n")
    assert load_repository(repo).envs["production"].data(Kind.PHASES) == \
        load_repository(repo).envs["staging"].data(Kind.PHASES)
    assert cli("--root", str(repo), "validate").code == 0


def test_promote_replaces_a_changed_phase_and_drops_one_src_lacks(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    staging = repo / "environments/staging/phases.yaml"
    staging.write_text(staging.read_text().replace("start: 2026-11-13\n    end: 2027-01-11",
                                                   "start: 2026-11-13\n    end: 2027-01-04"))
    production = repo / "environments/production/phases.yaml"
    old = production.read_text()
    result = cli("--root", str(repo), "promote", "staging", "production")
    assert result.code == 0, result.err
    assert production.read_text() == old.replace("end: 2027-01-11", "end: 2027-01-04")
    assert cli("--root", str(repo), "validate").code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["staging", "staging"], "SRC and DST are the same", id="same"),
        pytest.param(["sandbox", "nowhere"], "no environment 'nowhere'", id="unknown-dst"),
        pytest.param(["nowhere", "staging"], "no environment 'nowhere'", id="unknown-src"),
    ],
)
def test_promote_refusals(cli, repo: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(repo)
    result = cli("--root", str(repo), "promote", *args)
    assert result.code == 1
    assert message in result.err
    assert snapshot(repo) == before


def test_promote_past_a_stage_is_refused_with_nothing_written(cli, repo: Path) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(repo)
    result = cli("--root", str(repo), "promote", "sandbox", "production")  # production promotes from staging
    assert result.code == 1
    assert "error[promotion]" in result.err and "nothing written" in result.err
    assert snapshot(repo) == before
