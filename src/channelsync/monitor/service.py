"""The monitor inside ``serve``: every enabled channel and SMTP server of every tenant, tested
on a schedule with ``channelsync test``'s checks, kept in the history, alerted on change.

It runs on threads of its own, never on the event loop: one scheduler thread holds its own
store connection (claims, results, alerts) and hands due checks to a bounded pool of daemon
worker threads, which only talk to mail servers. Stopping is bounded: the scheduler ends at
its next tick, and a check still under way is abandoned (its daemon thread ends with the
process; each check is bounded by its own timeout anyway).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from channelsync.defaults import BACKLOG_AFTER_MINUTES, PROBE_TIMEOUT
from channelsync.monitor import alerts
from channelsync.monitor.checks import STORED_SOURCE, Round, collect
from channelsync.monitor.history import CheckKey, CheckResult, Damping, History, from_probe
from channelsync.probe.check import Check

log = logging.getLogger("channelsync.monitor")
DEFAULT_CONCURRENCY = 8
DEFAULT_ALERT_AFTER = 2
STOP_WAIT = 5.0


@dataclass
class Settings:
    interval: float
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = PROBE_TIMEOUT
    alert_after: int = DEFAULT_ALERT_AFTER  # consecutive results that confirm a change
    backlog_after_minutes: float = BACKLOG_AFTER_MINUTES
    destinations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def confirm_after(self) -> float:
        """How soon a result that disagrees with the alerted state is checked again."""
        return max(1.0, min(60.0, self.interval / 5))

    @property
    def resync_every(self) -> float:
        """How often the tenant's resources (and stored secrets) are read again."""
        return min(self.interval, 30.0)


@dataclass
class _Scheduled:
    check: Check
    round: Round  # its tenant's


@dataclass
class _Job:
    key: CheckKey
    check: Check
    round: Round


