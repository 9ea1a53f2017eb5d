"""The console's view of the store's one check history (``monitor.history``): the scheduled
monitor's results and the Test connection button's, side by side, each naming who ran it.

Every function runs on the database thread with the store bound to the page's tenant
(``Context.db``); the button's results are kept without moving the monitor's alert state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from channelsync.monitor.history import BUTTON, CheckResult, History, from_probe

if TYPE_CHECKING:
    from channelsync.probe.check import Result
    from channelsync.server.store import Store


def ensure(store: Store) -> None:
    if store.sqlite is not None:  # PostgreSQL keeps no check history yet (NEEDS_SQLITE)
        History.of(store).ensure()


def recent(store: Store, kind: str, name: str, limit: int) -> list[CheckResult]:
    """The newest ``limit`` results of one resource, newest first."""
    if store.sqlite is None:
        return []
    return History.of(store).recent(store.name, kind, name, limit)


def latest(store: Store, kind: str) -> dict[str, list[CheckResult]]:
    """Per resource name, the newest result of each of its checks."""
    found: dict[str, list[CheckResult]] = {}
    if store.sqlite is None:
        return found
    for result in History.of(store).latest(store.name, kind):
        found.setdefault(result.key.name, []).append(result)
    return found


NEEDS_SQLITE = "Check history and drift reports need the SQLite store for now."


def record(store: Store, results: Sequence[Result], token_name: str, at: float) -> None:
    """A Test connection press by the token ``token_name``."""
    if store.sqlite is None:
        return
    worker = f"{BUTTON}{token_name}"
    History.of(store).keep_results(from_probe(r, store.name, at, worker) for r in results)
