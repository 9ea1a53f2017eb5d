"""Shared helpers for the benchmarks: realistic generated configs and whole-process timing."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"

CHANNEL = """\
# yaml-language-server: $schema=../../../schemas/channelsync.schema.json
kind: EmailChannel
name: Channel {i:05d}
email: support{i:05d}@tenant{d}.example
script: Script {s}
enabled: {enabled}
incoming:
  server: {host}.tenant{d}.example
  protocol: {protocol}
  user: support{i:05d}@tenant{d}.example
  password: ${{env:IMAP_PASSWORD_{d}}}
outgoing:
  server: Relay {d}
  override: true
  password: ${{env:SMTP_PASSWORD_{d}}}
"""
SHARED = """\
kind: SmtpServer
name: Relay {d}
host: smtp.tenant{d}.example
security: starttls
user: relay@tenant{d}.example
password: ${{env:RELAY_PASSWORD_{d}}}
default: {default}
---
kind: EmailScript
name: Script {d}
queues: [Support, Billing]
"""


def generate(n: int, directory: Path, tenants: int = 20) -> Path:
    """``n`` channel files plus one file per tenant with its SMTP server and script."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for d in range(tenants):
        text = SHARED.format(d=d, default="true" if d == 0 else "false")
        (directory / f"tenant-{d:02d}.yaml").write_text(text)
    for i in range(n):
        d = i % tenants
        text = CHANNEL.format(
            i=i, d=d, s=d, enabled="true" if i % 3 else "false",
            protocol="imap-ssl" if i % 2 else "pop3-ssl", host="imap" if i % 2 else "pop",
        )
        (directory / f"channel-{i:05d}.yaml").write_text(text)
    return directory


def run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS (MB) of this one child, exit code and output of one whole process.

    The peak comes from ``os.wait4`` of that child alone: ``RUSAGE_CHILDREN`` is the maximum over
    every child waited for so far, so a small run after a big one would report the big one's peak.
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return wall, usage.ru_maxrss / 1024, proc.returncode, text


def channelsync() -> list[str]:
    """The installed console script next to this interpreter (run the bench from the venv)."""
    exe = Path(sys.executable).with_name("channelsync")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "channelsync"]


def best_of(times: int, argv: list[str], **kw: object) -> tuple[float, float, int, str]:
    results = [run(argv, **kw) for _ in range(times)]  # type: ignore[arg-type]
    return min(results, key=lambda r: r[0])


def env() -> dict[str, str]:
    return dict(os.environ)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, server: subprocess.Popen[bytes], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/v1/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start in time")


@contextlib.contextmanager
def served(store_url: str, work: Path, role: str) -> Iterator[tuple[str, str]]:
    """A real `channelsync serve` of ``store_url`` on a free loopback port with a fresh token
    of ``role``: (URL, token). Stopped at the end, whatever happens."""
    server_cmd = [sys.executable, "-m", "channelsync.server"]
    tokens = work / "tokens.json"
    tokens.unlink(missing_ok=True)
    token = subprocess.run(
        [*server_cmd, "token", "add", "bench", "--role", role, "--tokens", str(tokens)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (work / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [
                *server_cmd,
                "serve",
                "--target",
                store_url,
                "--port",
                str(port),
                "--tokens",
                str(tokens),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(url, server)
            yield url, token
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
