"""Two `channelsync serve` replicas on one PostgreSQL database are one service: writes spread
over both lose no update, a replica killed mid-apply leaves nothing the other cannot finish,
and locks, ETags, Idempotency-Keys and the audit log are shared."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from channelsync.targets.base import ConflictError, LockInfo, LockTimeout, Operation
from channelsync.targets.http import HttpTarget
from tests.http.conftest import Server, write_config
from tests.http.test_serve import api, cli_process


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str) -> Iterator[tuple[Server, Server]]:
    """Two replicas on one fresh database, started at the same moment (both migrate on
    start: one applies the schema, the other waits for it), sharing tokens and key file."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = Server(tmp_path / "a", pg_url)
    second = Server(tmp_path / "b", pg_url, replica_of=first)
    first.launch()
    second.launch()
    try:
        first.wait_ready()
        second.wait_ready()
        yield first, second
    finally:
        first.stop()
        second.stop()


def test_sixteen_writers_over_two_replicas_lose_no_update(
    replicas: tuple[Server, Server],
) -> None:
    """Read-modify-write with If-Match, alternating replicas: every queue lands."""
    setup = HttpTarget(replicas[0].url, token=replicas[0].write_token)
    script = {"kind": "EmailScript", "name": "Shared", "queues": []}
    setup.apply(Operation("create", "EmailScript", "Shared", body=script))
    setup.close()
    conflicts: list[int] = []

    def add_queue(n: int) -> None:
        served = replicas[n % 2]
        target = HttpTarget(served.url, token=served.write_token)
        try:
            while True:
                live = target.read()[("EmailScript", "Shared")]
                body = {**live.data, "queues": [*live.data["queues"], f"Q{n}"]}
                try:
                    target.apply(
                        Operation(
                            "update", "EmailScript", "Shared", body=body, expected_etag=live.etag
                        )
                    )
                    return
                except ConflictError:
                    conflicts.append(n)
        finally:
            target.close()

    threads = [threading.Thread(target=add_queue, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    reader = HttpTarget(replicas[1].url, token=replicas[1].read_token)
    try:
        queues = reader.read()[("EmailScript", "Shared")].data["queues"]
    finally:
        reader.close()
    assert sorted(queues) == sorted(f"Q{n}" for n in range(16))
    assert conflicts  # the writers did race (each lost round was a 412, not a lost update)


def test_sixteen_concurrent_applies_over_two_replicas_converge(
    replicas: tuple[Server, Server], workdir: Path, secrets_env: dict[str, str]
) -> None:
    write_config(workdir / "channels.d", 10)
    env = {**secrets_env, "CHANNELSYNC_TOKEN": replicas[0].write_token}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "channelsync",
                "apply",
                "--target",
                replicas[n % 2].url,
                "--auto-approve",
                "--skip-connection-tests",
                "--lock-timeout",
                "120",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(16)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * 16, results
    assert sum("Apply complete: 12 created." in out for out, _ in results) == 1
    with api(replicas[1], replicas[1].read_token) as client:
        audit = client.get("/v1/audit", params={"limit": 100}).json()["items"]
    assert len(audit) == 12  # every resource written exactly once, through either replica
    for served in replicas:
        final = cli_process("plan", "--target", served.url, "--detailed-exitcode", env=env)
        assert final.returncode == 0, final.stdout + final.stderr


def test_a_replica_killed_mid_apply_and_the_rerun_through_the_other_converges(
    replicas: tuple[Server, Server], workdir: Path, secrets_env: dict[str, str]
) -> None:
    doomed, survivor = replicas
    # enough for several POST /v1/batch requests (500 operations each): killed between two
    write_config(workdir / "channels.d", 2000)
    env = {**secrets_env, "CHANNELSYNC_TOKEN": doomed.write_token}
    output = workdir / "apply.out"
    with output.open("w") as sink:
        apply = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "channelsync",
                "apply",
                "--target",
                doomed.url,
                "--auto-approve",
                "--skip-connection-tests",
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    with api(survivor, survivor.read_token) as client:  # watched through the other replica
        deadline = time.monotonic() + 60
        while len(client.get("/v1/audit").json()["items"]) < 20:
            assert time.monotonic() < deadline and apply.poll() is None
            time.sleep(0.02)
        assert client.get("/v1/lock").json()["pid"] == apply.pid
    doomed.stop(signal.SIGKILL)
    apply.wait(timeout=120)
    assert apply.returncode == 1
    assert "cannot reach the target at" in output.read_text()
    argv = ["apply", "--target", survivor.url, "--auto-approve", "--skip-connection-tests"]
    rerun = cli_process(*argv, env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    final = cli_process("plan", "--target", survivor.url, "--detailed-exitcode", env=env)
    assert final.returncode == 0 and "No changes." in final.stdout
    with api(survivor, survivor.read_token) as client:
        page = client.get("/v1/channels", params={"limit": 2000}).json()
    assert len(page["items"]) == 2000


def test_a_lock_taken_through_one_replica_holds_on_the_other(
    replicas: tuple[Server, Server],
) -> None:
    one, other = replicas
    first = HttpTarget(one.url, token=one.write_token)
    second = HttpTarget(other.url, token=other.write_token)
    holder = LockInfo("apply-1", "ci-runner-7", os.getpid(), "2026-01-01T00:00:00Z")
    try:
        with first.lock(holder, 1):
            with api(other, other.read_token) as client:
                seen = client.get("/v1/lock")
            assert seen.status_code == 200
            assert seen.json() == {
                "holder": "apply-1",
                "host": "ci-runner-7",
                "pid": os.getpid(),
                "since": "2026-01-01T00:00:00Z",
            }
            with pytest.raises(LockTimeout) as caught, second.lock(LockInfo.mine("apply-2"), 0.3):
                pass
            assert str(caught.value) == (
                "the target is locked by another apply (host ci-runner-7, pid "
                f"{os.getpid()}, since 2026-01-01T00:00:00Z); waited 0.3 s. Try again later, "
                "or raise --lock-timeout"
            )
        with second.lock(LockInfo.mine("apply-3"), 1):  # released through the first replica
            pass
    finally:
        first.close()
        second.close()


def test_etags_idempotency_keys_and_the_audit_are_shared(
    replicas: tuple[Server, Server],
) -> None:
    one, other = replicas
    script = {"kind": "EmailScript", "name": "S", "queues": ["A"]}
    with api(one, one.write_token) as a, api(other, other.write_token) as b:
        created = a.put(
            "/v1/scripts/S", json=script, headers={"If-None-Match": "*", "Idempotency-Key": "k-1"}
        )
        assert created.status_code == 201
        etag = created.headers["etag"]
        assert b.get("/v1/scripts/S").headers["etag"] == etag
        replay = b.put(
            "/v1/scripts/S", json=script, headers={"If-None-Match": "*", "Idempotency-Key": "k-1"}
        )
        assert replay.status_code == 200 and replay.headers["idempotent-replay"] == "true"
        assert replay.json() == {
            "key": "k-1",
            "kind": "EmailScript",
            "name": "S",
            "action": "create",
            "etag": etag.strip('"'),
        }
        moved = b.put("/v1/scripts/S", json={**script, "queues": ["B"]}, headers={"If-Match": etag})
        assert moved.status_code == 200
        stale = a.put("/v1/scripts/S", json=script, headers={"If-Match": etag})
        assert stale.status_code == 412
        audit = a.get("/v1/audit").json()["items"]
    assert [(e["actor"], e["action"]) for e in audit] == [
        ("ci-apply", "create"),
        ("ci-apply", "update"),
    ]
    assert httpx.get(f"{other.url}/v1/health").status_code == 200


def test_two_replicas_setting_the_default_server_from_one_etag_one_gets_412(
    replicas: tuple[Server, Server],
) -> None:
    """The default SMTP server's If-Match is checked inside the write's transaction: two
    writers that read the same ETag, held back together, cannot both win."""
    one, other = replicas
    statuses: list[int] = []
    with api(one, one.write_token) as a:
        for name in ("Relay A", "Relay B"):
            relay = {"kind": "SmtpServer", "name": name, "host": "smtp.example.com"}
            assert a.put(f"/v1/smtp-servers/{name}", json=relay, headers={"If-None-Match": "*"})
        etag = a.get("/v1/default-smtp-server").headers["etag"]

    def set_default(served: Server, name: str) -> None:
        with api(served, served.write_token) as client:
            answer = client.put(
                "/v1/default-smtp-server", json={"name": name}, headers={"If-Match": etag}
            )
            statuses.append(answer.status_code)

    writers = [
        threading.Thread(target=set_default, args=(one, "Relay A")),
        threading.Thread(target=set_default, args=(other, "Relay B")),
    ]
    with one.writers_blocked():
        for writer in writers:
            writer.start()
        time.sleep(1.0)  # both have read the same default and wait for the tenant's row
        assert statuses == []
    for writer in writers:
        writer.join(30)
    assert sorted(statuses) == [200, 412]


def test_a_lock_held_over_http_is_kept_alive_by_the_clients_heartbeat(
    replicas: tuple[Server, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An apply busy for longer than the lease (connection tests, a confirmation) keeps its
    lock: the client takes it again every quarter lease, which renews it, on any replica."""
    import psycopg

    from channelsync.tenant import lease

    one, other = replicas
    monkeypatch.setattr(lease, "LEASE_SECONDS", 0.8)  # the client beats every 0.2 s
    target = HttpTarget(one.url, token=one.write_token)
    try:
        with target.lock(
            LockInfo("apply-9", "ci-runner-1", os.getpid(), "2026-01-01T00:00:00Z"), 5
        ):
            with psycopg.connect(str(one.database), autocommit=True) as conn:
                conn.execute("UPDATE apply_lock SET expires = extract(epoch FROM now()) + 5")
            time.sleep(0.7)  # a few beats, each renewing the live lease
            [(expires,)] = other.query("SELECT expires FROM apply_lock WHERE holder = 'apply-9'")
            assert expires > time.time() + 60  # renewed to a full server lease
    finally:
        target.close()
