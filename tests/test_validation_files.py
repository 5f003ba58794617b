"""`reconciler validate` against hostile files and pasted secrets (issue 13, items 3 and 4).

Every case plants one hostile file or one secret into a copy of the example repository, beside an
independent problem in another environment (`COMPANION`), and checks: exit 1, the rule at FILE:LINE:COL,
that the companion is still reported (the run went on), that no raw secret value and no raw control
character reaches stdout or stderr, and that each problem is one line.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.core.yamlstrict import MAX_BYTES

HEADER = "apiVersion: reconciler/v1\n"
COMPANION = "environments/staging/access.yaml:3:8: error[schema]: users: 'nope' is not of type 'array'"
_RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"
                          r"\ud800-\udfff]")
_ONE_LINE = re.compile(r"[^\s:]+:\d+:\d+: (error|warning)\[[a-z-]+\]: \S")

Plant = Callable[[Path], None]


def env_path(repo: Path, rel: str) -> Path:
    return repo / "environments" / rel


def fresh(repo: Path, rel: str) -> Path:
    """The path of `rel`, whatever stood there removed (the example may hold that file)."""
    path = env_path(repo, rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.is_file():
        path.unlink()
    return path


def put(rel: str, data: str | bytes) -> Plant:
    def plant(repo: Path) -> None:
        path = env_path(repo, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return plant


def link(rel: str, target: str) -> Plant:
    return lambda repo: os.symlink(target, fresh(repo, rel))


def both(*plants: Plant) -> Plant:
    def plant(repo: Path) -> None:
        for each in plants:
            each(repo)
    return plant


def fifo(rel: str) -> Plant:
    return lambda repo: os.mkfifo(fresh(repo, rel))


def folder(rel: str) -> Plant:
    return lambda repo: fresh(repo, rel).mkdir()


def sparse(rel: str, size: int) -> Plant:
    def plant(repo: Path) -> None:
        with open(fresh(repo, rel), "wb") as handle:
            handle.truncate(size)
    return plant


def raw_name(rel: bytes, data: bytes = b"") -> Plant:
    """A file whose name is bytes (control characters, or not UTF-8 at all)."""
    def plant(repo: Path) -> None:
        path = os.fsencode(repo / "environments") + b"/" + rel
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, data)
        os.close(fd)
    return plant


def unix_socket(rel: str) -> Plant:
    def plant(repo: Path) -> None:
        path = fresh(repo, rel)
        here = Path.cwd()
        os.chdir(path.parent)  # a socket's path is limited to ~100 bytes: bind it by its short name
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path.name)
            sock.close()
        finally:
            os.chdir(here)
    return plant


def char_device(rel: str) -> Plant:
    def plant(repo: Path) -> None:
        try:
            os.mknod(fresh(repo, rel), stat.S_IFCHR | 0o600, os.makedev(1, 5))  # what /dev/zero is
        except PermissionError:
            pytest.skip("creating a device node needs privileges")
    return plant


def hardlink(rel: str, source: str) -> Plant:
    def plant(repo: Path) -> None:
        os.link(env_path(repo, source), fresh(repo, rel))
    return plant


def outside_link(rel: str) -> Plant:
    """The kind file links to a copy of itself outside the root."""
    def plant(repo: Path) -> None:
        path = env_path(repo, rel)
        outside = repo.parent / "outside.yaml"
        outside.write_bytes(path.read_bytes())
        path.unlink()
        os.symlink(outside, path)
    return plant


PHASES = HEADER + "kind: Phases\nphases: []\n"
EXAMPLE_PHASES = (Path(__file__).resolve().parents[1] / "environments" / "sandbox" / "phases.yaml").read_text()
"""The example's own sandbox phases (staging promotes from sandbox: an empty list would be a problem there)."""
ENV = HEADER + ("kind: Environment\nname: sandbox\ninstitution: X\nsis: banner\nmiddleware: n2n\n"
                "timezone: America/Chicago\n")


