"""The monitor's Prometheus metrics, defined once: ``serve`` exposes them from the history
(``MonitorCollector``), ``channelsync test --format prometheus`` writes them for
node_exporter's textfile collector (``text``).

Labels: ``tenant``, ``kind``, ``name`` and ``check`` (incoming or outgoing), as the check is
named by ``channelsync test``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from channelsync.monitor.history import CheckResult

LABELS = ("tenant", "kind", "name", "check")
Value = Callable[[CheckResult, float], float | None]

# name, help, the value of one result at a time (None: not known for that check)
METRICS: tuple[tuple[str, str, Value], ...] = (
    (
        "channelsync_check_up",
        "1 when the last connection test of the check passed, else 0",
        lambda r, now: 1.0 if r.ok else 0.0,
    ),
    (
        "channelsync_check_duration_seconds",
        "How long the last connection test took",
        lambda r, now: r.duration,
    ),
    (
        "channelsync_tls_cert_expiry_timestamp_seconds",
        "When the server's TLS certificate expires (Unix time)",
        lambda r, now: r.cert_expires_at,
    ),
    (
        "channelsync_mailbox_messages",
        "Messages in the channel's mailbox at the last test",
        lambda r, now: None if r.messages is None else float(r.messages),
    ),
    (
        "channelsync_mailbox_oldest_message_age_seconds",
        "Age of the oldest message in the channel's mailbox (0 when it is empty)",
        lambda r, now: _age(r, now),
    ),
    (
        "channelsync_last_check_timestamp_seconds",
        "When the check last ran (Unix time)",
        lambda r, now: r.at,
    ),
)


def _age(result: CheckResult, now: float) -> float | None:
    if result.oldest_at is not None:
        return max(0.0, now - result.oldest_at)
    return 0.0 if result.messages == 0 else None


def families(results: Iterable[CheckResult], now: float) -> list[GaugeMetricFamily]:
    found = list(results)
    out = []
    for name, help_text, value in METRICS:
        family = GaugeMetricFamily(name, help_text, labels=LABELS)
        for result in found:
            sample = value(result, now)
            if sample is not None:
                key = result.key
                family.add_metric([key.tenant, key.kind, key.name, key.check], sample)
        out.append(family)
    return out


class MonitorCollector(Collector):
    """The metrics of ``latest()``: the newest result of every check, kept in memory by the
    monitor, so a scrape never waits on the store (any registry may hold this collector)."""

    def __init__(self, latest: Callable[[], Sequence[CheckResult]]) -> None:
        self._latest = latest

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from families(self._latest(), time.time())


def text(results: Sequence[CheckResult]) -> str:
    """The Prometheus text exposition of ``results`` (the textfile collector's format)."""
    from prometheus_client.exposition import generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(lambda: results))
    return generate_latest(registry).decode()
