"""Hostile IMAP/POP3 servers against the round trip and the mailbox stats: every read and wait
is bounded, so each check ends (protocol_error or timeout) instead of hanging or filling the
memory; and an interrupted round trip stops at once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.dnsserver import DnsServer
from tests.mailservers import PASSWORD, MailServers
from tests.probe.conftest import SECRET_ENV, write
from tests.probe.responder import Responder, Stream

Password = Any
Responders = Callable[..., Responder]
INSECURE = "the credentials were sent without TLS (incoming.allow_insecure_auth: true)"


def _flood(conn: socket.socket) -> None:
    while True:
        conn.sendall((b"* OK " + b"x" * 900 + b"\r\n") * 64)


def _drip(conn: socket.socket) -> None:
    conn.sendall(b"* SEARCH")
    while True:
        conn.sendall(b" 1")
        time.sleep(0.2)


def _literal(conn: socket.socket) -> None:
    conn.sendall(b"* 1 FETCH (UID 7 BODY[HEADER]<0> {4000000000}\r\n")
    while True:
        conn.sendall(b"A" * 65536)


def _imap(on_search: Stream | None = None) -> Callable[[str, dict[str, str]], Any]:
    """A plain IMAP server whose SEARCH answer is ``on_search`` (default: UID 7, whose FETCH
    announces a 4 GB literal)."""

    def script(line: str, state: dict[str, str]) -> Any:
        tag, _, rest = line.partition(" ")
        command = rest.upper()
        if command.startswith("LOGIN"):
            return f"{tag} OK logged in\r\n"
        if command.startswith(("EXAMINE", "SELECT")):
            return f"* 1 EXISTS\r\n{tag} OK [READ-ONLY] done\r\n"
        if "SEARCH" in command:
            return on_search or f"* SEARCH 7\r\n{tag} OK done\r\n"
        if "FETCH" in command and on_search is None:
            return _literal
        if command.startswith("LOGOUT"):
            return None
        return f"{tag} OK done\r\n"

    return script


def _pop3(listing: Callable[[int], Stream | str]) -> Callable[[str, dict[str, str]], Any]:
    """A plain POP3 server (no STLS) whose n-th UIDL is answered with ``listing(n)``."""
    uidls = [0]

    def script(line: str, state: dict[str, str]) -> Any:
        command = line.split(" ")[0].upper()
        if command == "CAPA":
            return "+OK\r\nUSER\r\nUIDL\r\n.\r\n"
        if command == "STAT":
            return "+OK 0 0\r\n"
        if command == "UIDL":
            uidls[0] += 1
            return listing(uidls[0])
        if command == "QUIT":
            return None
        return "+OK\r\n"

    return script


def _endless_uidl(conn: socket.socket) -> None:
    conn.sendall(b"+OK\r\n")
    n = 1
    while True:
        conn.sendall(b"".join(b"%d uid%d\r\n" % (n + i, n + i) for i in range(1000)))
        n += 1000


def _hostile_channel(port: int, protocol: str) -> dict[str, Any]:
    return {
        "kind": "EmailChannel",
        "name": "Hostile",
        "email": "lost@google.test",  # the test Postfix discards it: only the watch matters
        "enabled": True,
        "incoming": {
            "server": "127.0.0.1",
            "protocol": protocol,
            "port": port,
            "user": "support@acme.test",
            "password": "${env:" + SECRET_ENV + "}",
            "allow_insecure_auth": True,
        },
    }


def _relay(mail: MailServers) -> dict[str, Any]:
    from tests.probe.test_end_to_end import _relay

    return _relay(mail, default=True)


@pytest.fixture
def _dns(dns_server: DnsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANNELSYNC_DNS_SERVER", dns_server.address)


IMAP_GREETING = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n"
Watch = Callable[..., tuple[Responder, dict[str, Any]]]


@pytest.fixture
def watch(
    mail: MailServers,
    config_dir: Path,
    mail_ca: Path,
    password: Password,
    cli: Any,
    responders: Responders,
    _dns: None,
) -> Watch:
    """A round trip through the real Postfix whose mailbox is a scripted server; the server
    and the trip's JSON."""

    def run(
        greeting: str, script: Any, protocol: str, e2e_timeout: str
    ) -> tuple[Responder, dict[str, Any]]:
        server = responders(greeting, script)
        write(config_dir, _relay(mail), _hostile_channel(server.port, protocol))
        result = cli(
            "test", "--dir", str(config_dir), "--end-to-end", "--format", "json",
            "--timeout", "2", "--e2e-timeout", e2e_timeout,
        )  # fmt: skip
        assert "Traceback" not in result.err
        assert result.code == 1
        [trip] = json.loads(result.out)["e2e"]
        return server, dict(trip)

    return run


