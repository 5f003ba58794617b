"""The http connector's requests: Retry-After on 429 and 503, no retry of a certificate that fails TLS
verification, the per-request deadline as a hard bound (a hung server on 127.0.0.1 included) and a
`live.url` refused at run time (the 412 is in test_http_connector.py). Over httpx.MockTransport and
tiny servers on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest
from test_http_connector import CANARY, FAST, VAR, answer, mock, no_canary, spec_for  # noqa: F401

from reconciler.connectors import get_connector
from reconciler.connectors.http import HttpConnector, RetryPolicy, _retry_after
from reconciler.errors import ConnectorError, UnreachableError

# --- Retry-After --------------------------------------------------------------------------------------


def in_an_hour() -> str:
    return formatdate(time.time() + 3600, usegmt=True)


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(("retry_after", "at_least"), [
    pytest.param("0.25", 0.25, id="seconds"),
    pytest.param(None, 0.3, id="http-date-bounded-by-the-policy"),
])
def test_retry_after_is_honoured_on_429_and_503(mock, status: int,  # type: ignore[no-untyped-def]  # noqa: F811
                                                retry_after: str | None, at_least: float) -> None:
    calls = {"n": 0}

    def busy_once(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return answer(status, {"error": "busy"}, **{"Retry-After": retry_after or in_an_hour()})
        return answer(200, {})

    connector, seen = mock(busy_once)
    connector.policy = RetryPolicy(attempts=3, backoff_s=0.001, backoff_max_s=0.001, retry_after_max_s=0.3,
                                   deadline_s=10.0, timeout_s=2.0)
    started = time.monotonic()
    connector.read()
    elapsed = time.monotonic() - started
    assert len(seen) == 2
    assert at_least <= elapsed < 5.0  # the backoff alone would have waited a millisecond


@pytest.mark.parametrize(("status", "header", "expected"), [
    pytest.param(503, "7", 7.0, id="seconds"),
    pytest.param(503, "-3", 0.0, id="negative-is-now"),
    pytest.param(429, "Thu, 01 Jan 1970 00:01:40 GMT", 60.0, id="http-date"),
    pytest.param(503, "Thu, 01 Jan 1970 00:00:10 GMT", 0.0, id="http-date-past"),
    pytest.param(503, "soon", None, id="garbage"),
    pytest.param(503, "inf", None, id="infinite"),
    pytest.param(500, "7", None, id="not-on-500"),
])
def test_retry_after_reads_seconds_and_http_dates(status: int, header: str, expected: float | None) -> None:
    response = httpx.Response(status, headers={"Retry-After": header})
    assert _retry_after(response, now=40.0) == expected


def test_a_retry_after_past_the_deadline_gives_up_at_once(mock) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    connector, seen = mock(lambda r: answer(503, {"error": "maintenance"}, **{"Retry-After": "3600"}))
    connector.policy = RetryPolicy(attempts=5, backoff_s=0.001, retry_after_max_s=30.0, deadline_s=1.0)
    started = time.monotonic()
    with pytest.raises(UnreachableError, match="still failed after 1 attempt: 503 maintenance"):
        connector.read()
    assert time.monotonic() - started < 1.0  # no sleep that the deadline would cut short
    assert len(seen) == 1


# --- TLS verification ----------------------------------------------------------------------------------


def test_a_certificate_that_fails_verification_is_not_retried(mock) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    def untrusted(request: httpx.Request) -> httpx.Response:
        cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                                "self-signed certificate (_ssl.c:1006)")
        cause.verify_message = "self-signed certificate"  # set by ssl itself on a real handshake
        raise httpx.ConnectError(str(cause), request=request) from cause

    connector, seen = mock(untrusted)
    with pytest.raises(ConnectorError) as caught:
        connector.read()
    assert len(seen) == 1
    assert not isinstance(caught.value, UnreachableError)
    assert str(caught.value) == ("staging: TLS verification failed for admin.example.edu (self-signed "
                                 "certificate); the request was not sent (check the certificate that live.url "
                                 "serves)")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.fixture
def untrusted_tls_server(tmp_path: Path) -> Iterator[tuple[int, list[str]]]:
    """A TLS server on 127.0.0.1 with a self-signed certificate; yields its port and one line per handshake."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    handshakes: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True):
                    handshakes.append("completed")
            except (ssl.SSLError, OSError) as e:
                handshakes.append(type(e).__name__)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], handshakes
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_a_real_self_signed_certificate_is_one_attempt_and_one_line(  # type: ignore[no-untyped-def]
        repo: Path, untrusted_tls_server, monkeypatch: pytest.MonkeyPatch) -> None:
    port, handshakes = untrusted_tls_server
    monkeypatch.setenv(VAR, CANARY)
    connector = get_connector(spec_for(repo, f"https://127.0.0.1:{port}/api/v1"), repo)
    assert isinstance(connector, HttpConnector)
    connector.policy = FAST  # four attempts, were it retried
    with pytest.raises(ConnectorError) as caught:
        connector.read()
    message = str(caught.value)
    assert message.startswith(f"staging: TLS verification failed for 127.0.0.1:{port} (self-signed certificate)")
    assert "\n" not in message
    no_canary(message, repr(caught.value))
    deadline = time.monotonic() + 5
    while not handshakes and time.monotonic() < deadline:  # the server thread logs its side
        time.sleep(0.01)
    assert len(handshakes) == 1 and handshakes[0] != "completed", handshakes


