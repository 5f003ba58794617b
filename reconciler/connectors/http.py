"""EDGE: the http connector — one environment's live side through the platform's admin API.

Flow: `connectors.get_connector` → **HttpConnector** → httpx → the admin API
(schemas/admin-api.openapi.yaml; `reconciler emulator` serves it locally). One httpx client per
process, shared by every environment of a run (plan reads environments from a thread pool), so
connections are reused and `--parallel N` really gives N requests in flight.

Every request is retried with exponential backoff and jitter on connect errors, timeouts, dropped
connections, 429 and 5xx (a 429's or 503's `Retry-After`, seconds or an HTTP date, honoured up to a
bound) — never on another 4xx, nor on a certificate that fails TLS verification — within a bounded
number of attempts and a deadline that bounds each request as a whole, waits included (httpx bounds
each connect and read, so only a server that trickles its answer a byte at a time could outlast it).
Every write carries an `Idempotency-Key` that stays the same on each retry of that write, so a write
retried after a dropped connection is made once.
Changes carry `If-Match` with the fingerprint the plan saw: a console edit since is a 412, never
overwritten. The token comes only from the variable `live.token_env` names (a connector made for
reading: `live.read_token_env`'s, when given) and is never put in a message, a log line or a repr. A
connector made for reading sends nothing but GETs. With RECONCILER_ALLOWED_HOSTS set, a `live.url` whose
host is not listed is refused before anything is sent (DESIGN §6).
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import logging
import math
import os
import random
import re
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.connectors.base import BaseConnector, LeaseAnswer, PartialApplyError, lease_holder
from reconciler.core.plan import Change
from reconciler.errors import ConflictError, ConnectorError, LockError, UnreachableError
from reconciler.model import EnvironmentSpec

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
"""The pool of the shared client: as many as `--parallel` allows (its upper bound is 64)."""
MIN_ATTEMPT_S = 0.05
"""The least time an attempt is given, so one begun at the deadline fails at once rather than hanging."""
REQUESTS: Counter[str] = Counter()
"""Requests sent by this process, by "METHOD kind" (e.g. "GET environment"): for tests and benchmarks."""
_COUNTING = threading.Lock()


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a request is retried. Each can be set by an environment variable (tests make it fast):
    RECONCILER_HTTP_ATTEMPTS, RECONCILER_HTTP_BACKOFF (first wait, s), RECONCILER_HTTP_BACKOFF_MAX,
    RECONCILER_HTTP_RETRY_AFTER_MAX, RECONCILER_HTTP_DEADLINE (one request with all its attempts and
    waits, s) and RECONCILER_HTTP_TIMEOUT (one attempt, s; never more than the deadline leaves)."""

    attempts: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 30.0
    deadline_s: float = 60.0
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        def number(name: str, default: float) -> float:
            text = os.environ.get(f"RECONCILER_HTTP_{name}")
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                raise ConnectorError(f"RECONCILER_HTTP_{name}={text!r} is not a number") from None
            if value < 0:
                raise ConnectorError(f"RECONCILER_HTTP_{name}={text!r} must not be negative")
            return value

        base = cls()
        return cls(
            attempts=max(1, int(number("ATTEMPTS", base.attempts))),
            backoff_s=number("BACKOFF", base.backoff_s),
            backoff_max_s=number("BACKOFF_MAX", base.backoff_max_s),
            retry_after_max_s=number("RETRY_AFTER_MAX", base.retry_after_max_s),
            deadline_s=number("DEADLINE", base.deadline_s) or base.deadline_s,
            timeout_s=number("TIMEOUT", base.timeout_s) or base.timeout_s,
        )


# --- the shared client ----------------------------------------------------------------------------


def _httpx() -> Any:
    """httpx, imported without its own command-line tool (rich and pygments: 0.1 s we never use)."""
    if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]  # httpx then defines a stub `main`
        try:
            import httpx
        finally:
            if sys.modules.get("httpx._main") is None:
                del sys.modules["httpx._main"]
        return httpx
    import httpx

    return httpx

