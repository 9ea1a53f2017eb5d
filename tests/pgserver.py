"""A throw-away PostgreSQL cluster on loopback for the store's tests (Debian's `postgresql`).

One cluster per test session (``initdb`` in a temp folder, ``postgres`` on a free loopback
port, stopped by its PID), an application role that logs in with a password (pg_hba asks
for it; only the ``postgres`` superuser of the fixture is trusted), and one fresh database
per test: dropping a database is cheaper than cleaning tables. Settings follow
/work/shared/recipes/postgresql.md (fsync and friends off: never in production).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROLE = "channelsync"
PASSWORD = "pg-Pa55-9c41e7"
INSTALL_NOTE = "PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)"


def binaries() -> Path | None:
    """The newest installed server's bin folder (Debian keeps them off PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=_major)
    return found[-1].parent if found else None


def _major(path: Path) -> int:
    name = path.parent.parent.name
    return int(name) if name.isdigit() else 0


def _unavailable(reason: str) -> None:
    """In CI a missing PostgreSQL is a failure; on a developer's machine the test is skipped."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]

    def admin(self, dbname: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def url(self, dbname: str, *, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{ROLE}{secret}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin() as db:
            db.execute(f'CREATE DATABASE "{name}" OWNER {ROLE}')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # a fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> Cluster:
    bin_dir = binaries()
    if bin_dir is None:
        _unavailable(INSTALL_NOTE)
        raise AssertionError("unreachable")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[dev]')")
    if os.geteuid() != 0:
        _unavailable("the PostgreSQL fixture runs the server as the postgres user: run as root")
    root = Path(tempfile.mkdtemp(prefix="channelsync-pg-"))
    (root / "sock").mkdir()
    shutil.chown(root, "postgres", "postgres")
    shutil.chown(root / "sock", "postgres", "postgres")
    data = root / "data"
    subprocess.run(
        [bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        user="postgres",
        check=True,
        capture_output=True,
        timeout=120,
    )
    # the superuser of the fixture is trusted; the application role must give its password
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        "host all postgres 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
    )
    port = _free_port()
    log = (root / "postgres.log").open("ab")
    proc = subprocess.Popen(
        [
            bin_dir / "postgres",
            "-D",
            data,
            "-p",
            str(port),
            "-k",
            root / "sock",
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ],
        user="postgres",
        stdout=log,
        stderr=log,
    )
    log.close()
    cluster = Cluster(root, port, proc)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            text = (root / "postgres.log").read_text(errors="replace")
            shutil.rmtree(root, ignore_errors=True)
            raise AssertionError(f"postgres exited at start:\n{text}")
        ready = subprocess.run(
            [bin_dir / "pg_isready", "-h", "127.0.0.1", "-p", str(port)],
            capture_output=True,
            timeout=10,
        )
        if ready.returncode == 0:
            break
        if time.monotonic() > deadline:
            cluster.stop()
            raise AssertionError("postgres did not accept connections within 60 s")
        time.sleep(0.1)
    with cluster.admin() as db:
        db.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
    return cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One PostgreSQL cluster for the whole session."""
    cluster = start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database of the application role, as a postgresql:// URL with its
    password; dropped after the test."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.url(name)
    finally:
        with contextlib.suppress(Exception):
            pg_cluster.drop_database(name)
