"""A real `channelsync serve` process on a free loopback port, and a small config to apply."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channelsync.server import tokens
from channelsync.targets import ENTRY_POINT_GROUP
from tests import pgserver
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


STORES = ["sqlite", "postgresql"]


class Server:
    """`channelsync serve` on the embedded store (``--target sqlite:///...``), or, given
    ``database`` (a postgresql:// URL with its password), on PostgreSQL: the URL passed as
    $CHANNELSYNC_STORE, so no password is on a command line. Replicas share ``database``,
    the tokens file and the key file of the first one (``replica_of``)."""

    def __init__(
        self, root: Path, database: str | None = None, *, replica_of: Server | None = None
    ) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = root / "tenant.db"
        self.database = database
        self.store = "postgresql" if database else "sqlite"
        self.log = root / "serve.log"
        if replica_of is not None:
            self.tokens, self.key_file = replica_of.tokens, replica_of.key_file
            self.write_token, self.read_token = replica_of.write_token, replica_of.read_token
        else:
            self.tokens, self.key_file = root / "tokens.json", root / "store.key"
            self.write_token = tokens.add(self.tokens, "ci-apply", "write")
            self.read_token = tokens.add(self.tokens, "pr-plan", "read")
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self, *extra: str, nofile: int | None = None) -> None:
        """Start ``serve`` with ``extra`` options, at most ``nofile`` descriptors if given."""
        argv = [sys.executable, "-m", "channelsync.server", "serve"]
        env = dict(os.environ)
        if self.database is None:
            argv += ["--target", f"sqlite:///{self.db}"]
        else:
            env["CHANNELSYNC_STORE"] = self.database
            argv += ["--key-file", str(self.key_file), "--migrate-on-start"]
        argv += ["--port", str(self.port), "--tokens", str(self.tokens), *extra]

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env, preexec_fn=limit)

    def start(self, *extra: str, nofile: int | None = None) -> None:
        self.launch(*extra, nofile=nofile)
        self.wait_ready()

    def wait_ready(self) -> None:
        assert self.proc is not None
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

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of one read-only statement on the store, from outside the server."""
        if self.database is None:
            db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
            try:
                return db.execute(sql).fetchall()
            finally:
                db.close()
        import psycopg

        with psycopg.connect(self.database, autocommit=True) as conn:
            return conn.execute(sql.encode()).fetchall()

    def store_args(self) -> list[str]:
        """The options that name this server's store to `tenant` and `keys`."""
        if self.database is None:
            return ["--store", f"sqlite:///{self.db}"]
        return ["--store", self.database, "--key-file", str(self.key_file)]

    def open_store(self) -> Any:
        """This server's store, opened from outside it (``SqliteStore`` or ``PostgresStore``)."""
        if self.database is None:
            from channelsync.targets.sqlite import SqliteStore

            return SqliteStore(f"sqlite:///{self.db}", readonly=True)
        from channelsync.targets.postgresql import PostgresStore

        return PostgresStore(self.database, key_file=self.key_file, pool_size=2)

    def stored(self) -> bytes:
        """Everything the store holds on disk, as bytes (a database dump for PostgreSQL)."""
        if self.database is None:
            return b"".join(p.read_bytes() for p in self.root.glob("tenant.db*"))
        bin_dir = pgserver.binaries()
        assert bin_dir is not None
        dump = subprocess.run(
            [bin_dir / "pg_dump", "--data-only", self.database],
            capture_output=True,
            check=True,
            timeout=60,
        )
        return dump.stdout

    @contextlib.contextmanager
    def writers_blocked(self) -> Iterator[None]:
        """Another process holds the tenant's write lock while the block runs."""
        if self.database is None:
            blocker = sqlite3.connect(self.db, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            return
        import psycopg

        with psycopg.connect(self.database) as conn:
            conn.execute("SELECT 1 FROM tenants WHERE name = 'default' FOR UPDATE")
            try:
                yield
            finally:
                conn.rollback()


def database_for(request: pytest.FixtureRequest, store: str) -> str | None:
    """A fresh PostgreSQL database's URL for the postgresql store, None for sqlite."""
    return str(request.getfixturevalue("pg_url")) if store == "postgresql" else None


@pytest.fixture(params=STORES)
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """`channelsync serve` on each store in turn: every server test runs on both."""
    (tmp_path / "server").mkdir()
    served = Server(tmp_path / "server", database_for(request, request.param))
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