# --- the deadline ------------------------------------------------------------------------------------


@pytest.fixture
def hung_server() -> Iterator[str]:
    """A port on 127.0.0.1 that takes connections (the kernel's backlog) and never answers a byte."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/v1"
    listener.close()


def test_a_hung_server_is_stopped_by_the_deadline(repo: Path, hung_server: str,  # type: ignore[no-untyped-def]
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, CANARY)
    policy = RetryPolicy(attempts=5, backoff_s=0.01, backoff_max_s=0.01, deadline_s=1.0, timeout_s=20.0)
    with httpx.Client() as client:
        connector = HttpConnector(spec_for(repo, hung_server), repo, client=client, policy=policy)
        started = time.monotonic()
        with pytest.raises(UnreachableError) as caught:
            connector.read()
        elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 10.0  # the 20 s attempt timeout never ran out: the 1 s deadline did
    assert "in its 1s deadline: ReadTimeout" in str(caught.value)


def test_backoff_sleeps_never_outlast_the_deadline(mock) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    connector, _ = mock(lambda r: answer(503, {"error": "down"}))
    connector.policy = RetryPolicy(attempts=100, backoff_s=5.0, backoff_max_s=5.0, deadline_s=0.6)
    for _ in range(5):
        started = time.monotonic()
        with pytest.raises(UnreachableError):
            connector.read()
        assert time.monotonic() - started < 0.6 + 0.5  # a little for the machine, never a 5 s sleep


def test_the_deadline_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_HTTP_DEADLINE", "2.5")
    assert RetryPolicy.from_env().deadline_s == 2.5
    monkeypatch.setenv("RECONCILER_HTTP_DEADLINE", "0")  # no deadline at all would fail every request
    assert RetryPolicy.from_env().deadline_s == RetryPolicy().deadline_s == 60.0


# --- live.url at run time ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    pytest.param("https://admin.example.edu/api/v1?tenant=7", id="query"),
    pytest.param("https://admin.example.edu/api/v1?", id="empty-query"),
    pytest.param("https://admin.example.edu/api/v1#top", id="fragment"),
    pytest.param("https://ops:hunter22@admin.example.edu/api/v1", id="user-and-password"),
    pytest.param("http://ops:hunter22@example.org/api/v1", id="password-over-plain-http"),
    pytest.param("https://ops@admin.example.edu/api/v1", id="user"),
])
def test_a_url_with_a_query_fragment_or_user_is_refused(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                        url: str) -> None:
    monkeypatch.setenv(VAR, CANARY)
    with pytest.raises(ConnectorError) as caught:
        get_connector(spec_for(repo, url), repo)
    message = str(caught.value)
    assert message == ("staging: live.url must be the API's base URL alone, without a query string (?…), "
                       "a fragment (#…) or user@ (the token comes from live.token_env)")
    assert "hunter22" not in message and "tenant" not in message


def test_an_at_sign_in_the_path_is_not_userinfo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, CANARY)
    connector = get_connector(spec_for(repo, "https://admin.example.edu/api/@v1/"), repo)
    assert isinstance(connector, HttpConnector)
    assert connector.base == "https://admin.example.edu/api/@v1"
