"""A real DNS server on loopback (dnsmasq) for the DNS checks and discovery.

One process for the session, serving the zone below from a config file: MX, TXT (SPF, DMARC,
DKIM), SRV, A and PTR records. Names under ``.test`` that are not listed are NXDOMAIN
(``local=/test/``); nothing is ever forwarded. Settings follow
/work/shared/recipes/dns-and-browser.md.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

BINARY = "dnsmasq"
SBIN = Path("/usr/sbin/dnsmasq")

# dnsmasq options, one per line of its config file
ZONE = (
    # acme.test: delivered by the test Postfix (mail.acme.test = 127.0.0.1), all records good
    "host-record=mail.acme.test,127.0.0.1",
    "host-record=localhost,127.0.0.1",  # the test servers' name
    "mx-host=acme.test,mail.acme.test,10",
    'txt-record=acme.test,"v=spf1 ip4:127.0.0.1 -all"',
    'txt-record=_dmarc.acme.test,"v=DMARC1; p=none; rua=mailto:dmarc@acme.test"',
    'txt-record=s1._domainkey.acme.test,"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIB"',
    "ptr-record=1.0.0.127.in-addr.arpa,mail.acme.test",
    # google.test: MX at Google, SPF that does not authorise 127.0.0.1, invalid DMARC
    "mx-host=google.test,aspmx.l.google.com,1",
    'txt-record=google.test,"v=spf1 include:_spf.google.test -all"',
    'txt-record=_spf.google.test,"v=spf1 ip4:192.0.2.0/24 -all"',
    'txt-record=_dmarc.google.test,"v=DMARC1; p=sometimes"',
    # m365.test: MX at Microsoft 365
    "mx-host=m365.test,m365-test.mail.protection.outlook.com,0",
    # bare.test: an A record and nothing else (no MX, SPF, DMARC, DKIM)
    "host-record=bare.test,127.0.0.2",
    # loops.test: an SPF whose includes need more than 10 lookups
    *(f'txt-record=l{i}.loops.test,"v=spf1 include:l{i + 1}.loops.test -all"' for i in range(12)),
    'txt-record=loops.test,"v=spf1 include:l0.loops.test -all"',
    # ptr.test: a custom SMTP host whose address points back at another name
    "host-record=smtp.ptr.test,127.0.0.3",
    "ptr-record=3.0.0.127.in-addr.arpa,elsewhere.example.test",
    # srv.test: RFC 6186 SRV records for discovery
    "srv-host=_imaps._tcp.srv.test,imap.srv.test,993,0,1",
    "srv-host=_submission._tcp.srv.test,smtp.srv.test,587,0,1",
    # fan.test: an SPF that includes itself 20 times (exponential without RFC 7208's limits)
    'txt-record=fan.test,"v=spf1 ' + " ".join(["include:fan.test"] * 20) + ' -all"',
    # many.test: 11 includes before Microsoft 365's: too many lookups for a receiver
    'txt-record=many.test,"v=spf1 '
    + " ".join(f"include:i{i}.many.test" for i in range(11))
    + ' include:spf.protection.outlook.com -all"',
    *(f'txt-record=i{i}.many.test,"v=spf1 ip4:192.0.2.{i} -all"' for i in range(11)),
    # cidr.test: SPF 'a' with a CIDR length (net.cidr.test's /24 holds 127.0.0.1)
    "host-record=net.cidr.test,127.0.0.9",
    'txt-record=cidr.test,"v=spf1 a:net.cidr.test/24 -all"',
    # dangling.test: an SPF include of a name without an SPF record
    'txt-record=dangling.test,"v=spf1 include:gone.dangling.test -all"',
    # nullmx.test: RFC 7505 null MX, accepts no mail
    "mx-host=nullmx.test,.,0",
    # broken._domainkey.acme.test: forwarded to a port nobody answers on (SERVFAIL)
    "server=/broken._domainkey.acme.test/127.0.0.1#9",
    "local=/test/",
    "local=/localhost/",
    "local=/127.in-addr.arpa/",
)


@dataclass
class DnsServer:
    port: int
    state: Path
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        shutil.rmtree(self.state, ignore_errors=True)


def binary() -> str | None:
    found = shutil.which(BINARY)
    return found or (str(SBIN) if SBIN.exists() else None)


def _free_udp_and_tcp_port() -> int:
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def _spawn(executable: str, port: int, state: Path, err: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            executable,
            "--keep-in-foreground",
            f"--port={port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            f"--conf-file={state / 'zone.conf'}",
            f"--log-facility={state / 'dnsmasq.log'}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )


def start(executable: str, zone: Sequence[str] = ZONE) -> DnsServer:
    """dnsmasq serving ``zone`` (dnsmasq options); the caller must call ``stop()``."""
    state = Path(tempfile.mkdtemp(prefix="channelsync-dns-"))
    (state / "zone.conf").write_text("\n".join(zone) + "\n")
    port = _free_udp_and_tcp_port()
    with open(state / "stderr.log", "wb") as err:
        process = _spawn(executable, port, state, err)
    server = DnsServer(port, state, process)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                error = (state / "stderr.log").read_text(errors="replace").strip()
                server.stop()
                raise RuntimeError(f"dnsmasq did not start: {error}") from None
            time.sleep(0.02)
