"""``https://host:port`` (and loopback ``http://``): a tenant shared over the REST API.

``https://host/tenants/NAME`` names one tenant of a server of many (its API under
``/v1/tenants/NAME``); ``https://host`` is the server's tenant "default" (``/v1``).

The server fingerprints secrets with its own key, which never leaves it: the client asks
``POST /v1/fingerprints`` (read role) and caches the answers for the process. State is read
in pages of up to 2,000 resources, so planning 1,000 channels takes a handful of requests.

Retries: connection failures, 429 and 5xx are retried with exponential backoff and full
jitter (``Retry-After`` wins when the server sends it), but only where repeating cannot do
harm. A write whose request may have reached the server is never simply resent: every write
carries an ``Idempotency-Key``, and after a lost answer the client first asks
``GET /v1/writes/KEY`` whether it happened. Writes also carry ``If-Match`` (or
``If-None-Match: *``), so even a resend cannot overwrite someone else's change.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import json
import os
import random
import ssl
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from channelsync import kinds
from channelsync.targets import TOKEN_ENV, refuse_credentials, token_variable
from channelsync.targets.base import (
    ConflictError,
    Key,
    LiveResource,
    LockInfo,
    LockTimeout,
    Operation,
    TargetError,
)
from channelsync.tenant import lease
from channelsync.trust import cert_error, trust_for

if TYPE_CHECKING:
    import httpx

PAGE_SIZE = 2000
BATCH_ITEMS = 500  # operations per POST /v1/batch (the server takes up to 1,000)
BATCH_BYTES = 512 * 1024  # and at most this much JSON (the server's default limit is 1 MiB)
LOCK_HEADER = "Channelsync-Lock"
MAX_RETRY_AFTER = 60.0
MAX_REASON = 300  # characters of a server's error message shown


class HttpTargetError(TargetError):
    """The server answered with an error that has no more specific class."""


class Unauthorized(HttpTargetError):
    """401: no token, or one the server does not know (revoked, or for another server)."""


class Forbidden(HttpTargetError):
    """403: the token's role does not allow the call (a read token on a write)."""


class NotFound(HttpTargetError):
    """404."""


class Unreachable(HttpTargetError):
    """No answer: connection refused, timed out, TLS failure."""


