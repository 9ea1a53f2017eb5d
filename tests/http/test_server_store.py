"""The served store composes the tenant's rules; its database work never blocks the loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from channelsync.server.store import Store
from channelsync.targets.base import Operation
from channelsync.targets.postgresql import PostgresStore
from tests.http.conftest import STORES, Server, database_for


def test_a_write_waiting_for_the_database_does_not_stop_other_requests(server: Server) -> None:
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
    with server.writers_blocked():  # another process holds the tenant's write lock
        writer.start()
        time.sleep(0.5)  # the write now waits for the database's lock
        started = time.monotonic()
        health = httpx.get(f"{server.url}/v1/health", timeout=5)
        assert health.status_code == 200
        assert time.monotonic() - started < 1.0
        assert answers == []  # still waiting: serialised behind the other writer
    writer.join(timeout=30)
    assert answers == [201]


@pytest.fixture(params=STORES)
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """The served store on each store in turn (PostgreSQL's schema migrated first)."""
    database = database_for(request, request.param)
    if database is None:
        opened = Store(f"sqlite:///{tmp_path / 'tenant.db'}")
    else:
        schema = PostgresStore(database)
        schema.migrate()
        schema.close()
        opened = Store(database, key_file=tmp_path / "store.key")
    try:
        yield opened
    finally:
        opened.close()


def test_request_state_is_passed_to_each_write_not_kept_on_the_store(store: Store) -> None:
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
    assert entries == [
        ("ci", "create", '["kind", "name", "queues"]'),
        ("laptop", "update", '["queues"]'),
    ]
    assert outcome is not None and outcome["action"] == "create"
    assert not {"actor", "request_key", "_holder"} & set(vars(store))