_CLIENT: httpx.Client | None = None
_CLIENT_LOCK = threading.Lock()


def shared_client() -> httpx.Client:
    """The process's one client (created on first use, closed at exit)."""
    global _CLIENT
    with _CLIENT_LOCK:
        if _CLIENT is None or _CLIENT.is_closed:
            httpx = _httpx()
            policy = RetryPolicy.from_env()
            limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
            timeout = httpx.Timeout(policy.timeout_s, connect=min(5.0, policy.timeout_s))
            _CLIENT = httpx.Client(limits=limits, timeout=timeout, verify=True, follow_redirects=False,
                                   headers={"User-Agent": "reconciler"})
            if not getattr(shared_client, "_registered", False):
                atexit.register(close_shared_client)
                shared_client._registered = True  # type: ignore[attr-defined]
        return _CLIENT


def close_shared_client() -> None:
    global _CLIENT
    with _CLIENT_LOCK:
        if _CLIENT is not None:
            _CLIENT.close()
            _CLIENT = None


# --- configuration --------------------------------------------------------------------------------

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(env: str, live: Mapping[str, Any], connector: str = "http",
             example: str = "https://admin.example.edu/api/v1") -> str:
    """`live.url` checked: https, or plain http only to a loopback host."""
    httpx = _httpx()

    url = live.get("url")
    if not isinstance(url, str) or not url:
        raise ConnectorError(f"{env}: live.url is required for the {connector} connector (e.g. {example})")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as e:
        raise ConnectorError(f"{env}: live.url {url} is not a URL ({e})") from None
    if "?" in url or "#" in url or parsed.userinfo:
        # checked first, and the URL is not echoed: a query or user:password@ may hold a credential
        raise ConnectorError(f"{env}: live.url must be the API's base URL alone, without a query string (?…), "
                             "a fragment (#…) or user@ (the token comes from live.token_env)")
    if parsed.scheme == "http" and not is_loopback(parsed.host):
        raise ConnectorError(
            f"{env}: live.url {url} uses plain http to {parsed.host}; use https (plain http is allowed only to "
            "a loopback host such as 127.0.0.1)"
        )
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConnectorError(f"{env}: live.url {url} must be an https:// URL")
    refuse_unlisted_host(env, parsed)
    return url.rstrip("/")


ALLOWED_HOSTS = "RECONCILER_ALLOWED_HOSTS"
"""host[:port], comma-separated: when set, a token is sent to no other host (DESIGN §6)."""
DEFAULT_PORTS = {"http": 80, "https": 443}


def refuse_unlisted_host(env: str, parsed: httpx.URL) -> None:
    """Refuse a `live.url` whose host (and port, where the entry names one) RECONCILER_ALLOWED_HOSTS does
    not list; nothing when the variable is unset or blank."""
    entries = [entry.strip() for entry in os.environ.get(ALLOWED_HOSTS, "").split(",") if entry.strip()]
    if not entries:
        return
    host, port = parsed.host.lower(), parsed.port or DEFAULT_PORTS.get(parsed.scheme)
    for entry in entries:
        want_host, want_port = allowed_entry(entry)
        if want_host == host and want_port in (None, port):
            return
    shown = f"[{host}]" if ":" in host else host
    raise ConnectorError(f"{env}: live.url's host {shown}:{port} is not in {ALLOWED_HOSTS} ({', '.join(entries)}); "
                         "refused before sending anything")


def allowed_entry(entry: str) -> tuple[str, int | None]:
    """One RECONCILER_ALLOWED_HOSTS entry as (host, port or None): `host`, `host:port`, `[v6]`, `[v6]:port`."""
    text = entry.lower()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") if rest else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, None
    if not host or (port is not None and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536)):
        raise ConnectorError(f"{ALLOWED_HOSTS}: {entry!r} is not host[:port]")
    return host, int(port) if port is not None else None


WRITE_KEY = "token_env"
READ_KEY = "read_token_env"