def live(url: str = "https://admin.example.edu/api/v1", token: str = "SANDBOX_TOKEN",
         key: str = "token_env") -> str:
    """The sandbox on the http connector: the url's value at 10:8, the token variable's at 11:{len(key)+4}."""
    return ENV + f"live:\n  connector: http\n  url: {url}\n  {key}: {token}\n"


def window(reason: str) -> str:
    """One window whose reason (line 5, column 13) is `reason`."""
    return HEADER + (f"kind: MaintenanceWindows\nwindows:\n  - id: w1\n    reason: {reason}\n"
                     "    start: 2027-01-05T20:00\n    end: 2027-01-05T21:00\n")


def roles(role: str, permission: str, value: str = "allow") -> str:
    """One role (its name at 4:3) with one permission (its name at 5:5)."""
    return HEADER + f"kind: Access\nroles:\n  {role}:\n    {permission}: {value}\n"


def padded(size: int) -> bytes:
    """The example's phases.yaml made exactly `size` bytes long by a comment line as long as needed."""
    body = EXAMPLE_PHASES.encode()
    return body + b"#" + b"x" * (size - len(body) - 2) + b"\n"


GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
HEX40 = "3f2a9c0d1e4b5a6f7e8d9c0b1a2f3e4d5c6b7a89"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
SK = "sk-proj-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe"
AWS = "AKIAIOSFODNN7EXAMPLE"
SLACK = "xoxb-2468013579-1357924680-AbCdEfGhIjKlMnOpQrStUvWx"
KEY_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0"
PRIVATE_KEY = f"|\n      -----BEGIN RSA PRIVATE KEY-----\n      {KEY_BODY}\n      -----END RSA PRIVATE KEY-----"