class _OutcomeUnknown(Exception):
    """A write reached the server (perhaps) but its answer was lost."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, when.timestamp() - time.time()))


def _api_root(url: str, path: str, extra: str) -> str:
    """The API's root for the tenant the URL's path names: none, or ``/tenants/NAME``."""
    from channelsync.tenant.repository import valid_tenant_name

    parts = path.strip("/").split("/") if path.strip("/") else []
    if not extra and not parts:
        return "/v1"
    if not extra and len(parts) == 2 and parts[0] == "tenants" and valid_tenant_name(parts[1]):
        return f"/v1/tenants/{parts[1]}"
    raise TargetError(
        f"bad target URL '{url}': use https://HOST[:PORT] for the server's tenant 'default' or "
        "https://HOST[:PORT]/tenants/NAME for another (NAME: lower-case letters, digits, '-')"
    )


def api_url(url: str) -> str:
    """The API root of the tenant a target URL names (``https://h/tenants/acme`` →
    ``https://h/v1/tenants/acme``); TargetError for a URL that names none."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" + _api_root(url, parts.path, parts.query)


def _secrets_of(op: Operation) -> tuple[str, ...]:
    """The secret values an operation carries (to keep out of any message)."""
    from channelsync.document import get_path, secret_paths

    if op.body is None:
        return ()
    found = (get_path(op.body, p) for p in secret_paths(op.kind))
    return tuple(value for value in found if isinstance(value, str))


def _batch_item(op: Operation) -> dict[str, Any]:
    """An operation as a ``POST /v1/batch`` item: what its PUT or DELETE would carry."""
    item: dict[str, Any] = {
        "action": op.action,
        "kind": op.kind,
        "name": op.name,
        "idempotency_key": uuid.uuid4().hex,
    }
    if op.action != "create":
        item["if_match"] = f'"{op.expected_etag}"' if op.expected_etag is not None else "*"
    if op.action == "rename":
        item["renamed_from"] = op.previous_name
    if op.action != "delete":
        if op.body is None:
            raise TargetError(f"{op.action} of {op.kind} '{op.name}' carries no body")
        item["body"] = op.body
    return item


UNUSED_MODULES = ("trio", "httpx._main")


def _lean_httpx() -> None:
    """httpx without what a synchronous client never runs (~90 ms of a plan's start-up):
    httpcore imports trio when it is installed, for async clients under trio, and httpx its
    command line (click, rich, pygments). Hidden while both are first imported only (httpx
    imports httpcore with its first client); both stay importable for everyone else."""
    if "httpcore" in sys.modules:
        return
    hidden = [name for name in UNUSED_MODULES if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # importing it: ImportError
    try:
        import httpcore  # noqa: F401
        import httpx  # noqa: F401
    finally:
        for name in hidden:
            del sys.modules[name]


class HttpTarget:
    """A tenant served by ``channelsync serve`` (or any server implementing docs/rest-api.md)."""

    def __init__(
        self,
        url: str,
        *,
        readonly: bool = False,
        token: str | None = None,
        environment: str | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        _lean_httpx()
        import httpx

        refuse_credentials(url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetError(f"bad target URL '{url}': use https://HOST[:PORT]")
        self._api = _api_root(url, parts.path, parts.query or parts.fragment)
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise TargetError(
                f"refusing plain http:// to {parts.hostname}: the token and secrets would "
                "cross the network unencrypted; use https:// (http:// is for loopback only)"
            )
        own = token_variable(environment) if environment is not None else None
        self._token_env = own if own and os.environ.get(own) else TOKEN_ENV
        token = token or os.environ.get(self._token_env)
        if not token:
            either = f"{own} (or {TOKEN_ENV})" if own else TOKEN_ENV
            raise TargetError(
                f"no API token for {url}: set {either} (create one on the server with "
                "'channelsync token add NAME --role read|write')"
            )
        self.url = url.rstrip("/")
        base = f"{parts.scheme}://{parts.netloc}"
        self._token = token
        self.readonly = readonly
        self.retries = retries
        self.backoff = backoff
        self._holder: str | None = None
        self._fingerprints: dict[str, str] = {}
        self._batches = True  # until the server answers that it has no /v1/batch
        self._trust = trust_for()
        self._client = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            # plain http:// never uses TLS: a context that trusts no CA, not the ~20 ms bundle
            verify=self._trust.context()
            if parts.scheme == "https"
            else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
        )

    def close(self) -> None:
        self._client.close()

    # --- transport -----------------------------------------------------------------------

    def _pause(self, attempt: int, response: httpx.Response | None = None) -> None:
        wait = _retry_after(response.headers.get("retry-after")) if response is not None else None
        if wait is None:
            wait = random.uniform(0, min(8.0, self.backoff * 2**attempt))
        time.sleep(wait)

    def _send(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        """One call with retries; raises _OutcomeUnknown for a write whose answer was lost."""
        import httpx

        attempt = 0
        while True:
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                untrusted = cert_error(exc)
                if untrusted is not None:
                    raise Unreachable(self._untrusted(untrusted)) from None
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if attempt < self.retries and (idempotent or never_sent):
                    self._pause(attempt)
                    attempt += 1
                    continue
                if not never_sent and not idempotent:
                    raise _OutcomeUnknown from None
                reason = str(exc) or type(exc).__name__
                raise Unreachable(
                    f"cannot reach the target at {self.url} ({reason}); is the server running "
                    "and the address right?"
                ) from None
            status = response.status_code
            retryable = status == 429 or (status >= 500 and idempotent)
            if retryable and attempt < self.retries:
                self._pause(attempt, response)
                attempt += 1
                continue
            if status >= 500 and not idempotent:
                raise _OutcomeUnknown
            return response

    def _untrusted(self, error: ssl.SSLCertVerificationError) -> str:
        detail = error.verify_message or error.reason or "certificate verify failed"
        return (
            f"certificate of {self.url} not trusted ({detail}; trusted: {self._trust.setting}): "
            "set SSL_CERT_FILE to a PEM file with the CA that signed it"
        )

    def _reason(self, response: httpx.Response, secrets: tuple[str, ...]) -> str:
        """The server's own sentence for an error (``error``, or ``error.message``), without the
        token or the request's secrets in any form, without hidden characters, and short: a
        hostile or broken server chooses these words."""

        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error", body) if isinstance(body, dict) else None
        if isinstance(error, dict):
            error = error.get("message")
        return self._clean(error, secrets) or response.reason_phrase or "error"

    def _clean(self, error: Any, secrets: tuple[str, ...]) -> str:
        """A server's sentence without the token, the secrets or hidden characters, short."""
        from channelsync.errors import visible
        from channelsync.probe.diagnose import scrub

        text = " ".join(error.split()) if isinstance(error, str) else ""
        text = visible(scrub(text, [self._token, *secrets]))
        if len(text) > MAX_REASON:
            text = text[: text.rfind(" ", 0, MAX_REASON) if " " in text else MAX_REASON] + " [...]"
        return text

    def _check(
        self, response: httpx.Response, *, ok: tuple[int, ...] = (), secrets: tuple[str, ...] = ()
    ) -> httpx.Response:
        status = response.status_code
        if status < 300 or status in ok:
            return response
        raise self._failure(status, self._reason(response, secrets))

    def _failure(self, status: int, reason: str) -> TargetError:
        """The error for a refusal with ``status``, the server's (cleaned) ``reason``."""
        where = f"{self.url}: {reason}"
        if status == 401:
            return Unauthorized(
                f"{self.url} refused the API token (401): set {self._token_env} to a valid token"
            )
        if status == 403:
            return Forbidden(f"{where} (403); use a token with the write role in {self._token_env}")
        if status == 404:
            return NotFound(f"{where} (404)")
        if status == 412:
            return ConflictError(f"{where} (412); plan again")
        return HttpTargetError(f"{where} ({status})")

    def _get(self, path: str, **params: Any) -> httpx.Response:
        return self._check(self._send("GET", path, idempotent=True, params=params))

    def _write(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        secrets: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a write once; after a lost answer, find out whether it happened before resending."""
        if self.readonly:
            raise TargetError("this target was opened read-only")
        headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        if self._holder is not None:
            headers[LOCK_HEADER] = self._holder
        for attempt in range(self.retries + 1):
            try:
                response = self._send(method, path, idempotent=False, headers=headers, **kwargs)
            except _OutcomeUnknown:
                done = self._send(
                    "GET", f"{self._api}/writes/{headers['Idempotency-Key']}", idempotent=True
                )
                if done.status_code == 200:
                    return done
                self._check(done, ok=(404,), secrets=secrets)
                self._pause(attempt)
                continue
            return self._check(response, secrets=secrets)
        raise Unreachable(
            f"{method} {path} on {self.url}: no answer after {self.retries + 1} tries; "
            "it was not applied (checked); run apply again"
        )

    # --- the Target interface ------------------------------------------------------------

    def read(self) -> dict[Key, LiveResource]:
        out: dict[Key, LiveResource] = {}
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        while True:
            page = self._get(f"{self._api}/resources", **params).json()
            for item in page["items"]:
                data = item["resource"]
                key = (data["kind"], data["name"])
                out[key] = LiveResource(data["kind"], data["name"], data, item["etag"])
            if not page.get("next"):
                return out
            params["after"] = page["next"]

    def fingerprint(self, secret: str) -> str:
        cached = self._fingerprints.get(secret)
        if cached is None:
            cached = self.fingerprint_many([secret])[0]
        return cached

    def fingerprint_many(self, secrets: list[str]) -> list[str]:
        """Fingerprints of many secrets in one request (what plan uses when it can batch)."""
        missing = sorted({s for s in secrets if s not in self._fingerprints})
        if missing:
            response = self._check(
                self._send(
                    "POST", f"{self._api}/fingerprints", idempotent=True, json={"values": missing}
                ),
                secrets=tuple(missing),
            )
            self._fingerprints.update(zip(missing, response.json()["fingerprints"], strict=True))
        return [self._fingerprints[s] for s in secrets]

    def apply_many(self, operations: list[Operation]) -> tuple[int, TargetError | None]:
        """``POST /v1/batch`` in chunks: each item as its PUT or DELETE (own If-Match and
        Idempotency-Key), so resending a chunk after a lost answer replays what was done and
        does the rest. A server without the endpoint gets one request per operation."""
        done = 0
        while done < len(operations):
            if not self._batches:
                try:
                    self.apply(operations[done])
                except TargetError as exc:
                    return done, exc
                done += 1
                continue
            chunk: list[tuple[Operation, dict[str, Any]]] = []
            size = 0
            for op in operations[done : done + BATCH_ITEMS]:
                item = _batch_item(op)
                size += len(json.dumps(item))
                if chunk and size > BATCH_BYTES:
                    break
                chunk.append((op, item))
            applied, error = self._batch(chunk)
            done += applied
            if error is not None:
                return done, error
        return done, None

    def _batch(
        self, chunk: list[tuple[Operation, dict[str, Any]]]
    ) -> tuple[int, TargetError | None]:
        if self.readonly:
            raise TargetError("this target was opened read-only")
        secrets = tuple(s for op, _ in chunk for s in _secrets_of(op))
        headers = {LOCK_HEADER: self._holder} if self._holder is not None else {}
        items = [item for _, item in chunk]
        response = self._send(
            "POST", "/v1/batch", idempotent=True, json={"items": items}, headers=headers
        )
        if response.status_code in (404, 405):  # a server from before the endpoint
            self._batches = False
            return 0, None
        results = self._check(response, secrets=secrets).json()["results"]
        for index, result in enumerate(results):
            if result["status"] >= 300:
                return index, self._failure(
                    result["status"], self._clean(result.get("error"), secrets) or "error"
                )
        return len(results), None

    def apply(self, operation: Operation) -> None:
        op = operation
        path = f"{self._api}/{kinds.get(op.kind).collection}/{quote(op.name, safe='')}"
        etag = f'"{op.expected_etag}"' if op.expected_etag is not None else "*"
        if op.action == "delete":
            self._write("DELETE", path, {"If-Match": etag})
            return
        if op.body is None:
            raise TargetError(f"{op.action} of {op.kind} '{op.name}' carries no body")
        secrets = _secrets_of(op)
        if op.action == "create":
            self._write("PUT", path, {"If-None-Match": "*"}, secrets, json=op.body)
        elif op.action == "rename":
            params = {"renamed_from": op.previous_name}
            self._write("PUT", path, {"If-Match": etag}, secrets, json=op.body, params=params)
        else:
            self._write("PUT", path, {"If-Match": etag}, secrets, json=op.body)

    def _renew_lock(self, info: LockInfo) -> None:
        """The heartbeat: taking the lock again as its holder renews its lease."""
        with contextlib.suppress(TargetError, _OutcomeUnknown):
            self._send(
                "PUT",
                "/v1/lock",
                idempotent=True,
                json=asdict(info),
                headers={"If-None-Match": "*"},
            )

    @contextlib.contextmanager
    def lock(self, info: LockInfo, timeout: float) -> Iterator[None]:
        if self.readonly:
            raise TargetError("this target was opened read-only")
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            # Taking the lock again with the same holder id succeeds, so this PUT is safe
            # to repeat after a lost answer: it is sent as an idempotent call.
            response = self._check(
                self._send(
                    "PUT",
                    f"{self._api}/lock",
                    idempotent=True,
                    json=asdict(info),
                    headers={"If-None-Match": "*"},
                ),
                ok=(409,),
            )
            if response.status_code != 409:
                break
            body = response.json()
            holder = LockInfo(body["holder"], body["host"], int(body["pid"]), body["since"])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeout(
                    f"the target is locked by another apply ({holder.describe()}); "
                    f"waited {timeout:g} s. Try again later, or raise --lock-timeout"
                )
            time.sleep(min(delay * random.uniform(0.5, 1.0), remaining))
            delay = min(delay * 2, 1.0)
        self._holder = info.holder
        try:
            with lease.heartbeat(lambda: self._renew_lock(info), lease.LEASE_SECONDS):
                yield
        finally:
            self._holder = None
            with contextlib.suppress(TargetError):
                self._send(
                    "DELETE",
                    f"{self._api}/lock",
                    idempotent=True,
                    headers={"If-Match": f'"{info.holder}"'},
                )
