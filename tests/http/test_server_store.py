"""The served store composes the tenant's rules; its database work never blocks the loop."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx

from channelsync.server.store import Store
from channelsync.targets.base import Operation
from tests.http.conftest import Server


def test_a_write_waiting_for_the_database_does_not_stop_other_requests(server: Server) -> None:
    blocker = sqlite3.connect(server.db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the tenant's write lock
    answers: list[int] = []

    def create() -> None:
        response = httpx.put(
            f"{server.url}/v1/scripts/Waiting",
            json={"kind": "EmailScript", "name": "Waiting", "queues": []},
            headers={"Authorization": f"Bearer {server.write_token}", "If-None-Match": "*"},
            timeout=30,
        )
        answers.append(response.status_code)

    writer = threading.Thread(target=create)
    writer.start()
    try:
        time.sleep(0.5)  # the write now waits for SQLite's lock
        started = time.monotonic()
        health = httpx.get(f"{server.url}/v1/health", timeout=5)
        assert health.status_code == 200
        assert time.monotonic() - started < 1.0
        assert answers == []  # still waiting: serialised behind the other writer
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        writer.join(timeout=30)
    assert answers == [201]


def test_request_state_is_passed_to_each_write_not_kept_on_the_store(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'tenant.db'}")
    try:
        script = {"kind": "EmailScript", "name": "S", "queues": []}
        store.write(
            Operation("create", "EmailScript", "S", body=script), actor="ci", key="k-1", holder=None
        )
        etag = store.resource("EmailScript", "S")
        assert etag is not None
        store.write(
            Operation(
                "update",
                "EmailScript",
                "S",
                body={**script, "queues": ["Q"]},
                expected_etag=etag[1],
            ),
            actor="laptop",
            key=None,
            holder=None,
        )
        entries = [(r[2], r[5], r[6]) for r in store.audit_after(0, 10)]
        outcome = store.outcome("k-1")
    finally:
        store.close()
    assert entries == [
        ("ci", "create", '["kind", "name", "queues"]'),
        ("laptop", "update", '["queues"]'),
    ]
    assert outcome is not None and outcome["action"] == "create"
    assert not {"actor", "request_key", "_holder"} & set(vars(store))