@pytest.mark.parametrize(
    ("search", "codes"),
    [(None, ("protocol_error",)), (_flood, ("protocol_error", "timeout")), (_drip, ("timeout",))],
    ids=["4-GB-literal", "endless-untagged-flood", "slow-drip"],
)
def test_a_hostile_imap_mailbox_ends_the_watch_with_a_diagnosis(
    watch: Watch, search: Stream | None, codes: tuple[str, ...]
) -> None:
    _, trip = watch(IMAP_GREETING, _imap(search), "imap", "2")
    assert trip["error"]["code"] == "e2e_mailbox_failed"
    assert trip["error"]["message"].split(": ")[:2] in [
        ["watching the mailbox failed", code] for code in codes
    ]


def test_an_endless_pop3_listing_ends_the_watch_as_protocol_error(watch: Watch) -> None:
    # the listing before the probe is sent is empty; the next one never ends
    script = _pop3(lambda n: "+OK\r\n.\r\n" if n == 1 else _endless_uidl)
    _, trip = watch("+OK hi\r\n", script, "pop3", "3")
    assert trip["error"]["message"] == (
        "watching the mailbox failed: protocol_error: the answer to UIDL is over 500,000 lines; "
        "a mail server's is not"
    )


def test_the_clear_text_warning_is_given_once_however_many_pop3_sessions_the_watch_opens(
    watch: Watch,
) -> None:
    server, trip = watch("+OK hi\r\n", _pop3(lambda n: "+OK\r\n.\r\n"), "pop3", "1.5")
    assert trip["error"]["code"] == "e2e_timeout"
    assert server.received.count("UIDL") > 2  # several sessions, one warning
    assert trip["warnings"] == [INSECURE]


@pytest.mark.parametrize(
    ("search", "codes"), [(_flood, ("protocol_error", "timeout")), (_drip, ("timeout",))]
)
def test_the_mailbox_stats_of_a_hostile_imap_server_end_the_check(
    config_dir: Path,
    password: Password,
    cli: Any,
    responders: Responders,
    search: Stream,
    codes: tuple[str, ...],
) -> None:
    server = responders(IMAP_GREETING, _imap(search))
    write(config_dir, _hostile_channel(server.port, "imap"))
    args = ("test", "--dir", str(config_dir), "--format", "json", "--timeout", "2")
    result = cli(*args)
    assert result.code == 1
    [check] = json.loads(result.out)["results"]
    assert check["error"]["code"] in codes


def _append(mail: MailServers, user: str, *messages: bytes) -> None:
    import imaplib
    import ssl

    ctx = ssl.create_default_context(cafile=str(mail.ca_file))
    client = imaplib.IMAP4_SSL("localhost", mail.ports["imaps"], ssl_context=ctx, timeout=10)
    try:
        client.login(user, PASSWORD)
        for message in messages:
            client.append("INBOX", None, None, message)
    finally:
        client.logout()


def test_a_pop3_watch_skips_messages_with_a_huge_header_or_line_and_finds_the_probe(
    mail: MailServers, config_dir: Path, mail_ca: Path, password: Password
) -> None:
    from channelsync.loader import load_config
    from channelsync.probe import e2e
    from channelsync.probe.check import Attempt

    doc = _hostile_channel(mail.ports["pop3s"], "pop3-ssl")
    doc["incoming"].update(
        server="localhost", user="quiet@acme.test", tls={"ca_file": "certs/ca.pem"}
    )
    doc["incoming"].pop("allow_insecure_auth")
    write(config_dir, _relay(mail), doc)
    config = load_config(config_dir)
    [p] = e2e.plan(config.of_kind("EmailChannel"), config.of_kind("SmtpServer"))
    trip = e2e.Trip("Hostile", "lost@google.test", "timeout", probe_id=os.urandom(8).hex())
    _append(
        mail,
        "quiet@acme.test",
        b"Subject: big\r\n" + b"X-Pad: " + b"p" * 1000 + b"\r\n" * 1 + (b"X-Pad: p\r\n" * 300_000),
        b"Subject: long line\r\nX-Long: " + b"l" * 5000 + b"\r\n\r\nbody\r\n",
        e2e._message(trip),
    )
    watch = Attempt(p.incoming, 10)
    assert e2e._watch(watch, trip, time.monotonic() + 5, False, set(), None) is not None


