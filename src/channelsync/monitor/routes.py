"""``serve --monitor-every``: the monitor's part of the application (its start and stop, and
``GET /metrics`` behind a read token).

The metrics come from the monitor's memory (``MonitorCollector``), so a scrape never waits on
the store or the mail servers.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from channelsync.monitor.metrics import MonitorCollector
from channelsync.monitor.service import Monitor
from channelsync.server.context import Context


def install(app: FastAPI, ctx: Context, monitor: Monitor) -> None:
    """``app.state.monitor`` is the monitor, for the handlers that report to it (a posted
    drift report: ``monitor.drift_reported``)."""
    app.state.monitor = monitor
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(monitor.latest))

    @app.get("/metrics", tags=["meta"], summary="Prometheus metrics (read role)")
    async def metrics(request: Request) -> Response:
        ctx.auth(request, "read")
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def start() -> None:
        monitor.start()

    async def stop() -> None:
        await asyncio.to_thread(monitor.stop)

    app.router.on_startup.append(start)
    app.router.on_shutdown.insert(0, stop)
