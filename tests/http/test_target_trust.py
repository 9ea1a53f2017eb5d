"""URLs never carry credentials (target, OAuth authority); the https:// target is trusted like
the probes."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from channelsync.targets.http import HttpTarget, HttpTargetError

SECRET = "S3cr3t-pw-9q"
REFUSED = (
    "error: the target URL carries credentials (USER[:PASSWORD]@HOST); remove them from the "
    "URL: an API token goes in CHANNELSYNC_TOKEN, never in the URL\n"
)
URLS = [
    f"https://admin:{SECRET}@tenant.example.test",
    f"https://admin:{SECRET}@127.0.0.1:8443/",
    "http://admin@127.0.0.1:8080",
    f"sqlite://admin:{SECRET}@/tenant.db",
    f"https:admin:{SECRET}@tenant.example.test",
    f"https:/admin:{SECRET}@tenant.example.test",
    f"https:///admin:{SECRET}@tenant.example.test",
    f"https:\\\\admin:{SECRET}@tenant.example.test",
    f"http:/admin:{SECRET}@127.0.0.1:8080/",
    f"HTTPS:/admin:{SECRET}@tenant.example.test",
]


@pytest.mark.parametrize("url", URLS)
def test_credentials_in_a_target_url_are_refused_without_echoing_them(
    url: str, workdir: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "channels.d" / "s.yaml").write_text("kind: EmailScript\nname: S\nqueues: [Q]\n")
    runs = [
        cli("plan", "--target", url),
        cli("serve", "--target", url, "--tokens", str(workdir / "tokens.json")),
    ]
    monkeypatch.setenv("CHANNELSYNC_TARGET", url)
    runs.append(cli("drift"))
    for run in runs:
        assert (run.code, run.out, run.err) == (1, "", REFUSED)
    machine = cli("plan", "--format", "json", "--target", url)
    assert (machine.code, machine.err) == (1, REFUSED)
    assert json.loads(machine.out)["error"]["message"] == REFUSED.removeprefix("error: ").strip()
    assert SECRET not in machine.out
    assert not (workdir / "tenant.db").exists()


def test_oauth_authority_with_credentials_is_an_error_that_does_not_echo_them(
    workdir: Path, cli: Any
) -> None:
    (workdir / "channels.d" / "x.yaml").write_text(
        "kind: EmailChannel\n"
        "name: X\n"
        "email: x@example.test\n"
        "incoming:\n"
        "  auth: microsoft-exchange\n"
        "  server: outlook.office365.com\n"
        "  protocol: imap-ssl\n"
        "  user: x@example.test\n"
        "  oauth:\n"
        "    tenant_id: t\n"
        "    client_id: c\n"
        "    client_secret: ${env:OAUTH_SECRET}\n"
        "    authority: https://admin:Pw-9q1@login.example.test\n"
    )
    result = cli("validate", "--dir", "channels.d")
    assert result.code == 1
    assert (
        "x.yaml:13:16: error: the authority URL carries credentials (USER[:PASSWORD]@HOST), "
        "which every plan and connection test would show; remove them (the app signs in with "
        "client_secret)"
    ) in result.out + result.err
    assert "Pw-9q1" not in result.out + result.err


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback https server whose certificate a private CA (returned as a PEM file) signed."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"items": [], "next": null}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://localhost:{server.server_address[1]}", ca_file
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _no_ambient_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_untrusted_https_target_says_so_and_names_the_trust(
    https_server: tuple[str, Path],
) -> None:
    url, _ = https_server
    target = HttpTarget(url, token="cst_x", retries=0)
    with pytest.raises(HttpTargetError) as raised:
        target.read()
    assert str(raised.value) == (
        f"certificate of {url} not trusted (unable to get local issuer certificate; trusted: "
        "the system store): set SSL_CERT_FILE to a PEM file with the CA that signed it"
    )


def test_https_target_trusts_ssl_cert_file_and_not_requests_ca_bundle(
    https_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = https_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    with pytest.raises(HttpTargetError, match="trusted: the system store"):
        HttpTarget(url, token="cst_x", retries=0).read()
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    assert HttpTarget(url, token="cst_x", retries=0).read() == {}