def token_key(live: Mapping[str, Any], *, writing: bool) -> str:
    """Which `live` key names the token: `token_env` for every write; `read_token_env` for reads when given."""
    return READ_KEY if not writing and live.get(READ_KEY) else WRITE_KEY


def token_from_env(env: str, live: Mapping[str, Any], key: str = WRITE_KEY, connector: str = "http") -> str:
    """The token in the variable `live[key]` names; a read-only connector never asks for the write token."""
    name = live.get(key)
    what = "read-only API token" if key == READ_KEY else "API token"
    if not isinstance(name, str) or not name:
        raise ConnectorError(f"{env}: live.{key} is required for the {connector} connector (the name of the "
                             f"environment variable holding the {what})")
    token = os.environ.get(name)
    if not token:
        raise ConnectorError(f"{env}: the environment variable {name} (live.{key}) is not set; "
                             f"set it to the {what}")
    if any(c in token for c in "\r\n"):
        raise ConnectorError(f"{env}: the token in ${name} is not a valid header value")
    return token


SHORT_TOKEN = 16
"""A token shorter than this is redacted only where it stands alone, not inside another word."""


def redact(text: str, token: str) -> str:
    """`text` with `token` replaced by ***: everywhere for a long token; a short one only where no letter
    or digit touches it, so an unrelated word that happens to contain it is left alone."""
    if not token:
        return text
    if len(token) >= SHORT_TOKEN:
        return text.replace(token, "***")
    return re.sub(rf"(?<![A-Za-z0-9]){re.escape(token)}(?![A-Za-z0-9])", "***", text)


# --- the connector --------------------------------------------------------------------------------


