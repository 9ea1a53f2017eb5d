"""Fixtures for the connection tests: real servers (session), scripted ones, configs on disk."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from channelsync.loader import load_config
from channelsync.probe.check import Result
from channelsync.probe.runner import checks_for, run_checks
from tests import dnsserver, mailservers
from tests.probe.responder import Responder

SECRET_ENV = "PROBE_TEST_PASSWORD"


def _unavailable(reason: str) -> None:
    """In CI a missing server is a failure; on a developer's machine the test is skipped."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mail() -> Iterator[mailservers.MailServers]:
    """Dovecot, Postfix (delivering acme.test into Dovecot) and the identity services."""
    missing = mailservers.missing_binaries()
    if missing:
        _unavailable(f"mail server binaries not installed: {', '.join(missing)} (see .ci/run)")
    servers = mailservers.start()
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def dns_server() -> Iterator[dnsserver.DnsServer]:
    """dnsmasq on a free loopback port serving ``dnsserver.ZONE``."""
    executable = dnsserver.binary()
    if executable is None:
        _unavailable("dnsmasq is not installed (apt-get install dnsmasq-base; see .ci/run)")
    assert executable is not None
    server = dnsserver.start(executable)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_ambient_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust comes only from what a test sets: no SSL_CERT_FILE from the developer's shell."""
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "channels.d"
    folder.mkdir()
    return folder


Probe = Callable[..., list[Result]]


@pytest.fixture
def probe(config_dir: Path, mail_ca: Path | None, monkeypatch: pytest.MonkeyPatch) -> Probe:
    """Write resources as YAML, load them as the CLI does, and run their checks."""

    def run(*docs: dict[str, Any], timeout: float = 10.0, **kwargs: Any) -> list[Result]:
        write(config_dir, *docs)
        config = load_config(config_dir)
        assert not config.errors, [str(d) for d in config.errors]
        return run_checks(checks_for(config.resources), timeout=timeout, **kwargs)

    return run


@pytest.fixture
def mail_ca(request: pytest.FixtureRequest, config_dir: Path) -> Path | None:
    """The test CA copied next to the YAML as certs/ca.pem (for tls.ca_file), when in use."""
    if "mail" not in request.fixturenames:
        return None
    servers: mailservers.MailServers = request.getfixturevalue("mail")
    (config_dir / "certs").mkdir(exist_ok=True)
    shutil.copy(servers.ca_file, config_dir / "certs" / "ca.pem")
    return config_dir / "certs" / "ca.pem"


def write(folder: Path, *docs: dict[str, Any], name: str = "test.yaml") -> Path:
    """JSON is YAML: one document per resource."""
    path = folder / name
    path.write_text("---\n".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def channel(
    protocol: str,
    port: int,
    *,
    server: str = "localhost",
    user: str = mailservers.USER,
    ca: bool = True,
    name: str = "Test Channel",
    **incoming: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "EmailChannel",
        "name": name,
        "email": "support@example.test",
        "incoming": {"server": server, "protocol": protocol, "port": port, "user": user},
    }
    if "oauth" not in incoming:
        doc["incoming"]["password"] = "${env:" + SECRET_ENV + "}"
    if ca:
        doc["incoming"]["tls"] = {"ca_file": "certs/ca.pem"}
    doc["incoming"].update(incoming)
    return doc


def smtp_server(security: str, port: int, *, ca: bool = True, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "SmtpServer",
        "name": "Test Relay",
        "host": "localhost",
        "security": security,
        "port": port,
        "user": mailservers.USER,
        "password": "${env:" + SECRET_ENV + "}",
    }
    if ca:
        doc["tls"] = {"ca_file": "certs/ca.pem"}
    doc.update(fields)
    return doc


def oauth(client_id: str, secret_env: str, authority: str, tenant: str = "") -> dict[str, Any]:
    return {
        "tenant_id": tenant or mailservers.TENANT,
        "client_id": client_id,
        "client_secret": "${env:" + secret_env + "}",
        "authority": authority,
    }


def only(results: list[Result]) -> Result:
    assert len(results) == 1, results
    return results[0]


def assert_failed(result: Result, code: str) -> None:
    assert not result.ok, result
    assert result.error is not None
    assert result.error.code == code, result.error


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    def set_(value: str) -> str:
        monkeypatch.setenv(SECRET_ENV, value)
        return value

    set_(mailservers.PASSWORD)
    return set_


@pytest.fixture
def responders() -> Iterator[Callable[..., Responder]]:
    started: list[Responder] = []

    def start(*args: Any, **kwargs: Any) -> Responder:
        responder = Responder(*args, **kwargs)
        started.append(responder)
        return responder

    yield start
    for responder in started:
        responder.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield listener.getsockname()[1]
