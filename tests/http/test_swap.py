"""Channels that swap addresses, over HTTP against a real `channelsync serve`: one apply
converges, and so does the next one after an apply killed between the two steps."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.http.conftest import CHANNEL, SERVER, Server


def _pairs(directory: Path, pairs: int, *, swapped: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "shared.yaml").write_text(SERVER)
    for i in range(2 * pairs):
        partner = i ^ 1 if swapped else i  # 0<->1, 2<->3, ...
        text = CHANNEL.format(i=i).replace(
            f"email: support{i:03d}@", f"email: support{partner:03d}@"
        )
        (directory / f"channel-{i:03d}.yaml").write_text(text)


def _temporary_held(server: Server) -> int:
    query = "SELECT count(*) FROM resources WHERE email LIKE 'channelsync-temp-%'"
    return int(server.query(query)[0][0])


def test_swapped_addresses_converge_in_one_apply_over_http(
    server: Server,
    workdir: Path,
    secrets_env: dict[str, str],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHANNELSYNC_TOKEN", server.write_token)
    target = ("--target", server.url)
    _pairs(workdir / "channels.d", 1, swapped=False)
    assert cli("apply", *target, "--auto-approve", "--skip-connection-tests").code == 0
    _pairs(workdir / "channels.d", 1, swapped=True)
    result = cli("apply", *target, "--auto-approve", "--skip-connection-tests")
    assert result.code == 0, result.err
    assert "EmailChannel 'Channel 000' moved through the temporary address channelsync-temp-" in (
        result.out
    )
    assert result.out.endswith("Apply complete: 2 updated.\n")
    again = cli("plan", *target, "--detailed-exitcode")
    assert again.code == 0, again.out + again.err
    assert _temporary_held(server) == 0


def test_apply_killed_between_swap_steps_over_http_then_rerun_converges(
    server: Server, workdir: Path, secrets_env: dict[str, str]
) -> None:
    pairs = 400  # 1,200 operations: three batches, the first commits parked addresses
    env = {**secrets_env, "CHANNELSYNC_TOKEN": server.write_token}
    argv = [
        sys.executable,
        "-m",
        "channelsync",
        "apply",
        "--target",
        server.url,
        "--auto-approve",
        "--skip-connection-tests",
        "--force",
    ]
    _pairs(workdir / "channels.d", pairs, swapped=False)
    first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    _pairs(workdir / "channels.d", pairs, swapped=True)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _temporary_held(server) < pairs // 3 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=20)
    assert _temporary_held(server) > 0  # stopped between the two steps of some swaps
    rerun = subprocess.run(
        [*argv, "--lock-timeout", "5"], env=env, capture_output=True, text=True, timeout=120
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    final = subprocess.run(
        [sys.executable, "-m", "channelsync", "plan", "--target", server.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "No changes." in final.stdout, final.stdout + final.stderr
    assert _temporary_held(server) == 0