FILE_CASES = [
    # the issue's own: a FIFO hung validate, links ended the run, the size was checked after reading
    pytest.param(fifo("sandbox/phases.yaml"), "sandbox/phases.yaml:1:1: error[yaml]",
                 "not a regular file: it is a FIFO (named pipe)", True, id="fifo"),
    pytest.param(link("sandbox/terms.yaml", "no-such-file.yaml"), "sandbox/terms.yaml:1:1: error[yaml]",
                 "not a regular file: it is a symlink to nothing (dangling)", False, id="dangling-link"),
    pytest.param(link("sandbox/terms.yaml", "terms.yaml"), "sandbox/terms.yaml:1:1: error[yaml]",
                 "not a regular file: it is a symlink loop", False, id="self-loop"),
    pytest.param(both(link("sandbox/a.lnk", "terms.yaml"), link("sandbox/terms.yaml", "a.lnk")),
                 "sandbox/terms.yaml:1:1: error[yaml]", "it is a symlink loop", False, id="two-link-loop"),
    pytest.param(put("sandbox/phases.yaml", padded(MAX_BYTES + 1)), "sandbox/phases.yaml:1:1: error[yaml]",
                 "file is 1,048,577 bytes; the limit is 1 MiB", False, id="one-mebibyte-and-one-byte"),
    # ours
    pytest.param(both(fifo("fifo"), link("sandbox/phases.yaml", "../fifo")),
                 "sandbox/phases.yaml:1:1: error[yaml]", "it is a FIFO (named pipe)", True, id="link-to-fifo"),
    pytest.param(fifo("_base/terms.yaml"), "_base/terms.yaml:1:1: error[yaml]", "it is a FIFO", True,
                 id="fifo-in-base"),
    pytest.param(fifo("sandbox/environment.yaml"), "sandbox/environment.yaml:1:1: error[yaml]", "it is a FIFO",
                 True, id="fifo-environment-yaml"),
    pytest.param(sparse("sandbox/phases.yaml", 10 << 30), "sandbox/phases.yaml:1:1: error[yaml]",
                 "file is 10,737,418,240 bytes; the limit is 1 MiB", True, id="sparse-ten-gibibytes"),
    pytest.param(link("sandbox/phases.yaml", "/dev/zero"), "sandbox/phases.yaml:1:1: error[yaml]",
                 "the file links outside the root", True, id="link-to-dev-zero"),
    pytest.param(char_device("sandbox/phases.yaml"), "sandbox/phases.yaml:1:1: error[yaml]",
                 "not a regular file: it is a character device", True, id="character-device"),
    pytest.param(unix_socket("sandbox/phases.yaml"), "sandbox/phases.yaml:1:1: error[yaml]",
                 "not a regular file: it is a socket", True, id="unix-socket"),
    pytest.param(folder("sandbox/phases.yaml"), "sandbox/phases.yaml:1:1: error[yaml]",
                 "not a regular file: it is a folder", False, id="folder-named-phases-yaml"),
    pytest.param(folder("sandbox/environment.yaml"),
                 "sandbox/environment.yaml:1:1: error[yaml]", "it is a folder", False,
                 id="folder-named-environment-yaml"),
    pytest.param(link("sandbox/phases.yaml", "../production"), "sandbox/phases.yaml:1:1: error[yaml]",
                 "it is a folder", False, id="link-to-a-folder"),
    pytest.param(outside_link("sandbox/access.yaml"), "sandbox/access.yaml:1:1: error[yaml]",
                 "the file links outside the root", False, id="link-outside-the-root"),
    pytest.param(put("sandbox/phases.yaml", ""), "sandbox/phases.yaml:1:1: error[yaml]", "empty document", False,
                 id="empty-file"),
    pytest.param(put("sandbox/phases.yaml", HEADER + "kind: Phases\x00\nphases: []\n"),
                 "sandbox/phases.yaml:2:1: error[yaml]", "it contains a NUL byte", False, id="nul-byte"),
    pytest.param(put("sandbox/phase.yaml", PHASES), "sandbox/phase.yaml:1:1: error[schema]",
                 "unknown file 'phase.yaml'", False, id="misspelt-kind-file-still-refused"),
    pytest.param(raw_name(b"sandbox/phases\x1b[2J.yaml", PHASES.encode()),
                 "sandbox/phases\\x1b[2J.yaml:1:1: error[yaml]",
                 "the file name has control characters (shown escaped); rename the file", False,
                 id="escape-sequence-in-name"),
    pytest.param(raw_name(b"sandbox/phases\n.yaml"), "sandbox/phases\\n.yaml:1:1: error[yaml]",
                 "control characters", False, id="newline-in-name"),
    pytest.param(raw_name(b"sandbox/notes\r\x07.txt"), "sandbox/notes\\r\\x07.txt:1:1: error[yaml]",
                 "control characters", False, id="control-characters-in-any-name"),
    pytest.param(raw_name(b"sandbox/phases\xff.yaml"), "sandbox/phases\\xff.yaml:1:1: error[yaml]",
                 "control characters", False, id="name-not-utf8"),
    pytest.param(raw_name("sandbox/phases\u202egpj.yaml".encode()), "sandbox/phases\\u202egpj.yaml:1:1: error[yaml]",
                 "control characters", False, id="bidi-override-in-name"),
    pytest.param(lambda r: os.mkdir(os.fsencode(r / "environments") + b"/sand\x1bbox"),
                 "sand\\x1bbox:1:1: error[name-mismatch]", "environment folder 'sand\\x1bbox'", False,
                 id="control-characters-in-folder-name"),
]


@pytest.mark.parametrize(("plant", "where", "words", "isolate"), FILE_CASES)
def test_a_hostile_file_is_one_yaml_problem_and_the_run_goes_on(repo: Path, cli, plant: Plant, where: str,
                                                                 words: str, isolate: bool) -> None:
    plant_companion(repo)
    plant(repo)
    out, err, code = run_validate(repo, cli, isolate)
    assert code == 1, out + err
    hits = [line for line in out.splitlines() if line.startswith(f"environments/{where}")]
    assert hits and words in hits[0], out
    assert COMPANION in out.splitlines(), out
    assert_safe_output(out, err)


def test_a_file_that_is_not_readable_is_one_problem(repo: Path, cli) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    plant_companion(repo)
    env_path(repo, "sandbox/phases.yaml").chmod(0)
    out, err, code = run_validate(repo, cli, False)
    assert code == 1
    assert "environments/sandbox/phases.yaml:1:1: error[yaml]: the file cannot be read: permission denied" in out
    assert COMPANION in out.splitlines()
    assert_safe_output(out, err)


