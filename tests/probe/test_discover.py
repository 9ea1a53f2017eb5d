"""`channelsync discover`: autoconfig over https (trustme), SRV and MX from dnsmasq."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from channelsync.bindings import load
from channelsync.loader import load_config
from tests.dnsserver import DnsServer

AUTOCONFIG = b"""<?xml version="1.0"?>
<clientConfig version="1.1">
  <emailProvider id="acme.test">
    <incomingServer type="imap">
      <hostname>imap.acme.test</hostname><port>993</port><socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.acme.test</hostname><port>587</port><socketType>STARTTLS</socketType>
      <username>%EMAILLOCALPART%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""


INJECTED = AUTOCONFIG.replace(
    b"<hostname>imap.acme.test</hostname>",
    b"<hostname>imap.evil.test\n---\nkind: SmtpServer\nname: Evil Default\nhost: evil.test\n"
    b"default: true\n---\n#</hostname>",
)
HOSTILE = {
    "/inject": INJECTED,
    "/badport": AUTOCONFIG.replace(b"<port>993</port>", b"<port>abc</port>"),
}


class _Autoconfig(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/drip":  # a body sent one byte at a time, slowly
            self.send_response(200)
            self.send_header("Content-Length", str(len(AUTOCONFIG)))
            self.end_headers()
            for byte in AUTOCONFIG[:8]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.3)
            return
        found = self.path.startswith("/mail/config-v1.1.xml") or self.path in HOSTILE
        body = HOSTILE.get(self.path, AUTOCONFIG) if found else b"not here"
        self.send_response(200 if found else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def autoconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An https server on loopback with a trustme certificate; its base URL."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Autoconfig)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _discover(cli: Any, dns_server: DnsServer, address: str, url: str, *args: str) -> Any:
    return cli(
        "discover", address, "--autoconfig-url", url, "--dns-server", dns_server.address, *args
    )


def test_autoconfig_wins_and_writes_a_valid_channel(
    autoconfig: str, dns_server: DnsServer, cli: Any, tmp_path: Path
) -> None:
    out = tmp_path / "channels.d" / "support.yaml"
    out.parent.mkdir()
    url = f"{autoconfig}/mail/config-v1.1.xml"
    result = _discover(cli, dns_server, "support@acme.test", url, "--write", str(out))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[:2] == [
        "discover support@acme.test:",
        f"  autoconfig {url}: imap-ssl imap.acme.test:993, smtp starttls smtp.acme.test:587",
    ]
    assert "  MX acme.test: mail.acme.test (not a known provider)" in lines
    assert (
        "chosen: autoconfig: imap-ssl imap.acme.test:993, smtp starttls smtp.acme.test:587 (the "
        "domain publishes its own settings (autoconfig), which come first)"
    ) in lines
    config = load_config(out.parent)
    assert not config.errors, [str(d) for d in config.errors]
    [channel] = config.of_kind("EmailChannel")
    assert channel.data["incoming"]["server"] == "imap.acme.test"
    assert channel.data["incoming"]["password"] == "${env:SUPPORT_ACME_TEST_PASSWORD}"
    [server] = config.of_kind("SmtpServer")
    assert (server.data["host"], server.data["security"]) == ("smtp.acme.test", "starttls")
    assert channel.data["outgoing"]["user"] == "support"  # %EMAILLOCALPART%
    assert lines[-3:] == [
        f"wrote {out}",
        f"wrote {tmp_path / 'channelsync.secrets.yaml'}",
        "set the secrets it names and run 'channelsync test'",
    ]
    bindings = load(tmp_path / "channelsync.secrets.yaml", tmp_path)
    assert {str(b.ref): [str(e) for e in b.endpoints] for b in bindings.bindings} == {
        "${env:SUPPORT_ACME_TEST_PASSWORD}": ["imap.acme.test:993"],
        "${env:SUPPORT_ACME_TEST_SMTP_PASSWORD}": ["smtp.acme.test:587"],
    }
    again = _discover(cli, dns_server, "support@acme.test", url, "--write", str(out))
    assert again.code == 1
    assert again.err == f"error: {out} exists; choose a new file (discover never overwrites)\n"


def test_srv_records_when_there_is_no_autoconfig(
    autoconfig: str, dns_server: DnsServer, cli: Any
) -> None:
    result = _discover(cli, dns_server, "help@srv.test", f"{autoconfig}/nothing")
    assert result.code == 0
    lines = result.out.splitlines()
    assert f"  autoconfig {autoconfig}/nothing: HTTP 404" in lines
    assert "  SRV _imaps._tcp.srv.test: imap.srv.test:993" in lines
    assert lines[-1].startswith(
        "chosen: srv: imap-ssl imap.srv.test:993, smtp starttls smtp.srv.test:587 (no autoconfig"
    )


def test_mx_of_a_known_provider_with_its_note(
    autoconfig: str, dns_server: DnsServer, cli: Any
) -> None:
    result = _discover(cli, dns_server, "help@google.test", f"{autoconfig}/nothing")
    assert result.code == 0
    assert result.out.splitlines()[-2:] == [
        "chosen: mx: imap-ssl imap.gmail.com:993, smtp starttls smtp.gmail.com:587 (no "
        "autoconfig or SRV records; the MX belongs to a known provider)",
        "note: Google accepts a password only as an App password (16 letters, needs 2-step "
        "verification): https://myaccount.google.com/apppasswords",
    ]


def test_only_https_autoconfig_is_trusted_with_the_address(dns_server: DnsServer, cli: Any) -> None:
    result = _discover(cli, dns_server, "a@acme.test", "http://127.0.0.1:9/config.xml")
    assert (result.code, result.err) == (
        1,
        "error: http://127.0.0.1:9/config.xml: only https autoconfig is trusted with the address\n",
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://u:SECRETPW@127.0.0.1:9/config.xml",
        "https:/u:SECRETPW@127.0.0.1:9/config.xml",
        "https:///u:SECRETPW@127.0.0.1:9/config.xml",
        "http:/u:SECRETPW@127.0.0.1:9/config.xml",
    ],
)
def test_an_autoconfig_url_with_credentials_is_refused_without_repeating_them(
    url: str, dns_server: DnsServer, cli: Any
) -> None:
    result = _discover(cli, dns_server, "a@acme.test", url)
    assert (result.code, result.out, result.err) == (
        1,
        "",
        "error: the autoconfig URL carries credentials (USER[:PASSWORD]@HOST); remove them\n",
    )


