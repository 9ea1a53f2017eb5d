"""plan/apply/drift over HTTP against a real `channelsync serve`, tokens, ETags and secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from channelsync.server import tokens
from channelsync.targets.base import ConflictError, LockInfo, LockTimeout, Operation
from channelsync.targets.http import Forbidden, HttpTarget, Unauthorized
from tests.http.conftest import SECRETS, Server, write_config


def cli_process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "channelsync", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def api(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def test_plan_apply_drift_cycle_over_http(
    server: Server,
    workdir: Path,
    secrets_env: dict[str, str],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(workdir / "channels.d", 3)
    monkeypatch.setenv("CHANNELSYNC_TOKEN", server.write_token)
    target = ("--target", server.url)
    plan = cli("plan", *target, "--detailed-exitcode")
    assert plan.code == 2, plan.err
    assert "Plan: 5 to create, 0 to update, 0 to rename, 0 to delete, 0 unchanged." in plan.out
    applied = cli("apply", *target, "--auto-approve", "--skip-connection-tests")
    assert applied.code == 0, applied.err
    assert "Apply complete: 5 created." in applied.out
    again = cli("plan", *target, "--detailed-exitcode")
    assert again.code == 0 and "No changes." in again.out

    monkeypatch.setenv("CHANNELSYNC_TOKEN", server.read_token)
    assert cli("drift", *target).code == 0
    monkeypatch.setenv("IMAP_PASSWORD", "rotated-Pa55-0000")  # a rotated secret is drift
    drift = cli("drift", *target, "--format", "json")
    assert drift.code == 2
    fields = json.loads(drift.out)["changes"][0]["fields"]
    assert {
        "path": "incoming.password",
        "before": "(sensitive)",
        "after": "(sensitive)",
        "sensitive": True,
    } in fields


def test_read_token_plans_but_cannot_apply(
    server: Server,
    workdir: Path,
    secrets_env: dict[str, str],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(workdir / "channels.d", 1)
    monkeypatch.setenv("CHANNELSYNC_TOKEN", server.read_token)
    assert cli("plan", "--target", server.url).code == 0
    refused = cli("apply", "--target", server.url, "--auto-approve", "--skip-connection-tests")
    assert refused.code == 1
    assert refused.err.strip().endswith(
        f"error: {server.url}: token 'pr-plan' has the read role; this needs write (403); "
        "use a token with the write role in CHANNELSYNC_TOKEN"
    )
    monkeypatch.setenv("CHANNELSYNC_TOKEN", "cst_not-a-token")
    unknown = cli("plan", "--target", server.url)
    assert unknown.err.strip().endswith(
        f"error: {server.url} refused the API token (401): set CHANNELSYNC_TOKEN to a valid token"
    )
    with api(server, server.read_token) as client:
        assert client.get("/v1/resources").status_code == 200
        tokens.revoke(server.tokens, "pr-plan")  # picked up without a restart
        assert client.get("/v1/resources").status_code == 401
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/v1/resources").status_code == 401


def test_writes_need_preconditions_and_a_changed_etag_is_412(server: Server) -> None:
    script = {"kind": "EmailScript", "name": "S", "queues": ["A"]}
    with api(server, server.write_token) as client:
        assert client.put("/v1/scripts/S", json=script).status_code == 428
        created = client.put("/v1/scripts/S", json=script, headers={"If-None-Match": "*"})
        assert created.status_code == 201
        etag = created.headers["etag"]
        again = client.put("/v1/scripts/S", json=script, headers={"If-None-Match": "*"})
        assert again.status_code == 412
        changed = client.put(
            "/v1/scripts/S", json={**script, "queues": ["B"]}, headers={"If-Match": etag}
        )
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        stale = client.put("/v1/scripts/S", json=script, headers={"If-Match": etag})
        assert stale.status_code == 412
        assert stale.json() == {
            "error": "EmailScript 'S' was changed in the tenant since it was read"
        }
    target = HttpTarget(server.url, token=server.write_token)
    try:
        with pytest.raises(ConflictError, match=r"changed in the tenant .*\(412\); plan again"):
            target.apply(
                Operation("update", "EmailScript", "S", body=script, expected_etag=etag.strip('"'))
            )
    finally:
        target.close()
    reader = HttpTarget(server.url, token=server.read_token)
    try:
        with pytest.raises(Forbidden, match=r"\(403\)"):
            reader.apply(Operation("delete", "EmailScript", "S", expected_etag="x"))
    finally:
        reader.close()
    stranger = HttpTarget(server.url, token="cst_wrong")
    try:
        with pytest.raises(Unauthorized):
            stranger.read()
    finally:
        stranger.close()


def test_saved_plan_is_refused_after_a_concurrent_change(
    server: Server,
    workdir: Path,
    secrets_env: dict[str, str],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(workdir / "channels.d", 2)
    monkeypatch.setenv("CHANNELSYNC_TOKEN", server.write_token)
    target = ("--target", server.url)
    assert cli("apply", *target, "--auto-approve", "--skip-connection-tests").code == 0
    (workdir / "channels.d" / "shared.yaml").write_text(
        (workdir / "channels.d" / "shared.yaml").read_text().replace("[Support]", "[Support, VIP]")
    )
    assert cli("plan", *target, "--out", "plan.json").code == 0
    with api(server, server.write_token) as client:  # someone else changes the script
        current = client.get("/v1/scripts/Support Script")
        body = {**current.json(), "queues": ["Other"]}
        moved = client.put(
            "/v1/scripts/Support Script", json=body, headers={"If-Match": current.headers["etag"]}
        )
        assert moved.status_code == 200
    refused = cli("apply", "plan.json", *target, "--skip-connection-tests")
    assert refused.code == 3
    assert "stale plan: the tenant changed since it was made (Support Script)" in refused.err


def test_eight_concurrent_writers_lose_no_update(server: Server) -> None:
    """Read-modify-write with If-Match from eight threads: every queue lands."""
    setup = HttpTarget(server.url, token=server.write_token)
    setup.apply(
        Operation(
            "create",
            "EmailScript",
            "Shared",
            body={"kind": "EmailScript", "name": "Shared", "queues": []},
        )
    )
    setup.close()

    def add_queue(n: int) -> None:
        target = HttpTarget(server.url, token=server.write_token)
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
                    continue
        finally:
            target.close()

    threads = [threading.Thread(target=add_queue, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    reader = HttpTarget(server.url, token=server.read_token)
    try:
        queues = reader.read()[("EmailScript", "Shared")].data["queues"]
    finally:
        reader.close()
    assert sorted(queues) == [f"Q{n}" for n in range(8)]


def test_eight_concurrent_applies_converge(
    server: Server,
    workdir: Path,
    secrets_env: dict[str, str],
) -> None:
    write_config(workdir / "channels.d", 10)
    env = {**secrets_env, "CHANNELSYNC_TOKEN": server.write_token}
    argv = [
        "apply",
        "--target",
        server.url,
        "--auto-approve",
        "--skip-connection-tests",
        "--lock-timeout",
        "60",
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "channelsync", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, results
    assert sum("Apply complete: 12 created." in out for out, _ in results) == 1
    with api(server, server.read_token) as client:
        audit = client.get("/v1/audit", params={"limit": 100}).json()["items"]
    assert len(audit) == 12  # every resource written exactly once
    final = cli_process("plan", "--target", server.url, "--detailed-exitcode", env=env)
    assert final.returncode == 0, final.stdout + final.stderr


def test_server_killed_during_apply_then_rerun_converges(
    server: Server,
    workdir: Path,
    secrets_env: dict[str, str],
) -> None:
    write_config(workdir / "channels.d", 1500)  # three batches: killed after the first
    env = {**secrets_env, "CHANNELSYNC_TOKEN": server.write_token}
    argv = ["apply", "--target", server.url, "--auto-approve", "--skip-connection-tests"]
    output = workdir / "apply.out"
    with output.open("w") as sink:  # a file, not a pipe: the plan print must never block
        apply = subprocess.Popen(
            [sys.executable, "-m", "channelsync", *argv],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    with api(server, server.read_token) as client:
        deadline = time.monotonic() + 60
        while len(client.get("/v1/audit").json()["items"]) < 20:
            assert time.monotonic() < deadline and apply.poll() is None
            time.sleep(0.02)
    server.stop(signal.SIGKILL)
    apply.wait(timeout=120)
    assert apply.returncode == 1
    assert "cannot reach the target at" in output.read_text()
    server.start()
    rerun = cli_process(*argv, env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    final = cli_process("plan", "--target", server.url, "--detailed-exitcode", env=env)
    assert final.returncode == 0 and "No changes." in final.stdout


def test_no_secret_in_responses_logs_audit_or_store(
    server: Server,
    workdir: Path,
    secrets_env: dict[str, str],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(workdir / "channels.d", 2)
    monkeypatch.setenv("CHANNELSYNC_TOKEN", server.write_token)
    seen = [
        cli("apply", "--target", server.url, "--auto-approve", "--skip-connection-tests"),
        cli("plan", "--target", server.url, "--format", "json"),
    ]
    texts = [r.out + r.err for r in seen]
    with api(server, server.read_token) as client:
        for path in (
            "/v1/resources",
            "/v1/channels",
            "/v1/smtp-servers/Relay",
            "/v1/audit",
            "/v1/channels/Channel 000",
            "/v1/default-smtp-server",
        ):
            texts.append(client.get(path).text)
        fingerprinted = client.post("/v1/fingerprints", json={"values": list(SECRETS.values())})
        texts.append(fingerprinted.text)
    assert all(v.startswith("hmac-sha256:") for v in fingerprinted.json()["fingerprints"])
    server.stop()
    texts.append(server.log.read_text())
    assert '"path":"/v1/fingerprints"' in texts[-1]  # the access log is there
    stored = server.stored()
    assert b"Channel 000" in stored  # the store's contents are what is searched
    for value in SECRETS.values():
        assert not any(value in text for text in texts)
        assert value.encode() not in stored
    assert server.write_token not in texts[-1] and server.read_token not in texts[-1]


def test_lock_names_the_holder_and_times_out(server: Server) -> None:
    first = HttpTarget(server.url, token=server.write_token)
    second = HttpTarget(server.url, token=server.write_token)
    holder = LockInfo("apply-1", "ci-runner-7", os.getpid(), "2026-01-01T00:00:00Z")
    try:
        with (
            first.lock(holder, 1),
            pytest.raises(LockTimeout) as caught,
            second.lock(LockInfo.mine("apply-2"), 0.3),
        ):
            pass
        assert str(caught.value) == (
            "the target is locked by another apply (host ci-runner-7, pid "
            f"{os.getpid()}, since 2026-01-01T00:00:00Z); waited 0.3 s. Try again later, "
            "or raise --lock-timeout"
        )
        with second.lock(LockInfo.mine("apply-3"), 1):  # released on exit
            pass
    finally:
        first.close()
        second.close()


def test_plain_http_to_a_remote_host_is_refused() -> None:
    from channelsync.errors import ChannelsyncError

    with pytest.raises(ChannelsyncError, match=r"refusing plain http:// to 192\.0\.2\.7"):
        HttpTarget("http://192.0.2.7:8765", token="cst_x")


def test_serve_refuses_to_start_without_tokens(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "channelsync.server",
            "serve",
            "--tokens",
            str(tmp_path / "none.json"),
            "--target",
            f"sqlite:///{tmp_path / 't.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: refusing to start without tokens:")


def test_export_and_list_live_over_http(
    server: Server,
    workdir: Path,
    secrets_env: dict[str, str],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(workdir / "channels.d", 3)
    monkeypatch.setenv("CHANNELSYNC_TOKEN", server.write_token)
    target = ("--target", server.url)
    assert cli("apply", *target, "--auto-approve", "--skip-connection-tests").code == 0
    monkeypatch.setenv("CHANNELSYNC_TOKEN", server.read_token)
    listed = cli("list", "--live", *target)
    assert listed.code == 0
    assert listed.out.endswith("3 channel(s)\n")
    exported = cli("export", *target, "--dir", "exported")
    assert exported.code == 0, exported.err
    plan = cli("plan", *target, "--dir", "exported", "--format", "json")
    assert json.loads(plan.out)["summary"]["no_op"] == 5


def test_sigterm_is_a_clean_stop(server: Server) -> None:
    proc = server.proc
    assert proc is not None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert server.log.read_text().splitlines()[-1] == "channelsync serve: stopped"


def test_port_in_use_is_one_line_before_any_startup(server: Server, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "channelsync",
            "serve",
            "--tokens",
            str(server.tokens),
            "--target",
            f"sqlite:///{tmp_path / 'other.db'}",
            "--port",
            str(server.port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"error: cannot serve on 127.0.0.1:{server.port}: Address already in use; stop the "
        "process that uses it or choose another --port\n"
    )
