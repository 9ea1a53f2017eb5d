"""What bounds `channelsync serve` against a hostile client: connections, bodies, the log.

Each bound was found by attacking the server as it was (docs/rest-api.md, "Limits"):

- uvicorn arms no timer until a first response, so a connection that sends nothing, or sends
  its headers one byte a minute (slowloris), stays open forever; 400 of them exhausted the
  file descriptors, and every failed ``accept`` logged a traceback (a 900,000-line log in a
  few seconds). ``protocol`` gives every request ``request_timeout`` seconds to arrive whole
  (headers and body), and caps the open connections: a new one closes the connection that
  has been idle the longest (so a flood of idle connections cannot keep a real request out),
  and is refused only when every connection is busy.
- A body was read into memory whatever its size (20 MiB answered 200). ``Guard`` reads at
  most ``max_body`` bytes, Content-Length or chunked, and answers 413 past it.
- An unexpected exception was a plain-text 500 and a 60-line traceback; ``Guard`` answers
  ``{"error": ...}`` and logs one line (type and place, never the request).
- ``OncePerInterval`` keeps every log condition to one line per interval, with a count.
"""

from __future__ import annotations

import json
import logging
import math
import resource
import socket
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when serving, so that `channelsync --help` reads the defaults fast
    import asyncio

    from fastapi import FastAPI, Request, Response
    from uvicorn.protocols.http.h11_impl import H11Protocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_REQUEST_TIMEOUT = 10.0  # seconds for a whole request (headers and body) to arrive
KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection closes after this
MAX_HEADER_BYTES = 16 * 1024  # the request line and headers together (h11's buffer)
# asyncio accepts up to the listen backlog of connections at once, before any of them reaches
# the connection cap, so the cap leaves that many descriptors free, and as many again for the
# database, the log and the tokens file.
ACCEPT_BATCH = 64
RESERVED_FDS = 2 * ACCEPT_BATCH
LOG_INTERVAL = 60.0
INTERNAL = "internal error; the server log has a line about it"

log = logging.getLogger("channelsync.server")


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}, separators=(",", ":")).encode()