def test_nothing_found_is_an_error_exit(autoconfig: str, dns_server: DnsServer, cli: Any) -> None:
    result = _discover(cli, dns_server, "a@bare.test", f"{autoconfig}/nothing")
    assert result.code == 1
    assert result.out.endswith(
        "no settings found: ask the mail provider for the IMAP/POP3 and SMTP servers\n"
    )


def test_mx_at_microsoft_365_writes_oauth_placeholders_and_the_shared_mailbox_note(
    autoconfig: str, dns_server: DnsServer, cli: Any, tmp_path: Path
) -> None:
    out = tmp_path / "channels.d" / "m365.yaml"
    out.parent.mkdir()
    result = _discover(
        cli, dns_server, "help@m365.test", f"{autoconfig}/nothing", "--write", str(out)
    )
    assert result.code == 0, result.err
    assert "OAuth2 does not work for shared mailboxes" in result.out
    config = load_config(out.parent)
    assert not config.errors, [str(d) for d in config.errors]
    [channel] = config.of_kind("EmailChannel")
    incoming = channel.data["incoming"]
    assert (incoming["server"], incoming["auth"]) == ("outlook.office365.com", "microsoft-exchange")
    assert incoming["oauth"]["client_secret"] == "${env:HELP_M365_TEST_CLIENT_SECRET}"
    assert "shared mailboxes" in out.read_text()


def test_a_host_name_that_injects_yaml_makes_the_autoconfig_unusable(
    autoconfig: str, dns_server: DnsServer, cli: Any, tmp_path: Path
) -> None:
    out = tmp_path / "channels.d" / "help.yaml"
    out.parent.mkdir()
    url = f"{autoconfig}/inject"
    result = _discover(cli, dns_server, "help@srv.test", url, "--write", str(out))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[-4].startswith("chosen: srv: imap-ssl imap.srv.test:993")
    assert lines[1] == (
        f"  autoconfig {url}: 'imap.evil.test\\u000A---\\u000Akind: SmtpServer\\u000Aname: "
        "Evil Default\\u000Ahost: evil.test\\u000Adefault: true\\u000A---\\u000A#' is not a "
        "host name; ignored"
    )
    written = out.read_text()
    assert "Evil Default" in written  # quoted in a comment, on one line
    assert all(not line.startswith(("name: Evil", "default:")) for line in written.splitlines())
    config = load_config(out.parent)
    assert not config.errors, [str(d) for d in config.errors]
    assert [r.name for r in config.of_kind("SmtpServer")] == ["smtp.srv.test (help@srv.test)"]


def test_a_port_that_is_not_a_number_makes_the_autoconfig_unusable(
    autoconfig: str, dns_server: DnsServer, cli: Any
) -> None:
    url = f"{autoconfig}/badport"
    result = _discover(cli, dns_server, "help@srv.test", url)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[1] == f"  autoconfig {url}: port 'abc' is not a port number (1-65535); ignored"
    assert lines[-1].startswith("chosen: srv: ")


def test_a_dripping_autoconfig_download_stops_at_its_deadline(
    autoconfig: str, dns_server: DnsServer
) -> None:
    from channelsync.discover import discover
    from channelsync.probe.dnscheck import Lookups

    started = time.monotonic()
    found = discover(
        "help@srv.test", Lookups(dns_server.address), autoconfig_url=f"{autoconfig}/drip",
        timeout=1.0,
    )  # fmt: skip
    assert time.monotonic() - started < 3
    assert found.said[0] == f"autoconfig {autoconfig}/drip: not complete after 1 s; ignored"
    assert found.chosen is not None and found.chosen.source == "srv"


def test_a_dns_server_that_does_not_answer_keeps_the_autoconfig_result(autoconfig: str) -> None:
    import socket

    from channelsync.discover import discover
    from channelsync.probe.dnscheck import Lookups

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # reads nothing, answers never
        silent.bind(("127.0.0.1", 0))
        lookups = Lookups(f"127.0.0.1:{silent.getsockname()[1]}", timeout=0.3)
        url = f"{autoconfig}/mail/config-v1.1.xml"
        found = discover("support@acme.test", lookups, autoconfig_url=url)
    assert found.chosen is not None and found.chosen.source == "autoconfig"
    assert found.said[1].startswith(
        "SRV: the DNS server did not answer (SRV _imaps._tcp.acme.test: "
    )
    assert found.said[2].startswith("MX: the DNS server did not answer (MX acme.test: ")


def test_a_dns_server_variable_that_is_not_an_address_names_the_variable(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANNELSYNC_DNS_SERVER", "dns.example")
    result = cli("discover", "a@acme.test", "--autoconfig-url", "https://127.0.0.1:9/x")
    assert (result.code, result.err) == (
        1,
        "error: CHANNELSYNC_DNS_SERVER: 'dns.example' does not appear to be an IPv4 or IPv6 "
        "address; give an IP address, e.g. 127.0.0.1:5353\n",
    )
