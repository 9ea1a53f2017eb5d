"""Real pieces for the monitor's tests: Dovecot (its own session instance), a store seeded as
the API would, `channelsync serve --monitor-every` processes, and a webhook receiver."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from channelsync.server import tokens
from channelsync.server.store import Store
from channelsync.targets.base import Operation
from tests import mailservers
from tests.http.conftest import free_port
from tests.probe.conftest import mail as mail

SCRIPT = {"kind": "EmailScript", "name": "Support Script", "queues": ["Support"]}


def seed(db: Path, ca_file: Path, port: int, names: list[str], tenant: str = "default") -> str:
    """A store holding one enabled IMAPS channel per name on the test Dovecot, as PUT would
    leave it (the password a value, sealed by the store), in ``tenant`` (added if new)."""
    url = f"sqlite:///{db}"
    opened = Store(url)
    try:
        if tenant not in opened.tenants.names():
            from channelsync.tenant.sealing import new_data_key

            opened.tenants.add(tenant, new_data_key(opened.database.master))
        store = opened.of(tenant)
        assert store is not None
        store.write(Operation("create", "EmailScript", SCRIPT["name"], body=SCRIPT), **_by)
        for i, name in enumerate(names):
            body = {
                "kind": "EmailChannel",
                "name": name,
                "email": f"support{i}@acme.test",
                "script": SCRIPT["name"],
                "enabled": True,
                "incoming": {
                    "server": "localhost",
                    "protocol": "imap-ssl",
                    "port": port,
                    "user": mailservers.USER,
                    "password": mailservers.PASSWORD,
                    "tls": {"ca_file": str(ca_file)},
                },
            }
            store.write(Operation("create", "EmailChannel", name, body=body), **_by)
    finally:
        opened.close()
    return url


_by: dict[str, Any] = {"actor": "test", "key": None, "holder": None}


def set_dovecot_password(servers: mailservers.MailServers, user: str, password: str) -> None:
    """Change ``user``'s password on the Dovecot side (its passwd-file, replaced in one step:
    Dovecot reads it again when it changes)."""
    passwd = servers.state / "dovecot" / "passwd"
    lines = [
        f"{user}:{{PLAIN}}{password}" if line.split(":", 1)[0] == user else line
        for line in passwd.read_text().splitlines()
    ]
    new = passwd.with_suffix(".new")
    new.write_text("\n".join(lines) + "\n")
    os.replace(new, passwd)


def check_up(
    server: Serve, token: str, name: str = "Support", tenant: str = "default"
) -> float | None:
    """The channel's ``channelsync_check_up`` (incoming) at /metrics; None: not there."""
    status, text = server.get("/metrics", token)
    assert status == 200, text
    labels = f'{{check="incoming",kind="EmailChannel",name="{name}",tenant="{tenant}"}}'
    found = re.search(re.escape(f"channelsync_check_up{labels}") + r" (\S+)", text)
    return float(found.group(1)) if found else None


def wait_up(
    server: Serve, token: str, value: float, timeout: float, name: str = "Support",
    tenant: str = "default",
) -> float:  # fmt: skip
    """Seconds until the check's ``channelsync_check_up`` is ``value``."""
    started = time.monotonic()
    while check_up(server, token, name, tenant) != value:
        assert time.monotonic() - started < timeout, f"{tenant}/{name}: never {value}"
        time.sleep(0.1)
    return time.monotonic() - started


class Serve:
    """One `channelsync serve` process with the monitor on."""

    def __init__(
        self, root: Path, url: str, token_file: Path, *args: str, ca_file: Path | None = None
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = root / f"serve-{self.port}.log"
        argv = [sys.executable, "-m", "channelsync.server", "serve", "--target", url]
        argv += ["--port", str(self.port), "--tokens", str(token_file), *args]
        with self.log.open("ab") as log:
            # the store keeps no tls.ca_file (a config-only setting): a server whose mail
            # servers have a private CA trusts it as every OpenSSL program does
            env = dict(os.environ) | ({"SSL_CERT_FILE": str(ca_file)} if ca_file else {})
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(f"{self.base}/v1/health", timeout=1):
                    return
            except OSError:
                assert time.monotonic() < deadline, "channelsync serve did not start"
                time.sleep(0.05)

    def get(self, path: str, token: str) -> tuple[int, str]:
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stop(self) -> float:
        """SIGTERM; how long the process took to exit."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return time.monotonic() - started


@pytest.fixture
def token_file(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "tokens.json"
    return path, tokens.add(path, "prometheus", "read")


@pytest.fixture
def serve(tmp_path: Path, mail: mailservers.MailServers) -> Iterator[Callable[..., Serve]]:
    started: list[Serve] = []

    def start(url: str, token_path: Path, *args: str) -> Serve:
        server = Serve(tmp_path, url, token_path, *args, ca_file=mail.ca_file)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def monitored(
    mail: mailservers.MailServers,
    tmp_path: Path,
    token_file: tuple[Path, str],
    serve: Callable[..., Serve],
) -> tuple[Serve, str]:
    """`serve --monitor-every 2s` over one channel "Support", and a read token."""
    url = seed(tmp_path / "tenant.db", mail.ca_file, mail.ports["imaps"], ["Support"])
    path, token = token_file
    return serve(url, path, "--monitor-every", "2s"), token


class Receiver:
    """A webhook receiver on loopback: every JSON body apprise's json:// posts to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    with contextlib.suppress(OSError):
        found.close()
