"""Secret bindings: with a bindings file in force, a connection test sends a secret only to
the endpoints bound to it; anything else fails with secret_not_bound and sends nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from channelsync.bindings import load
from channelsync.loader import load_config
from channelsync.probe.runner import checks_for, run_checks
from tests import mailservers
from tests.mailservers import MailServers
from tests.probe.conftest import (
    SECRET_ENV,
    assert_failed,
    channel,
    oauth,
    only,
    smtp_server,
    write,
)
from tests.probe.responder import Responder, imap, smtp

Responders = Callable[..., Responder]
Password = Callable[[str], str]
SECRET = "hunter2-bound-secret"


def bindings_file(folder: Path, *entries: tuple[str, list[str]]) -> Path:
    lines = ["# where each secret may be sent", "bindings:"]
    for secret, endpoints in entries:
        lines += [f"  - secret: {secret}", f"    endpoints: {json.dumps(endpoints)}"]
    path = folder / "channelsync.secrets.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(config_dir: Path, bindings: Path | None, *docs: dict[str, Any]) -> list[Any]:
    write(config_dir, *docs)
    config = load_config(config_dir)
    assert not config.errors, [str(d) for d in config.errors]
    bound = load(bindings, config_dir.parent) if bindings is not None else None
    return run_checks(checks_for(config.resources), timeout=5, bindings=bound)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return SECRET


def test_unbound_imap_server_gets_nothing(
    config_dir: Path, secret: str, responders: Responders
) -> None:
    server = responders(*imap())
    path = bindings_file(config_dir.parent, ("${env:PROBE_TEST_PASSWORD}", ["imap.gmail.com:993"]))
    doc = channel("imap", server.port, ca=False, allow_insecure_auth=True)
    result = only(run(config_dir, path, doc))
    assert_failed(result, "secret_not_bound")
    assert result.error is not None
    assert result.error.message == (
        f"incoming.password ${{env:PROBE_TEST_PASSWORD}} is not bound to localhost:{server.port} "
        f"in {path}; nothing was sent"
    )
    assert result.error.hint == (
        f"if the secret belongs there, change line 4 of {path} to: "
        f'endpoints: ["imap.gmail.com:993", "localhost:{server.port}"]'
    )
    assert server.received == []
    assert server._connections == []  # not even connected


def test_secret_without_a_binding_names_the_line_to_add(
    config_dir: Path, secret: str, responders: Responders
) -> None:
    server = responders(*smtp(auth_reply="235 2.7.0 Authentication successful"))
    path = bindings_file(config_dir.parent, ("${env:OTHER}", ["smtp.example.com:587"]))
    doc = smtp_server("none", server.port, ca=False, allow_insecure_auth=True)
    result = only(run(config_dir, path, doc))
    assert_failed(result, "secret_not_bound")
    assert result.error is not None
    assert result.error.hint == (
        f"if the secret belongs there, add under bindings: in {path}: "
        f'- {{secret: "${{env:PROBE_TEST_PASSWORD}}", endpoints: ["localhost:{server.port}"]}}'
    )
    assert server.received == []


def test_bound_server_is_tested_as_without_bindings(
    config_dir: Path, secret: str, responders: Responders
) -> None:
    server = responders(*imap())
    path = bindings_file(
        config_dir.parent, ("${env:PROBE_TEST_PASSWORD}", [f"LOCALHOST:{server.port}"])
    )
    result = only(
        run(config_dir, path, channel("imap", server.port, ca=False, allow_insecure_auth=True))
    )
    assert result.ok, result.error
    assert any(line.split(" ")[1:2] == ["LOGIN"] for line in server.received)


def test_without_a_bindings_file_behaviour_is_unchanged(
    config_dir: Path, secret: str, responders: Responders
) -> None:
    server = responders(*imap())
    result = only(
        run(config_dir, None, channel("imap", server.port, ca=False, allow_insecure_auth=True))
    )
    assert result.ok, result.error


def test_file_secret_is_bound_by_the_file_it_reads(
    config_dir: Path, responders: Responders
) -> None:
    """The channel says ../secrets/pw from channels.d/, the bindings file secrets/pw."""
    (config_dir.parent / "secrets").mkdir()
    (config_dir.parent / "secrets" / "pw").write_text(SECRET + "\n")
    (config_dir.parent / "secrets" / "other").write_text("another-secret\n")
    server = responders(*imap())
    path = bindings_file(
        config_dir.parent,
        ("${file:secrets/pw}", [f"localhost:{server.port}"]),
        ("${file:secrets/other}", ["imap.example.com:993"]),
    )
    doc = channel("imap", server.port, ca=False, allow_insecure_auth=True)
    doc["incoming"]["password"] = "${file:../secrets/pw}"
    assert only(run(config_dir, path, doc)).ok
    doc["incoming"]["password"] = "${file:../secrets/other}"
    result = only(run(config_dir, path, doc))
    assert_failed(result, "secret_not_bound")
    assert not any("another-secret" in line for line in server.received)


class _Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(404)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def token_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server that records every request (a would-be token endpoint)."""
    requests: ClassVar[list[str]] = []
    handler = type("Recorder", (_Recorder,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def test_client_secret_needs_its_token_endpoint_and_mail_server_bound(
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    token_server: tuple[str, list[str]],
) -> None:
    authority, requests = token_server
    monkeypatch.setenv("OAUTH_SECRET", SECRET)
    doc = channel(
        "imap-ssl",
        993,
        server="outlook.office365.com",
        ca=False,
        auth="microsoft-exchange",
        oauth=oauth("client", "OAUTH_SECRET", authority),
    )
    path = bindings_file(
        config_dir.parent,
        ("${env:OAUTH_SECRET}", ["https://login.microsoftonline.com", "outlook.office365.com:993"]),
    )
    result = only(run(config_dir, path, doc))
    assert_failed(result, "secret_not_bound")
    assert result.error is not None
    assert result.error.message == (
        f"incoming.oauth.client_secret ${{env:OAUTH_SECRET}} is not bound to "
        f"{authority}/{mailservers.TENANT} in {path}; nothing was sent"
    )
    assert requests == []


@pytest.mark.parametrize(
    "authority",
    ["https://login.microsoftonline.com\\@evil.example", "https://u@login.microsoftonline.com"],
)
def test_an_authority_that_parsers_read_differently_is_refused(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, authority: str
) -> None:
    monkeypatch.setenv("OAUTH_SECRET", SECRET)
    doc = channel(
        "imap-ssl",
        993,
        server="outlook.office365.com",
        ca=False,
        auth="microsoft-exchange",
        oauth=oauth("client", "OAUTH_SECRET", authority),
    )
    path = bindings_file(
        config_dir.parent,
        ("${env:OAUTH_SECRET}", ["https://login.microsoftonline.com", "outlook.office365.com:993"]),
    )
    write(config_dir, doc)
    config = load_config(config_dir)
    # validate refuses it (credentials in a URL) and, should a check run anyway, so do the
    # bindings: two layers
    assert [d.message.split(" (")[0] for d in config.errors] == [
        "the authority URL carries credentials"
    ]
    result = only(
        run_checks(checks_for(config.resources), timeout=5, bindings=load(path, config_dir.parent))
    )
    assert_failed(result, "secret_not_bound")
    assert result.error is not None
    assert "is not a plain https:// URL" in result.error.message


def test_bound_oauth_channel_gets_its_token_and_logs_in(
    mail: MailServers, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(mail.ca_file))
    monkeypatch.setenv("OAUTH_SECRET", "good-secret")
    port = mail.ports["imaps"]
    doc = channel(
        "imap-ssl",
        port,
        auth="microsoft-exchange",
        oauth=oauth("good-client", "OAUTH_SECRET", mail.authority),
    )
    import shutil

    (config_dir / "certs").mkdir(exist_ok=True)
    shutil.copy(mail.ca_file, config_dir / "certs" / "ca.pem")
    path = bindings_file(
        config_dir.parent, ("${env:OAUTH_SECRET}", [mail.authority, f"localhost:{port}"])
    )
    result = only(run(config_dir, path, doc))
    assert result.ok, result.error
    only_token = bindings_file(config_dir.parent, ("${env:OAUTH_SECRET}", [mail.authority]))
    result = only(run(config_dir, only_token, doc))
    assert_failed(result, "secret_not_bound")  # the token would go to an unbound server
    assert result.error is not None
    assert f"is not bound to localhost:{port} in" in result.error.message


# ---- the commands ------------------------------------------------------------------------


@pytest.fixture
def repo(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(config_dir.parent)
    return config_dir.parent


def test_test_plan_and_apply_refuse_unbound_secrets_and_send_nothing(
    repo: Path, secret: str, responders: Responders, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = responders(*imap())
    doc = channel("imap", server.port, ca=False, allow_insecure_auth=True)
    doc["enabled"] = True  # a disabled channel's failed test only warns at apply
    write(repo / "channels.d", doc)
    bindings_file(repo, ("${env:PROBE_TEST_PASSWORD}", ["imap.example.com:993"]))
    flag = ("--secret-bindings", "channelsync.secrets.yaml")
    tested = cli("test", *flag)
    assert tested.code == 1
    assert "FAIL secret_not_bound" in tested.out
    assert (
        f"is not bound to localhost:{server.port} in channelsync.secrets.yaml; nothing was sent"
    ) in tested.out
    planned = cli("plan", "--check-connections", "--format", "json", *flag)
    assert planned.code == 1
    report = json.loads(planned.out)["connection_tests"]["results"][0]
    assert report["error"]["code"] == "secret_not_bound"
    applied = cli("apply", "--auto-approve", *flag)
    assert applied.code == 1
    assert "secret_not_bound" in applied.err
    assert "Apply stopped by the connection tests; nothing was changed." in applied.err
    monkeypatch.setenv("CHANNELSYNC_SECRET_BINDINGS", "channelsync.secrets.yaml")
    from_env = cli("test")
    assert from_env.code == 1 and "secret_not_bound" in from_env.out
    assert server.received == []
    assert SECRET not in tested.out + planned.out + applied.out + applied.err