class HttpConnector(BaseConnector):
    """The live side of one environment behind the platform's admin API."""

    name = "http"
    capabilities = frozenset({"write", "lease", "activity", "merge"})
    example_url = "https://admin.example.edu/api/v1"

    def __init__(self, spec: EnvironmentSpec, root: Path | None = None, *, client: httpx.Client | None = None,
                 policy: RetryPolicy | None = None, writing: bool = True) -> None:
        live = spec.config.get("live") or {}
        self.spec = spec
        self.env = spec.name
        self.writing = writing
        """False: made for reading (plan, drift, status, report), with the read-only token where given;
        it sends nothing but GETs."""
        self.base = base_url(self.env, live, self.name, self.example_url)
        key = token_key(live, writing=writing)
        self.token_env = str(live.get(key))
        self.__token = token_from_env(self.env, live, key, self.name)
        self._client = client
        self.policy = policy or RetryPolicy.from_env()
        self.holder: str | None = None
        self.etag: str | None = None

    def __repr__(self) -> str:
        return f"HttpConnector(env={self.env!r}, url={self.base!r}, token_env={self.token_env!r})"

    @property
    def client(self) -> httpx.Client:
        return self._client if self._client is not None else shared_client()

    def _url(self, tail: str = "") -> str:
        return f"{self.base}/environments/{self.env}{tail}"

    # --- reading ---------------------------------------------------------------------------

    def read(self) -> dict[str, Any]:
        response = self._request("GET", "", kind="environment")
        doc = self._json(response, "the live state")
        if not isinstance(doc, dict):
            raise ConnectorError(f"{self.env}: the platform answered a live state that is not a JSON object")
        self.etag = _unquote(response.headers.get("etag"))
        return doc

    def activity(self, since_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The live activity log, oldest first: [{"id", "at", "entry"}]."""
        out: list[dict[str, Any]] = []
        while True:
            response = self._request("GET", "/activity", kind="activity",
                                     params={"since_id": since_id, "limit": limit})
            entries = (self._json(response, "the activity log") or {}).get("entries") or []
            out += entries
            if len(entries) < limit:
                return out
            since_id = int(entries[-1]["id"])

    # --- writing ---------------------------------------------------------------------------

    def apply_changes(self, changes: Sequence[Change], *, record: dict[str, Any]) -> None:
        if not changes:
            return
        expected = record.get("live_fingerprint") or self.etag or self._current_etag()
        body = {
            "changes": [c.data for c in changes],
            "record": {k: v for k, v in record.items() if k != "live_fingerprint"},
            "lease_holder": self.holder or lease_holder(),
        }
        response = self._request("POST", "/changes", kind="changes", body=body, write=True,
                                 headers={"If-Match": f'"{expected}"'}, expect=(200, 412, 422))
        if response.status_code == 412:
            # the batch is one transaction guarded by If-Match, and a retried write replays its first
            # answer (Idempotency-Key): a 412 means the platform kept none of it
            raise ConflictError(f"{self.env}: the live side changed since it was read (412); nothing was "
                                "applied; plan again")
        data = self._json(response, "the apply") or {}
        if response.status_code == 422:
            index = data.get("failed")
            failed = changes[index] if isinstance(index, int) and 0 <= index < len(changes) else changes[0]
            applied = data["applied"] if isinstance(data.get("applied"), int) else 0
            raise PartialApplyError(applied, failed, self._redact(str(data.get("error") or "refused")))
        self.etag = _unquote(data.get("etag")) or None

    def _current_etag(self) -> str:
        self.read()
        if not self.etag:
            raise ConnectorError(f"{self.env}: the platform sent no ETag with the live state")
        return self.etag

    def append_activity(self, entry: dict[str, Any]) -> None:
        self._request("POST", "/activity", kind="activity", body=entry, write=True, expect=(200, 201))

    def execute_merge(
        self, term: str, types: Sequence[str], *, send_updates: bool, record: dict[str, Any]
    ) -> dict[str, Any]:
        body = {"term": term, "types": list(types), "send_updates": send_updates,
                "record": {k: v for k, v in record.items() if k != "live_fingerprint"}}
        response = self._request("POST", "/merges", kind="merges", body=body, write=True, expect=(200, 201, 409))
        data = self._json(response, "the merge") or {}
        if response.status_code == 409:
            raise ConnectorError(f"{self.env}: the merge of term {term} was refused: "
                                 f"{self._redact(str(data.get('error') or 'conflict'))}")
        return dict(data)

    # --- the lease -------------------------------------------------------------------------

    # BaseConnector.lock holds the loop; these are its primitives. A 423 names the holder; a dead holder
    # on this host is taken over by naming it in `takeover` (the platform swaps only if it still holds).

    def _try_lease(self, holder: str, ttl_s: float, takeover: str | None = None) -> LeaseAnswer:
        body: dict[str, Any] = {"holder": holder, "ttl_s": ttl_s}
        if takeover:
            body["takeover"] = takeover
        response = self._request("POST", "/lease", kind="lease", body=body, expect=(200, 423))
        data = _json_or_empty(response)
        if response.status_code == 200:
            return True, holder, self._lease_expires(data)
        return False, str(data.get("holder") or "another run"), self._lease_expires(data)

    def _release_lease(self, holder: str) -> None:
        self._request("DELETE", "/lease", kind="lease", params={"holder": holder}, expect=(200, 204))

    def _lease_scope(self) -> Hashable:
        return "http", self.base, self.env

    @staticmethod
    def _lease_expires(data: Mapping[str, Any]) -> float | None:
        expires = data.get("expires")
        return float(expires) if isinstance(expires, int | float) and not isinstance(expires, bool) else None

    def _locked_message(self, data: Mapping[str, Any]) -> str:
        return self._lock_refused(str(data.get("holder") or "another run"), self._lease_expires(data))

    def _lock_refused(self, current: str, expires: float | None) -> str:
        return self._redact(super()._lock_refused(current, expires))

    # --- one request, retried ------------------------------------------------------------------

    def _request(self, method: str, tail: str, *, kind: str, body: Any = None, write: bool = False,
                 params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                 expect: Sequence[int] = (200,)) -> httpx.Response:
        """Send one request (retried as the policy says) and return a response whose status is in
        `expect`; any other status becomes the error it means."""
        if method != "GET" and not self.writing:
            raise ConnectorError(f"{self.env}: {method} {kind} refused: this connector was made for reading "
                                 f"(token from ${self.token_env}); a write needs the one from live.token_env")
        sent = {"Authorization": f"Bearer {self.__token}", "Accept": "application/json", **(headers or {})}
        content = None
        if body is not None:
            sent["Content-Type"] = "application/json"
            content = json.dumps(body, sort_keys=True, default=str).encode()
        if write:
            sent["Idempotency-Key"] = str(uuid.uuid4())  # one key for every retry of this write
        response, attempts = self._send_with_retries(method, self._url(tail), sent, content, params, kind)
        if response.status_code in expect:
            return response
        raise self._error_for(method, tail, response, attempts)

    def _send_with_retries(self, method: str, url: str, headers: dict[str, str], content: bytes | None,
                           params: Mapping[str, Any] | None, kind: str) -> tuple[httpx.Response, int]:
        """The last response and how many attempts it took; a network fault on the last attempt is an
        UnreachableError. Every attempt and every wait fits in the policy's deadline."""
        from tenacity import RetryError, Retrying, retry_if_exception, retry_if_result

        httpx = _httpx()
        policy = self.policy
        deadline = time.monotonic() + policy.deadline_s
        retrying = Retrying(
            stop=lambda state: _should_stop(state, policy.attempts, deadline),
            wait=lambda state: self._wait(state, deadline),
            retry=retry_if_exception(_is_retried) | retry_if_result(_retried_status),
            before_sleep=lambda state: log.debug("%s %s: attempt %d failed (%s); retrying", method, url,
                                                 state.attempt_number, _outcome_reason(state.outcome)),
            reraise=False,
        )
        try:
            response = retrying(self._send_once, method, url, headers, content, params, kind, deadline)
            return response, int(retrying.statistics.get("attempt_number", 1))
        except RetryError as e:
            outcome = e.last_attempt
            if outcome.failed:
                raise UnreachableError(self._unreachable(method, url, outcome.exception(), e)) from None
            return outcome.result(), outcome.attempt_number  # a 429/5xx after the last attempt
        except httpx.HTTPError as e:  # not retried: a bad URL, protocol or certificate, not a flaky network
            raise self._not_retried(method, url, e) from None

    def _send_once(self, method: str, url: str, headers: dict[str, str], content: bytes | None,
                   params: Mapping[str, Any] | None, kind: str, deadline: float) -> httpx.Response:
        with _COUNTING:
            REQUESTS[f"{method} {kind}"] += 1
        left = max(deadline - time.monotonic(), MIN_ATTEMPT_S)
        return self.client.request(method, url, headers=headers, content=content, params=params,
                                   timeout=min(self.policy.timeout_s, left))

    def _wait(self, state: Any, deadline: float) -> float:
        """Exponential backoff with full jitter, or a 429's or 503's Retry-After (bounded) when it names a
        wait; clipped to the time left (`_should_stop` gives up rather than sleep all of it)."""
        policy = self.policy
        outcome = state.outcome
        after = _retry_after(outcome.result()) if outcome is not None and not outcome.failed else None
        if after is not None:
            wanted = min(after, policy.retry_after_max_s)
        else:
            wanted = random.uniform(0, min(policy.backoff_max_s, policy.backoff_s * 2 ** (state.attempt_number - 1)))
        return max(0.0, min(wanted, deadline - time.monotonic()))

    # --- errors ----------------------------------------------------------------------------

    def _error_for(self, method: str, tail: str, response: httpx.Response, attempts: int) -> Exception:
        status = response.status_code
        message = self._redact(_error_text(response))
        where = f"{method} {self._url(tail)}"
        if status == 401:
            return ConnectorError(f"{self.env}: the platform refused the token in ${self.token_env} (401 at "
                                  f"{self.base}); check that variable")
        if status == 403:
            return ConnectorError(f"{self.env}: the token in ${self.token_env} may not do {where} (403)")
        if status == 423:
            return LockError(self._locked_message(_json_or_empty(response)))
        if status == 429 or status >= 500:
            tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
            return UnreachableError(f"{self.env}: {where} still failed after {tries}: {status} {message}")
        if status == 404:
            return ConnectorError(f"{self.env}: {where} answered 404 ({message}); check live.url {self.base}")
        return ConnectorError(f"{self.env}: {where} answered {status}: {message}")

    def _unreachable(self, method: str, url: str, error: BaseException | None, retry: Any) -> str:
        attempts = retry.last_attempt.attempt_number
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if attempts < self.policy.attempts:  # stopped by the deadline, not by the count
            tries += f" in its {self.policy.deadline_s:g}s deadline"
        return self._redact(f"{self.env}: the platform at {self.base} is unreachable: {method} {url} failed "
                            f"after {tries}: {_reason(error)}")

    def _not_retried(self, method: str, url: str, error: Exception) -> ConnectorError:
        tls = _tls_verification_failure(error)
        if tls is None:
            return UnreachableError(self._redact(f"{self.env}: {method} {url} failed: {_reason(error)}"))
        host = _httpx().URL(url).netloc.decode("ascii", "replace")
        why = getattr(tls, "verify_message", None) or " ".join(str(tls).split())
        return ConnectorError(self._redact(f"{self.env}: TLS verification failed for {host} ({why}); the request "
                                           "was not sent (check the certificate that live.url serves)"))

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json() if response.content else None
        except ValueError:
            raise ConnectorError(f"{self.env}: the platform answered {what} with something that is not JSON "
                                 f"({response.status_code})") from None

    def _redact(self, text: str) -> str:
        """A server could echo the token back; it never reaches a message."""
        return redact(text, self.__token)


def _retried_errors() -> tuple[type[BaseException], ...]:
    """Network faults worth another attempt: connect and read errors, timeouts, dropped connections."""
    httpx = _httpx()

    return (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _is_retried(error: BaseException) -> bool:
    # a certificate that fails verification fails the same way next time, and may be an impostor
    return isinstance(error, _retried_errors()) and _tls_verification_failure(error) is None


def _tls_verification_failure(error: BaseException) -> BaseException | None:
    """The ssl error behind `error` when it is a failed certificate verification (httpx wraps httpcore's
    error, which wraps ssl's)."""
    import ssl

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) or (
                isinstance(current, ssl.SSLError) and getattr(current, "reason", None) == "CERTIFICATE_VERIFY_FAILED"):
            return current
        current = current.__cause__ or current.__context__
    return None


def _retried_status(response: Any) -> bool:
    return getattr(response, "status_code", 0) == 429 or getattr(response, "status_code", 0) >= 500


def _should_stop(state: Any, attempts: int, deadline: float) -> bool:
    """After the last attempt, or when the wait before the next would use up what the deadline leaves
    (tenacity computes `upcoming_sleep` before it asks)."""
    return bool(state.attempt_number >= attempts or state.upcoming_sleep >= deadline - time.monotonic())


def _retry_after(response: Any, now: float | None = None) -> float | None:
    """The wait a 429's or 503's Retry-After asks for, in seconds (RFC 9110: seconds or an HTTP date)."""
    if getattr(response, "status_code", 0) not in (429, 503):
        return None
    text = (response.headers.get("retry-after") or "").strip()
    if not text:
        return None
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until(text, time.time() if now is None else now)
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


def _seconds_until(http_date: str, now: float) -> float | None:
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


def _outcome_reason(outcome: Any) -> str:
    if outcome is None:
        return "unknown"
    if outcome.failed:
        return _reason(outcome.exception())
    return f"status {outcome.result().status_code}"


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _error_text(response: httpx.Response) -> str:
    data = _json_or_empty(response)
    text = data.get("error") if isinstance(data, dict) else None
    if not isinstance(text, str):
        text = response.reason_phrase or "error"
    return " ".join(text.split())[:300]


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _unquote(etag: Any) -> str | None:
    if not isinstance(etag, str):
        return None
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"') or None