async def _respond(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = error_body(message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Bodies read whole up to ``max_body`` (413 past it, before more is read), HEAD answered
    as GET without a body, and no exception ever reaching uvicorn (which logs a traceback)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body: int = DEFAULT_MAX_BODY,
        larger: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.larger = larger or {}  # a path ending so may have a body up to this many bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        method = scope["method"]
        head = method == "HEAD"

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        body = await self._body(scope, receive, tracked)
        if body is None:
            return
        first = True

        async def replay() -> Message:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if head:  # in place, so the route the router sets is seen outside (metrics)
            scope["method"] = "GET"
        try:
            await self.app(scope, replay, tracked)
        except Exception as exc:  # one line, never the request's data
            log.error("internal error on %s %s: %s", method, _route(scope), where(exc))
            if not started:
                await _respond(tracked, 500, INTERNAL, [])

    async def _body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None after answering 413 (or when the client went away)."""
        declared = _header(scope, b"content-length")
        path = str(scope.get("path", ""))
        limit = max([self.max_body] + [n for end, n in self.larger.items() if path.endswith(end)])
        too_big = f"the request body is larger than {limit} bytes" + (
            " (the server's --max-body)" if limit == self.max_body else ""
        )
        close = [(b"connection", b"close")]
        if declared is not None:
            if not declared.isdigit():
                await _respond(send, 400, "Content-Length is not a number", close)
                return None
            if int(declared) > limit:
                await _respond(send, 413, too_big, close)
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _respond(send, 413, too_big, close)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1").strip()
    return None


def _route(scope: Scope) -> str:
    """The route template (``/v1/channels/{name}``), so a log line never carries a raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(no route)"


def where(exc: BaseException) -> str:
    """An exception as its type and innermost place, not its message (which may quote input)."""
    frames = traceback.extract_tb(exc.__traceback__)
    place = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{place}"


class OncePerInterval(logging.Filter):
    """One line per condition (logger and message template) per interval; the next line says
    how many were left out. Tracebacks become the exception's type and place."""

    def __init__(self, interval: float = LOG_INTERVAL, exempt: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.interval = interval
        self.exempt = exempt
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()} ({where(record.exc_info[1])})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        if record.name in self.exempt:
            return True
        key = (record.name, str(record.msg)[:200])
        now = time.monotonic()
        last, left_out = self._seen.get(key, (-math.inf, 0))
        if now - last < self.interval:
            self._seen[key] = (last, left_out + 1)
            return False
        if left_out:
            record.msg = f"{record.getMessage()} ({left_out} more like this in the last " + (
                f"{self.interval:g} s)"
            )
            record.args = ()
        self._seen[key] = (now, 0)
        return True


DEFAULT_FINGERPRINT_RATE = 20000  # secret values per token per minute


class Budget:
    """A token bucket per API token: ``per_minute`` units a minute, as many at once at most.

    ``POST /v1/fingerprints`` answers whether a value is a stored secret, for anyone with a
    read token: each value asked costs one unit, so guessing is bounded per token while a
    plan (one request for all its secrets) is not held up."""

    def __init__(self, per_minute: int, max_keys: int | None = None) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys  # beyond this many buckets the oldest is forgotten
        self._buckets: dict[str, tuple[float, float]] = {}  # token -> (units, when)

    def wait(self, who: str) -> float:
        """Seconds until ``who`` may spend one unit (0: now); nothing is spent."""
        left, when = self._buckets.get(who, (self.capacity, time.monotonic()))
        left = min(self.capacity, left + (time.monotonic() - when) * self.rate)
        return 0.0 if left >= 1 else (1 - left) / self.rate

    def take(self, who: str, units: int) -> float:
        """0 when ``who`` may spend ``units`` now (they are spent), else seconds to wait."""
        cost = min(float(max(units, 1)), self.capacity)
        now = time.monotonic()
        left, when = self._buckets.get(who, (self.capacity, now))
        left = min(self.capacity, left + (now - when) * self.rate)
        if self.max_keys is not None and who not in self._buckets:
            while len(self._buckets) >= self.max_keys:  # many clients: memory stays bounded
                del self._buckets[next(iter(self._buckets))]
        if left < cost:
            self._buckets[who] = (left, now)
            return (cost - left) / self.rate
        self._buckets[who] = (left - cost, now)
        return 0.0


def error_handlers(app: FastAPI) -> None:
    """404, 405, FastAPI's own 422 and any unexpected exception as ``{"error": ...}``."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            text = "no such endpoint; the endpoints are in docs/rest-api.md"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            text = f"{request.method} is not allowed here; allowed: {allowed}"
        else:
            text = str(exc.detail)
        return JSONResponse({"error": text}, exc.status_code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, 422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Guard logs the one line when starlette raises the exception on
        return JSONResponse({"error": INTERNAL}, 500)


def connection_limit(wanted: int) -> int:
    """``wanted``, or fewer when the process may not open that many descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - RESERVED_FDS))


def _no_delay(transport: asyncio.Transport) -> None:
    """Send each write at once. asyncio does so only for sockets made with proto=IPPROTO_TCP,
    and the listening socket (``socket.create_server``) has proto 0, so its connections
    waited for the client's delayed ACK (40 ms) between a response's headers and its body."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def protocol(max_connections: int, request_timeout: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol with a deadline for each request and a connection cap."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Guarded(H11Protocol):
        admitted = False
        idle_since = 0.0
        deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.connections) >= max_connections and not self._evict_one():
                log.warning(
                    "refused a connection: all %d connections are busy (--max-connections)",
                    max_connections,
                )
                transport.close()
                return
            self.admitted = True
            self.idle_since = time.monotonic()
            _no_delay(transport)
            super().connection_made(transport)
            self._arm()

        def _evict_one(self) -> bool:
            idle = [
                c
                for c in self.connections
                if isinstance(c, Guarded) and (c.cycle is None or c.cycle.response_complete)
            ]
            if not idle:
                return False
            oldest = min(idle, key=lambda c: c.idle_since)
            log.warning(
                "closed the longest idle connection: %d connections open (--max-connections)",
                max_connections,
            )
            self.connections.discard(oldest)
            oldest.transport.close()
            return True

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self.admitted:
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self.admitted:
                return
            if self.deadline is None and self._receiving():
                self._arm()
            super().data_received(data)

        def handle_events(self) -> None:
            super().handle_events()
            if not self._receiving():
                self._disarm()

        def on_response_complete(self) -> None:
            self.idle_since = time.monotonic()
            super().on_response_complete()

        def _receiving(self) -> bool:
            return self.conn.their_state in (h11.IDLE, h11.SEND_BODY)

        def _arm(self) -> None:
            self._disarm()
            self.deadline = self.loop.call_later(request_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def _too_slow(self) -> None:
            self.deadline = None
            if self._receiving() and not self.transport.is_closing():
                log.warning(
                    "closed a connection that sent no whole request within %g s", request_timeout
                )
                self.transport.close()

    return Guarded
