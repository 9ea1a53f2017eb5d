"""A real `channelsync serve` process on a free loopback port, and a small config to apply."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from channelsync.server import tokens
from channelsync.targets import ENTRY_POINT_GROUP
from tests.entry_points import register
from tests.http import example_driver

SECRETS = {
    "RELAY_PASSWORD": "relay-Pa55-7f3e9c",
    "IMAP_PASSWORD": "imap-Pa55-a81d44",
    "SMTP_PASSWORD": "smtp-Pa55-2bb7e0",
}
SERVER = """\
kind: SmtpServer
name: Relay
host: smtp.example.com
user: relay@example.com
password: ${env:RELAY_PASSWORD}
---
kind: EmailScript
name: Support Script
queues: [Support]
"""
CHANNEL = """\
kind: EmailChannel
name: Channel {i:03d}
email: support{i:03d}@example.com
script: Support Script
enabled: true
incoming:
  server: imap.example.com
  protocol: imap-ssl
  user: support{i:03d}@example.com
  password: ${{env:IMAP_PASSWORD}}
outgoing:
  server: Relay
  override: true
  password: ${{env:SMTP_PASSWORD}}
"""


def register_memory_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """What installing a package with the example driver's entry point does, without
    installing one; every memory:// tenant starts empty."""
    register(monkeypatch, ENTRY_POINT_GROUP, "memory", "tests.http.example_driver:MemoryTarget")
    example_driver.TENANTS.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(directory: Path, channels: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "shared.yaml").write_text(SERVER)
    for i in range(channels):
        (directory / f"channel-{i:03d}.yaml").write_text(CHANNEL.format(i=i))
    return directory


class Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = root / "tenant.db"
        self.tokens = root / "tokens.json"
        self.log = root / "serve.log"
        self.write_token = tokens.add(self.tokens, "ci-apply", "write")
        self.read_token = tokens.add(self.tokens, "pr-plan", "read")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str, nofile: int | None = None) -> None:
        """Start ``serve`` with ``extra`` options, at most ``nofile`` descriptors if given."""
        argv = [
            sys.executable,
            "-m",
            "channelsync.server",
            "serve",
            "--target",
            f"sqlite:///{self.db}",
            "--port",
            str(self.port),
            "--tokens",
            str(self.tokens),
            *extra,
        ]

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, preexec_fn=limit)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/v1/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("channelsync serve did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        self.proc = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "server").mkdir()
    served = Server(tmp_path / "server")
    served.start()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)
