"""The http connector under faults, through the CLI against a real `reconciler emulator` on 127.0.0.1:
a fleet applied while the server fails and drops connections converges with every apply recorded once,
and the token never shows in any output, log, plan file or exception."""

from __future__ import annotations

import json
import logging
import re
import shutil
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_fixture import TOKEN_ENV, Emulator, free_port, start_emulator  # noqa: F401

from reconciler.connectors import get_connector
from reconciler.connectors.http import HttpConnector
from reconciler.repo import load_repository
from reconciler.resources import example_dirs

FLEET = 50
CANARY = "canary-5b0c9e2f-TOKEN-do-not-print"


def write_fleet(root: Path, count: int, url: str, token_env: str) -> list[str]:
    """`count` small environments (the example sandbox's settings) on the http connector."""
    example = example_dirs()["environments"]
    shutil.copytree(example / "_base", root / "environments" / "_base")
    live = f"live:\n  connector: http\n  url: {url}\n  token_env: {token_env}\n"
    names = []
    for i in range(count):
        name = f"college-{i:03d}"
        folder = root / "environments" / name
        folder.mkdir(parents=True)
        text = (example / "sandbox" / "environment.yaml").read_text(encoding="utf-8")
        text = text.replace("name: sandbox", f"name: {name}").replace("live:\n  connector: embedded\n", live)
        assert f"url: {url}" in text
        (folder / "environment.yaml").write_text(text, encoding="utf-8")
        for kind in ("merge-settings.yaml", "access.yaml"):
            shutil.copy(example / "sandbox" / kind, folder / kind)
        names.append(name)
    return names


def to_http(repo: Path, url: str, token_env: str) -> None:
    """Point every example environment at `url` (its whole `live:` block replaced)."""
    live = f"live:\n  connector: http\n  url: {url}\n  token_env: {token_env}\n"
    for path in (repo / "environments").glob("*/environment.yaml"):
        text, count = re.subn(r"^live:\n(?:[ \t]+.*\n)*", live, path.read_text(encoding="utf-8"), flags=re.M)
        assert count == 1, path
        path.write_text(text, encoding="utf-8")


def activity(server: Emulator, env: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/environments/{env}/activity", params={"limit": 1000},
                         headers=server.headers, timeout=10)
    assert response.status_code == 200, response.text
    return [row["entry"] for row in response.json()["entries"]]


def clean_stop(result: Any) -> None:
    """Exit 0, or exit 1 with a one-line reason: never a traceback or an unexpected error."""
    assert result.code in (0, 1), (result.code, result.err)
    assert "Traceback" not in result.err + result.out
    assert "unexpected error" not in result.err
    if result.code == 1:
        assert result.err.rstrip().splitlines()[-1].startswith("error: ")


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    monkeypatch.setenv("RECONCILER_HTTP_BACKOFF", "0.005")
    monkeypatch.setenv("RECONCILER_HTTP_BACKOFF_MAX", "0.05")
    monkeypatch.setenv("RECONCILER_HTTP_RETRY_AFTER_MAX", "0.1")
    monkeypatch.setenv("RECONCILER_HTTP_TIMEOUT", "5")

    def attempts(n: int) -> None:
        monkeypatch.setenv("RECONCILER_HTTP_ATTEMPTS", str(n))

    return attempts


