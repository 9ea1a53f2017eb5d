"""``serve --monitor-every``: the monitor's part of the application: its start and stop, and
its check metrics in the server's one registry (``server.metrics.REGISTRY``, served at
``GET /metrics``; each caller sees the series of the tenants its token reaches).

The metrics come from the monitor's memory (``MonitorCollector``), so a scrape never waits on
the store or the mail servers.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from channelsync.monitor.metrics import MonitorCollector
from channelsync.monitor.service import Monitor
from channelsync.server.context import Context
from channelsync.server.metrics import REGISTRY


def install(app: FastAPI, ctx: Context, monitor: Monitor) -> None:
    """``app.state.monitor`` is the monitor, for the handlers that report to it (a posted
    drift report: ``monitor.drift_reported``)."""
    app.state.monitor = monitor
    collector = MonitorCollector(monitor.latest)

    async def start() -> None:
        REGISTRY.register(collector)
        monitor.start()

    async def stop() -> None:
        REGISTRY.unregister(collector)
        await asyncio.to_thread(monitor.stop)

    app.router.on_startup.append(start)
    app.router.on_shutdown.insert(0, stop)