def test_environments_linked_outside_the_root_is_refused_like_its_folders(repo: Path, cli) -> None:
    outside = repo.parent / "elsewhere"
    (repo / "environments").rename(outside)
    (repo / "environments").symlink_to(outside)
    out, err, code = run_validate(repo, cli, False)
    assert code == 1
    for name in ("production", "staging", "sandbox", "_base"):
        assert any(line.startswith(f"environments/{name}/") and line.endswith(": error[yaml]: the file links outside "
                                                                              "the root") for line in out.splitlines())
    assert "is required" not in out
    assert_safe_output(out, err)


def test_environments_linked_inside_the_root_is_fine(repo: Path, cli) -> None:
    (repo / "config").mkdir()
    (repo / "environments").rename(repo / "config" / "environments")
    (repo / "environments").symlink_to(Path("config") / "environments")
    result = cli("--root", str(repo), "validate")
    assert result.code == 0, result.out


def test_no_read_asks_for_more_than_the_limit(repo: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """The size comes from fstat before anything is read; a read never asks for more than 1 MiB."""
    import reconciler.repo

    asked: list[int] = []
    real = os.read

    def counting(fd: int, n: int) -> bytes:
        asked.append(n)
        return real(fd, n)

    monkeypatch.setattr(reconciler.repo.os, "read", counting)
    put("sandbox/phases.yaml", padded(MAX_BYTES))(repo)
    put("staging/phases.yaml", padded(MAX_BYTES + 1))(repo)
    sparse("production/phases.yaml", 1 << 40)(repo)
    result = cli("--root", str(repo), "validate")
    assert asked and max(asked) <= MAX_BYTES
    assert not any(line.startswith("environments/sandbox/phases.yaml") for line in result.lines)
    assert any(line.startswith("environments/production/phases.yaml:1:1: error[yaml]: file is 1,099,511,627,776 "
                               "bytes") for line in result.lines)


ACCEPTED = [
    pytest.param(put("sandbox/access.yaml", roles("password_admins", "reset_user_password")), "sandbox/access.yaml",
                 id="role-and-permission-named-like-secrets"),
    pytest.param(put("sandbox/access.yaml", roles("secret-shoppers", "view_api_token_usage")), "sandbox/access.yaml",
                 id="more-platform-words"),
    pytest.param(link("sandbox/terms.yaml", "../_base/terms.yaml"), "sandbox/terms.yaml", id="link-inside-the-root"),
    pytest.param(hardlink("sandbox/terms.yaml", "_base/terms.yaml"), "sandbox/terms.yaml", id="hardlink"),
    pytest.param(put("sandbox/phases.yaml", padded(MAX_BYTES)), "sandbox/phases.yaml", id="exactly-one-mebibyte"),
    pytest.param(put("sandbox/phases.yaml", b"\xef\xbb\xbf" + EXAMPLE_PHASES.encode()), "sandbox/phases.yaml",
                 id="byte-order-mark"),
    pytest.param(both(link("sandbox/.#phases.yaml", "registrar@laptop.4242:1700000000"),
                      put("sandbox/#phases.yaml#", "\x00garbage"), put("sandbox/phases.yaml~", "- old\n"),
                      put("sandbox/.phases.yaml.swp", b"\x00\x01vim"), put("sandbox/~$phases.yaml", "lock"),
                      put("sandbox/.phases.yaml", "hidden: [")),
                 "sandbox/", id="editor-locks-backups-and-hidden-files"),
    pytest.param(both(put(".trash/phases.yaml", "junk: ["), put(".trash/environment.yaml", "x")), ".trash",
                 id="hidden-folder"),
    pytest.param(put("sandbox/phases.yaml", EXAMPLE_PHASES + "# the token lives in SANDBOX_TOKEN, not here;\n"
                     "# a password reset is done in the console\n"), "sandbox/phases.yaml",
                 id="secret-words-in-comments"),
    pytest.param(put("sandbox/maintenance.yaml", window(f"reverts {HEX40}")), "sandbox/maintenance.yaml",
                 id="commit-sha-in-a-reason"),
    pytest.param(put("sandbox/environment.yaml", live()), "sandbox/environment.yaml", id="token-variable-names"),
    pytest.param(put("sandbox/environment.yaml", live(key="read_token_env", token="SANDBOX_READ_TOKEN")),
                 "sandbox/environment.yaml", id="read-token-variable-name"),
]


@pytest.mark.parametrize(("plant", "where"), ACCEPTED)
def test_what_is_fine_stays_fine(repo: Path, cli, plant: Plant, where: str) -> None:
    plant_companion(repo)
    plant(repo)
    out, err, code = run_validate(repo, cli, False)
    assert code == 1 and COMPANION in out.splitlines(), out
    assert not [line for line in out.splitlines() if line.startswith(f"environments/{where}")], out
    assert out.strip().splitlines() == [COMPANION]
    assert_safe_output(out, err)


def cred_url(query: str) -> str:
    return f"https://admin.example.edu/api/v1{query}"


SECRET_CASES = [
    # the issue's own: a token pasted where its variable's name belongs, echoed by the schema error
    pytest.param(put("sandbox/environment.yaml", live(token=GHP)), "sandbox/environment.yaml:11:14", GHP,
                 id="github-token-in-token-env"),
    pytest.param(put("sandbox/environment.yaml", live(token=HEX40)), "sandbox/environment.yaml:11:14", HEX40,
                 id="hex-token-in-token-env"),
    pytest.param(put("sandbox/environment.yaml", live(token=JWT)), "sandbox/environment.yaml:11:14", JWT,
                 id="jwt-in-token-env"),
    pytest.param(put("sandbox/environment.yaml", live(token=SK)), "sandbox/environment.yaml:11:14", SK,
                 id="sk-key-in-token-env"),
    pytest.param(put("sandbox/environment.yaml", live(token=f'"Bearer {HEX40}"')), "sandbox/environment.yaml:11:14",
                 HEX40, id="bearer-in-token-env"),
    # ...and a token in a URL passed
    pytest.param(put("sandbox/environment.yaml", live(url=cred_url("?token=abc123DEF456ghi789"))),
                 "sandbox/environment.yaml:10:8", "abc123DEF456ghi789", id="token-in-url-query"),
    pytest.param(put("sandbox/environment.yaml", live(url="https://ops:Hunter2Hunter2@admin.example.edu/api")),
                 "sandbox/environment.yaml:10:8", "Hunter2Hunter2", id="password-in-url"),
    # ours
    pytest.param(put("sandbox/environment.yaml", live(token=HEX40.upper().replace("3F", "AF", 1))),
                 "sandbox/environment.yaml:11:14", HEX40.upper().replace("3F", "AF", 1),
                 id="upper-hex-token-that-the-schema-accepts"),
    pytest.param(put("sandbox/environment.yaml", live(token=GHP, key="read_token_env")),
                 "sandbox/environment.yaml:11:19", GHP, id="token-in-read-token-env"),
    pytest.param(put("sandbox/environment.yaml", live(url=cred_url("?tenant=7&api_key=zz99yy88xx77"))),
                 "sandbox/environment.yaml:10:8", "zz99yy88xx77", id="api-key-later-in-the-query"),
    pytest.param(put("sandbox/environment.yaml", live(url=cred_url("#access_token=qq11ww22ee33"))),
                 "sandbox/environment.yaml:10:8", "qq11ww22ee33", id="token-in-url-fragment"),
    pytest.param(put("sandbox/environment.yaml", live().replace("connector: http", f"connector: {GHP}")),
                 "sandbox/environment.yaml:9:14", GHP, id="token-as-connector-name"),
    pytest.param(put("sandbox/maintenance.yaml", window(f"key {AWS}")), "sandbox/maintenance.yaml:5:13", AWS,
                 id="aws-access-key-in-a-reason"),
    pytest.param(put("sandbox/maintenance.yaml", window(PRIVATE_KEY)), "sandbox/maintenance.yaml:5:13", KEY_BODY,
                 id="private-key-block"),
    pytest.param(put("sandbox/maintenance.yaml", window(f"see {SLACK}")), "sandbox/maintenance.yaml:5:13", SLACK,
                 id="slack-token"),
    pytest.param(put("sandbox/maintenance.yaml", window("ok") + f"    note: {JWT}\n"), "sandbox/maintenance.yaml:8:11",
                 JWT, id="jwt-under-an-unknown-key"),
    pytest.param(put("sandbox/access.yaml", HEADER + f"kind: Access\n{GHP}: 1\n"), "sandbox/access.yaml:3:1", GHP,
                 id="token-as-a-key"),
    pytest.param(put("sandbox/access.yaml", roles(GHP.lower(), "view_x")), "sandbox/access.yaml:4:3", GHP.lower(),
                 id="token-as-a-role-name"),
    pytest.param(put("sandbox/access.yaml", roles("registrar", "view_x", GHP)), "sandbox/access.yaml:5:13", GHP,
                 id="token-as-a-permission-value"),
    pytest.param(put("sandbox/access.yaml", HEADER + "kind: Access\npassword: Hunter2Hunter2\n"),
                 "sandbox/access.yaml:3:1", "Hunter2Hunter2", id="password-key"),
    pytest.param(put("sandbox/phases.yaml", PHASES + f"# old token: {GHP}\n"), "sandbox/phases.yaml:4:14", GHP,
                 id="token-in-a-comment"),
    pytest.param(put("sandbox/phases.yaml", HEADER + f"kind: Phases\nphases: [\n  # {SK}\n"),
                 "sandbox/phases.yaml:4:5", SK, id="token-in-a-comment-of-a-broken-file"),
    pytest.param(put("sandbox/phases.yaml", f"apiVersion: {GHP}\nkind: Phases\nphases: []\n"),
                 "sandbox/phases.yaml:1:13", GHP, id="token-as-api-version"),
    pytest.param(put("sandbox/phases.yaml", HEADER + f"kind: {SK}\nphases: []\n"), "sandbox/phases.yaml:2:7", SK,
                 id="token-as-kind"),
    pytest.param(put("sandbox/phases.yaml", HEADER + f"kind: Phases\nphases: []\n{GHP}: 1\n{GHP}: 2\n"),
                 "sandbox/phases.yaml:5:1", GHP, id="token-in-a-dialect-message"),
]


@pytest.mark.parametrize(("plant", "where", "secret"), SECRET_CASES)
def test_a_secret_is_refused_and_never_repeated(repo: Path, cli, plant: Plant, where: str, secret: str) -> None:
    plant_companion(repo)
    plant(repo)
    result = cli("--root", str(repo), "validate")
    assert result.code == 1, result.out
    hits = [line for line in result.lines if line.startswith(f"environments/{where}: error[")]
    assert hits, result.lines
    assert COMPANION in result.lines
    assert_safe_output(result.out, result.err, secret)
    shown = cli("--root", str(repo), "validate", "--format", "json")
    assert shown.code == 1
    problems = json.loads(shown.out)
    file, line, column = where.split(":")
    assert [p for p in problems if (p["file"], p["line"], p["column"]) == (f"environments/{file}", int(line),
                                                                          int(column))]
    assert any(p["file"] == "environments/staging/access.yaml" for p in problems)
    assert_safe_output(shown.out, shown.err, secret)
    if any("secret-in-config" in hit for hit in hits):
        return
    assert any("<redacted>" in hit for hit in hits), hits  # refused for its place, and not repeated


@pytest.mark.parametrize(("where", "plant"), [
    pytest.param("sandbox/environment.yaml:11:14", put("sandbox/environment.yaml", live(token=GHP)), id="value"),
    pytest.param("sandbox/environment.yaml:10:8",
                 put("sandbox/environment.yaml", live(url=cred_url("?token=abc123DEF456ghi789"))), id="url-query"),
    pytest.param("sandbox/access.yaml:3:1", put("sandbox/access.yaml", HEADER + "kind: Access\napi_token: x\n"),
                 id="fixed-key"),
    pytest.param("sandbox/phases.yaml:4:14", put("sandbox/phases.yaml", PHASES + f"# old token: {GHP}\n"),
                 id="comment"),
])
def test_the_rule_is_secret_in_config(repo: Path, cli, where: str, plant: Plant) -> None:
    plant(repo)
    result = cli("--root", str(repo), "validate")
    assert any(line.startswith(f"environments/{where}: error[secret-in-config]") for line in result.lines), \
        result.lines


def test_the_cache_answers_with_the_same_redacted_lines(repo: Path, cli) -> None:
    put("sandbox/environment.yaml", live(token=GHP))(repo)
    cold = cli("--root", str(repo), "validate")
    warm = cli("--root", str(repo), "validate")
    assert cold.out == warm.out and GHP not in warm.out and "<redacted>" in warm.out


@pytest.mark.parametrize("sample", [GHP, HEX40, JWT, SK, AWS, SLACK, "Bearer " + HEX40, "-----BEGIN PRIVATE KEY-----",
                                    "https://u:p4ssw0rd@h", "https://h/x?token=abc", "glpat-" + "x1" * 10])
def test_redact_hides_every_shape(sample: str) -> None:
    from reconciler.core.secrets import redact

    assert "<redacted>" in redact(f"value {sample!r} is bad")
    assert sample not in redact(f"value {sample!r} is bad")


@pytest.mark.parametrize("text", ["phases.yaml: 'registrar-preview' given twice", "user 'a.b@example.edu'",
                                  "unknown key 'reset_user_password'", "term '202710' is not in Terms",
                                  "'https://admin.example.edu/api/v1' is not a valid uri", "sk-open-scheduling-2026"])
def test_redact_leaves_ordinary_messages_alone(text: str) -> None:
    from reconciler.core.secrets import redact

    assert redact(text) == text


def test_every_shape_passes_the_quick_looks() -> None:
    """The quick looks (on the data as JSON, and on a file's bytes for comments) never hide a shape."""
    from reconciler.core.secrets import CREDENTIAL, comment_secrets, may_hold_a_secret

    for sample in (GHP, JWT, SK, AWS, SLACK, "Bearer " + HEX40, "-----BEGIN PRIVATE KEY-----", "https://u:pw@h",
                   "https://h/x?token=abc", "glpat-" + "x1" * 10, "AIza" + "B" * 35, "npm_" + "c" * 36):
        assert CREDENTIAL.search(sample), sample
        assert may_hold_a_secret(json.dumps({"note": sample})), sample
        assert comment_secrets(f"a: 1  # {sample}\n".encode(), "f"), sample


def plant_companion(repo: Path) -> None:
    put("staging/access.yaml", HEADER + "kind: Access\nusers: nope\n")(repo)


def run_validate(repo: Path, cli, isolate: bool) -> tuple[str, str, int]:  # type: ignore[no-untyped-def]
    """In-process, or (for what could hang or fill memory if the loader regressed) in a bounded subprocess."""
    if not isolate:
        result = cli("--root", str(repo), "validate")
        return result.out, result.err, result.code
    try:
        done = subprocess.run([sys.executable, "-m", "reconciler", "--root", str(repo), "validate"],
                              capture_output=True, timeout=60, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    except subprocess.TimeoutExpired:
        pytest.fail("validate did not finish within 60 s: it blocked on a file")
    return done.stdout.decode(), done.stderr.decode(), done.returncode


def assert_safe_output(out: str, err: str, secret: str | None = None) -> None:
    assert "Traceback" not in out + err and "unexpected error" not in out + err, err
    assert not _RAW_CONTROL.search(out + err), repr(out + err)
    for line in out.splitlines():
        assert line.startswith(("[", "]", " ", "{", "}")) or _ONE_LINE.match(line), line
    if secret is not None:
        assert secret not in out and secret not in err