def test_ctrl_c_stops_a_round_trip_at_once(
    mail: MailServers,
    config_dir: Path,
    mail_ca: Path,
    dns_server: DnsServer,
    responders: Responders,
) -> None:
    server = responders("+OK hi\r\n", _pop3(lambda n: "+OK\r\n.\r\n"))
    write(config_dir, _relay(mail), _hostile_channel(server.port, "pop3"))
    env = {**os.environ, SECRET_ENV: PASSWORD, "CHANNELSYNC_DNS_SERVER": dns_server.address}
    command = [sys.executable, "-m", "channelsync", "test", "--dir", str(config_dir)]
    process = subprocess.Popen(
        [*command, "--end-to-end", "--e2e-timeout", "600"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        while server.received.count("UIDL") < 2:  # the watch is polling
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)  # not the 600 s of --e2e-timeout
    finally:
        process.kill()
    assert process.returncode == 130
    assert err.decode().strip().endswith("interrupted")


def _slow_smtp(delay: float) -> Callable[[str, dict[str, str]], Any]:
    """An SMTP relay that takes ``delay`` seconds to queue a message (and discards it)."""

    def script(line: str, state: dict[str, str]) -> Any:
        if state.get("data"):
            if line != ".":
                return ""
            del state["data"]
            time.sleep(delay)
            return "250 2.0.0 queued as 1234\r\n"
        command = line.split(" ")[0].upper()
        if command == "EHLO":
            return "250-relay\r\n250 8BITMIME\r\n"
        if command == "DATA":
            state["data"] = "1"
            return "354 go on\r\n"
        if command == "QUIT":
            return None
        return "250 ok\r\n"

    return script


def test_the_watch_budget_starts_when_the_probe_is_out_so_a_lost_probe_is_e2e_timeout(
    config_dir: Path, password: Password, cli: Any, responders: Responders
) -> None:
    # looking before sending (1.5 s) and sending (2.4 s) take more than --timeout 3 together;
    # neither counts against the time the probe has to arrive
    def listing(n: int) -> str:
        if n == 1:
            time.sleep(1.5)
        return "+OK\r\n.\r\n"

    relay = responders("220 relay ESMTP\r\n", _slow_smtp(2.4))
    mailbox = responders("+OK hi\r\n", _pop3(listing))
    smtp = {"kind": "SmtpServer", "name": "Slow", "host": "127.0.0.1", "port": relay.port}
    write(
        config_dir,
        {**smtp, "security": "none", "default": True},
        _hostile_channel(mailbox.port, "pop3"),
    )
    result = cli(
        "test", "--dir", str(config_dir), "--end-to-end", "--format", "json",
        "--timeout", "3", "--e2e-timeout", "1.5",
    )  # fmt: skip
    [trip] = json.loads(result.out)["e2e"]
    assert trip["error"]["code"] == "e2e_timeout", trip["error"]
    assert "look for the subject" in trip["error"]["hint"]


@pytest.mark.usefixtures("_dns")
def test_round_trips_all_run_at_once_whatever_the_connection_tests_concurrency(
    mail: MailServers, config_dir: Path, mail_ca: Path, password: Password, cli: Any,
    responders: Responders,
) -> None:  # fmt: skip
    # each mailbox answers its first listing only once the other one is being listed too
    both = threading.Barrier(2, timeout=20)

    def listing(n: int) -> str:
        if n == 1:
            try:
                both.wait()
            except threading.BrokenBarrierError:
                return "-ERR the round trips ran one after the other\r\n"
        return "+OK\r\n.\r\n"

    channels = []
    for i in (1, 2):
        doc = _hostile_channel(responders("+OK hi\r\n", _pop3(listing)).port, "pop3")
        channels.append({**doc, "name": f"Hostile {i}", "email": f"lost{i}@google.test"})
    write(config_dir, _relay(mail), *channels)
    result = cli(
        "test", "--dir", str(config_dir), "--end-to-end", "--format", "json",
        "--concurrency", "1", "--timeout", "30", "--e2e-timeout", "1",
    )  # fmt: skip
    trips = json.loads(result.out)["e2e"]
    assert [t["error"]["code"] for t in trips] == ["e2e_timeout", "e2e_timeout"], trips


def test_a_pipelining_relay_gets_mail_rcpt_and_data_in_one_write(
    config_dir: Path, password: Password, cli: Any, responders: Responders
) -> None:
    # this relay answers MAIL and RCPT only once DATA has arrived: a client that waited for
    # each answer (two round trips more) would time out
    def script(line: str, state: dict[str, str]) -> Any:
        command = line.split(" ")[0].upper()
        if state.get("data"):
            return "" if line != "." else "250 2.0.0 queued as 1234\r\n"
        if command == "EHLO":
            return "250-relay\r\n250 PIPELINING\r\n"
        if command in ("MAIL", "RCPT"):
            return ""
        if command == "DATA":
            state["data"] = "1"
            return "250 ok\r\n250 ok\r\n354 go on\r\n"
        return None if command == "QUIT" else "250 ok\r\n"

    relay = responders("220 relay ESMTP\r\n", script)
    mailbox = responders("+OK hi\r\n", _pop3(lambda n: "+OK\r\n.\r\n"))
    smtp = {"kind": "SmtpServer", "name": "Piped", "host": "127.0.0.1", "port": relay.port}
    channel = _hostile_channel(mailbox.port, "pop3")
    write(config_dir, {**smtp, "security": "none", "default": True}, channel)
    result = cli(
        "test", "--dir", str(config_dir), "--end-to-end", "--format", "json",
        "--timeout", "2", "--e2e-timeout", "0.5",
    )  # fmt: skip
    [trip] = json.loads(result.out)["e2e"]
    assert trip["error"]["code"] == "e2e_timeout", trip["error"]  # sent, and never seen
