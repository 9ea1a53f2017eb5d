"""``GET /metrics``: what `channelsync serve` is doing, in the Prometheus text format.

``REGISTRY`` is the one registry of the server: every metric here is registered with it, and
other modules add their own collectors to it (``REGISTRY.register(collector)``). Requests are
counted by route *template* (``/v1/channels/{name:path}``), never by raw path, so a scan of
random paths cannot create unbounded series, and no label ever holds a token, a body or a
resource name.

The endpoint takes any API token (read or write), or the separate metrics token: a scraper
then holds no API token at all. The metrics token comes from ``CHANNELSYNC_METRICS_TOKEN`` or
a file (``serve --metrics-token-file``), never from the command line (where ``ps`` shows it),
and the server keeps only its SHA-256 hash, compared in constant time like the API tokens.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from channelsync.server.context import Context

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

METRICS_TOKEN_ENV = "CHANNELSYNC_METRICS_TOKEN"
NO_ROUTE = "(no route)"

REGISTRY = CollectorRegistry()

REQUESTS = Counter(
    "channelsync_http_requests",
    "Requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "channelsync_http_request_duration_seconds",
    "Time to answer a request, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
LOCK_WAITS = Counter(
    "channelsync_lock_waits",
    "Attempts to take the apply lock while another apply held it (answered 409).",
    ["tenant"],
    registry=REGISTRY,
)
LOCKS_TAKEN = Counter(
    "channelsync_locks_taken", "Apply locks taken.", ["tenant"], registry=REGISTRY
)
WRITES = Counter(
    "channelsync_writes",
    "Resource writes applied, by tenant, kind and action (create, update, rename, delete).",
    ["tenant", "kind", "action"],
    registry=REGISTRY,
)
BATCHES = Counter(
    "channelsync_batches", "POST /v1/batch requests applied.", ["tenant"], registry=REGISTRY
)
RESOURCES = Gauge(
    "channelsync_resources",
    "Resources stored, by tenant and kind (counted at each scrape).",
    ["tenant", "kind"],
    registry=REGISTRY,
)


class RequestMetrics:
    """Counts and times every HTTP request by its route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        start = time.perf_counter()
        status = [500]

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = route_template(scope)
            REQUESTS.labels(method, route, str(status[0])).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - start)


def route_template(scope: Scope) -> str:
    """The template of the route that answered (``/v1/tenants/{tenant}/channels/{name:path}``),
    never the raw path. FastAPI keeps an included router's routes under their own path and
    names the include's prefix in the scope; without it (another FastAPI), the route's path."""
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return NO_ROUTE
    included = (scope.get("fastapi") or {}).get("included_router")
    prefix = getattr(getattr(included, "include_context", None), "prefix", "")
    return (prefix if isinstance(prefix, str) else "") + path


async def endpoint(ctx: Context, request: Request, metrics_hash: str | None) -> Response:
    """The exposition, for the metrics token (every tenant) or any API token (the series of
    the tenants it reaches: a token never learns of another tenant, not even its name)."""
    from channelsync.defaults import DEFAULT_TENANT

    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    reaches: Callable[[str], bool] = lambda tenant: True  # noqa: E731
    if not (scheme.lower() == "bearer" and is_metrics_token(token.strip(), metrics_hash)):
        reaches = ctx.caller(request).reaches

    def work(store: Any) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        for name in store.tenants.names():
            bound = store.of(name) if reaches(name) else None
            if bound is not None:
                found[name] = bound.counts()
        return found

    counts = await ctx.db(work, tenant=DEFAULT_TENANT)
    body, media_type = exposition(counts)
    return Response(_only_reached(body, reaches), media_type=media_type)


_TENANT_LABEL = re.compile(rb'[{,]tenant="([^"]*)"')


def _only_reached(body: bytes, reaches: Callable[[str], bool]) -> bytes:
    """The exposition without the samples of tenants the caller does not reach (a collector
    added to ``REGISTRY``, such as the monitor's, labels each sample with its tenant)."""
    kept = []
    for line in body.splitlines(keepends=True):
        found = _TENANT_LABEL.search(line) if not line.startswith(b"#") else None
        if found is None or reaches(found.group(1).decode()):
            kept.append(line)
    return b"".join(kept)


def is_metrics_token(token: str, wanted_hash: str | None) -> bool:
    """Whether ``token`` is the metrics token whose hash the server holds."""
    from channelsync.server.tokens import digest

    return wanted_hash is not None and hmac.compare_digest(digest(token), wanted_hash)


def exposition(counts: dict[str, dict[str, int]]) -> tuple[bytes, str]:
    """The registry in the text format, with the resource counts just read (per tenant)."""
    from channelsync import kinds

    RESOURCES.clear()  # a removed tenant's series go with it
    for tenant, of_tenant in counts.items():
        for kind in kinds.all_kinds():
            RESOURCES.labels(tenant, kind.name).set(of_tenant.get(kind.name, 0))
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