class Monitor:
    """Start with ``start()``; ``latest()`` is the newest result of every check (for the
    metrics). Each turn that reads the store again reads its list of tenants too, so a
    tenant added while serving is tested from then on, and a removed one is forgotten."""

    def __init__(self, target_url: str, settings: Settings) -> None:
        self.target_url = target_url
        self.settings = settings
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.sender = alerts.AlertSender(settings.destinations)
        self._stop = threading.Event()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._done: queue.Queue[tuple[_Job, CheckResult]] = queue.Queue()
        self._latest: dict[CheckKey, CheckResult] = {}
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._drift: queue.Queue[alerts.Alert] = queue.Queue(64)
        self._checks: dict[CheckKey, _Scheduled] = {}  # the scheduler thread's own
        self._next_sync = 0.0

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self.sender.start()
        for i in range(self.settings.concurrency):
            self._spawn(self._work, f"monitor-{i}")
        self._spawn(self._schedule, "monitor")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = STOP_WAIT) -> None:
        """Stop within about ``timeout`` seconds, whatever the checks under way do."""
        self._stop.set()
        for _ in range(self.settings.concurrency):
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.name == "monitor":
                thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        self.sender.stop(max(0.1, deadline - time.monotonic()))

    def latest(self) -> list[CheckResult]:
        """The newest result of every check: this replica's as they come in, the others'
        as of the last read of the store (every ``resync_every`` seconds)."""
        return [self._latest[key] for key in sorted(self._latest)]

    def drift_reported(self, tenant: str, repository: str, differences: list[str]) -> None:
        """The hook for a posted drift report: one alert per distinct report (a report with
        no difference sends nothing)."""
        if differences:
            with contextlib.suppress(queue.Full):
                self._drift.put_nowait(alerts.for_drift(tenant, repository, differences))

    # --- the scheduler thread --------------------------------------------------------

    def _schedule(self) -> None:
        from channelsync.server.store import Store

        store = None
        try:
            store = Store(self.target_url)
            history = History.of(
                store,
                damping=Damping(self.settings.alert_after, self.settings.confirm_after),
            )
            history.ensure()
            self._loop(store, history)
        except Exception as exc:  # one line, not a traceback in the server's log
            log.error("monitor: stopped: %s", exc)
        finally:
            if store is not None:
                store.close()

    def _loop(self, store: Any, history: History) -> None:
        while not self._stop.is_set():
            try:
                self._turn(store, history)
            except Exception as exc:  # the store was busy or failed: try again shortly
                log.warning("monitor: %s; trying again", exc)
                self._stop.wait(1.0)

    def _turn(self, store: Any, history: History) -> None:
        """Read the tenants again when due, record what finished, hand out what is due (as
        many as there are idle workers, so other replicas take the rest), and wait."""
        interval = self.settings.interval
        now = time.time()
        if now >= self._next_sync:
            self._sync(store, history, now)
            # the scheduled checks' newest results (a Test connection press of one too)
            self._latest = {r.key: r for r in history.latest() if r.key in self._checks}
            self._next_sync = now + self.settings.resync_every
        self._record_finished(history)
        self._send_drift(history)
        free = self.settings.concurrency - self._busy
        if free > 0:
            hold = self.settings.timeout + 30
            for key in history.due(now, free):
                found = self._checks.get(key)
                if found is not None and history.claim(key, self.worker, now, interval, hold):
                    self._busy += 1
                    self._jobs.put(_Job(key, found.check, found.round))
        self._wait(history)

    def _sync(self, store: Any, history: History, now: float) -> None:
        """Every tenant's checks as the store holds them now; a tenant that cannot be read
        this time (its key just rotated, say) keeps the checks it had."""
        names = store.tenants.names()
        checks: dict[CheckKey, _Scheduled] = {}
        for tenant in names:
            try:
                bound = store.of(tenant)
                found = None if bound is None else collect(bound)
            except Exception as exc:
                log.warning("monitor: tenant '%s' not read: %s", tenant, exc)
                checks.update({k: v for k, v in self._checks.items() if k.tenant == tenant})
                continue
            if found is None:  # removed since the names were read
                continue
            mine = {
                CheckKey(tenant, c.kind, c.name, c.check): _Scheduled(c, found)
                for c in found.checks
            }
            history.sync(tenant, mine, self.settings.interval, now)
            checks.update(mine)
        for gone in set(history.scheduled_tenants()) - set(names):
            history.sync(gone, (), self.settings.interval, now)
        self._checks = checks

    def _wait(self, history: History) -> None:
        """Until the next check is due or a result comes in (at most a second)."""
        due = history.next_due()
        pause = 1.0 if due is None else min(1.0, max(0.05, due - time.time()))
        try:
            job, result = self._done.get(timeout=pause)
        except queue.Empty:
            return
        self._done.put((job, result))  # recorded by the next turn of the loop

    def _record_finished(self, history: History) -> None:
        while True:
            try:
                job, result = self._done.get_nowait()
            except queue.Empty:
                break
            self._busy -= 1
            self._latest = {**self._latest, result.key: result}
            now = time.time()
            change = history.record(result, now)
            if change is not None and (change.state == "failing" or not change.first):
                self.sender.send(alerts.for_change(change))
            self._alert_once(history, job, result, now)

    def _alert_once(self, history: History, job: _Job, result: CheckResult, now: float) -> None:
        """A certificate near expiry and a dated notice: one alert each, across replicas."""
        for subject, alert in alerts.for_result(job.check, result, now):
            if history.first_alert(job.key.tenant, subject, now):
                self.sender.send(alert)

    def _send_drift(self, history: History) -> None:
        import hashlib

        while True:
            try:
                alert = self._drift.get_nowait()
            except queue.Empty:
                return
            digest = hashlib.sha256(f"{alert.title}\n{alert.body}".encode()).hexdigest()
            if history.first_alert(alert.tenant, f"drift:{digest}", time.time()):
                self.sender.send(alert)

    # --- the worker threads ----------------------------------------------------------

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._done.put((job, self._run(job)))

    def _run(self, job: _Job) -> CheckResult:
        from channelsync.probe.mailbox import add_backlog_warnings
        from channelsync.probe.runner import run_check
        from channelsync.secrets import Resolver

        at = time.time()
        resolver = Resolver(sources={STORED_SOURCE: job.round.secrets})
        result = run_check(job.check, timeout=self.settings.timeout, secrets=resolver)
        add_backlog_warnings(
            [result], job.round.enabled, after_minutes=self.settings.backlog_after_minutes
        )
        return from_probe(result, job.key.tenant, at, self.worker)