def test_a_fleet_applied_under_faults_converges_and_records_each_apply_once(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, start_emulator, fast_retries, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    faulty: Emulator = start_emulator(error_rate=0.3, drop_rate=0.1, seed=7)
    monkeypatch.setenv(TOKEN_ENV, faulty.token)
    root = tmp_path / "fleet"
    names = write_fleet(root, FLEET, faulty.url, TOKEN_ENV)

    fast_retries(3)  # few attempts: a run may well stop, and must stop cleanly
    codes = []
    for _ in range(2):
        result = cli("--root", str(root), "apply", "--yes")
        clean_stop(result)
        codes.append(result.code)
    fast_retries(8)  # the same faults, retried harder: converges within a few runs
    for _ in range(6):
        result = cli("--root", str(root), "apply", "--yes")
        clean_stop(result)
        codes.append(result.code)
        if result.code == 0:
            break
    assert codes[-1] == 0, codes
    for _ in range(4):
        planned = cli("--root", str(root), "plan", "--detailed-exitcode")
        clean_stop(planned)
        if planned.code != 1:
            break
    assert planned.code == 0, planned.out + planned.err

    faulty.stop()
    calm: Emulator = start_emulator(db=faulty.db, token=faulty.token)
    for name in names:
        text = root / "environments" / name / "environment.yaml"
        text.write_text(text.read_text(encoding="utf-8").replace(faulty.url, calm.url), encoding="utf-8")
    fast_retries(1)  # no faults now: a single attempt must do
    final = cli("--root", str(root), "plan", "--detailed-exitcode")
    assert final.code == 0, final.out + final.err
    for name in names:
        entries = activity(calm, name)
        applied = [e for e in entries if e.get("kind") == "apply" and e.get("outcome") == "applied"]
        assert len(applied) == 1, (name, entries)
        assert applied[0]["changes"] > 0
        as_text = [json.dumps(e, sort_keys=True) for e in entries]
        assert len(set(as_text)) == len(as_text), f"{name}: an activity entry was recorded twice"


# --- the token never shows ----------------------------------------------------------------------------


@contextmanager
def stale_under_apply(server: Emulator) -> Iterator[None]:
    """A person edits the console between the last read and the apply's write (412 on the write)."""
    original = HttpConnector.apply_changes

    def edit_then_apply(self: HttpConnector, changes: Any, *, record: dict[str, Any]) -> None:
        httpx.patch(f"{server.url}/environments/{self.env}/console", headers=server.headers, timeout=10,
                    json={"set": {"schedule.realtime": False, "schedule.nightly": False}}).raise_for_status()
        original(self, changes, record=record)

    HttpConnector.apply_changes = edit_then_apply  # type: ignore[method-assign]
    try:
        yield
    finally:
        HttpConnector.apply_changes = original  # type: ignore[method-assign]


def exception_texts(error: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(error))]
    seen: BaseException | None = error
    while seen is not None:
        texts += [str(seen), repr(seen), repr(getattr(seen, "args", ()))]
        seen = seen.__cause__ or seen.__context__
    return texts


def test_the_token_never_appears(  # type: ignore[no-untyped-def]
    cli, repo: Path, tmp_path: Path, start_emulator, fast_retries,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fast_retries(2)
    var = "RECONCILER_TOKEN_CANARY"
    monkeypatch.setenv(var, CANARY)
    good: Emulator = start_emulator(token=CANARY)
    other: Emulator = start_emulator(token="not-the-canary-token")
    failing: Emulator = start_emulator(token=CANARY, error_rate=1.0, seed=1)
    outputs: list[str] = []
    errors: list[BaseException] = []
    plan_file = tmp_path / "plan.json"

    def scenario(url: str) -> list[Any]:
        to_http(repo, url, var)
        results = [cli("--root", str(repo), "plan", "--format", "json", "--out", str(plan_file)),
                   cli("--root", str(repo), "plan", "staging", "--detailed-exitcode"),
                   cli("--root", str(repo), "apply", "staging", "--yes", "--message", "canary run")]
        spec = load_repository(repo).envs["staging"]
        try:
            get_connector(spec, repo).read()
        except Exception as e:
            errors.append(e)
        outputs.extend(r.out + r.err for r in results)
        return results

    shutil.copytree(repo / "environments", tmp_path / "pristine")

    def reset() -> None:
        shutil.rmtree(repo / "environments")
        shutil.copytree(tmp_path / "pristine", repo / "environments")

    planned, _, applied = scenario(good.url)  # works: the token is sent, never shown
    assert planned.code == 0 and applied.code == 0, planned.err + applied.err
    outputs.append(plan_file.read_text(encoding="utf-8"))
    reset()
    to_http(repo, good.url, var)
    with stale_under_apply(good):  # a failing apply: the live side moved under it (412)
        stale = cli("--root", str(repo), "apply", "production", "--yes", "--message", "stale")
    assert stale.code == 1
    assert "production: the live side changed since it was read (412); nothing was applied; plan again" in stale.err
    outputs.append(stale.out + stale.err)
    reset()
    for url in (f"http://127.0.0.1:{free_port()}/api/v1", other.url, failing.url):  # unreachable, 401, 500
        for result in scenario(url):
            assert result.code == 1
            clean_stop(result)
        reset()
    assert any("refused the token in $RECONCILER_TOKEN_CANARY" in o for o in outputs)
    assert any("is unreachable" in o for o in outputs)
    assert any("still failed after 2 attempts: 5" in o for o in outputs)
    assert len(errors) == 3
    for text in [*outputs, caplog.text, *(t for e in errors for t in exception_texts(e))]:
        assert CANARY not in text
    for env in ("staging", "production"):
        assert CANARY not in json.dumps(activity(good, env))
