"""Benchmarks for the mail-flow checks (issue 13's Speed section).

1. `test --end-to-end` of 100 channels through the local Postfix -> Dovecot with a 100 ms
   latency proxy (bench/probe.py's DelayProxy) in front of both SMTP submission and IMAPS.
   Target: the wall time is at most 1.5 x the slowest single delivery + 2 s: one channel's
   delivery latency (probe sent -> seen in the mailbox), measured alone first (3 times), so
   that the target does not rise with what the 100-channel run itself measures.
2. `test --dns` of 1,000 channels over 200 domains against the local dnsmasq. Target: <= 1 s.

    python bench/mailflow.py [--channels 100] [--delay-ms 100] [--dns-channels 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from tests import dnsserver, mailservers  # noqa: E402

from probe import DelayProxy  # noqa: E402

RELAY = """\
kind: SmtpServer
name: Relay
host: localhost
port: {port}
user: {user}
password: ${{env:BENCH_PASSWORD}}
default: true
tls: {{ca_file: certs/ca.pem}}
"""
CHANNEL = """\
kind: EmailChannel
name: Trip {i:03d}
email: trip{i:03d}@acme.test
enabled: true
incoming:
  server: localhost
  protocol: imap-ssl
  port: {port}
  user: trip{i:03d}@acme.test
  password: ${{env:BENCH_PASSWORD}}
  tls: {{ca_file: certs/ca.pem}}
"""


def round_trips(channels: int, delay_ms: float) -> bool:
    from channelsync.loader import load_config
    from channelsync.probe.e2e import run_trips

    servers = mailservers.start()
    one_way = delay_ms / 2000
    smtp, imaps = DelayProxy(servers.ports["submission"], one_way), None
    folder = Path(tempfile.mkdtemp(prefix="channelsync-bench-"))
    try:
        imaps = DelayProxy(servers.ports["imaps"], one_way)
        users = [f"trip{i:03d}@acme.test" for i in range(channels)]
        with open(servers.state / "dovecot" / "passwd", "a") as passwd:
            passwd.writelines(f"{u}:{{PLAIN}}{mailservers.PASSWORD}\n" for u in users)
        (folder / "certs").mkdir()
        shutil.copy(servers.ca_file, folder / "certs" / "ca.pem")
        (folder / "relay.yaml").write_text(RELAY.format(port=smtp.port, user=mailservers.USER))
        for i in range(channels):
            (folder / f"trip-{i:03d}.yaml").write_text(CHANNEL.format(i=i, port=imaps.port))
        os.environ["BENCH_PASSWORD"] = mailservers.PASSWORD
        config = load_config(folder)
        assert not config.errors, [str(d) for d in config.errors]
        every = config.of_kind("EmailChannel")
        smtp_servers = config.of_kind("SmtpServer")

        singles = [run_trips(every[:1], smtp_servers, e2e_timeout=60)[0] for _ in range(3)]
        started = time.perf_counter()
        trips = run_trips(every, smtp_servers, e2e_timeout=60)
        wall = time.perf_counter() - started
    finally:
        smtp.stop()
        if imaps is not None:
            imaps.stop()
        servers.stop()
        shutil.rmtree(folder, ignore_errors=True)
    arrived = [t for t in trips if t.status == "arrived"]
    slowest = max((t.latency_ms or 0) for t in arrived) / 1000 if arrived else float("nan")
    single = max((t.latency_ms or 0) for t in singles) / 1000
    target = 1.5 * single + 2
    print(
        f"test --end-to-end: 1 channel alone: slowest delivery {single:.2f} s of 3; "
        f"{channels} channels, +{delay_ms:g} ms per round trip: {wall:.2f} s wall, "
        f"{len(arrived)} arrived, slowest delivery {slowest:.2f} s "
        f"(target <= 1.5 x the slowest single delivery + 2 s = {target:.2f} s)"
    )
    return (
        len(arrived) == channels
        and all(t.status == "arrived" for t in singles)
        and (wall <= target)
    )


def dns_checks(channels: int, domains: int) -> bool:
    from channelsync.loader import load_config
    from channelsync.probe.dnscheck import Lookups, check_channels

    zone = ["local=/test/", "local=/127.in-addr.arpa/"]
    for d in range(domains):
        name = f"d{d:03d}.test"
        zone += [
            f"host-record=mail.{name},127.0.{d // 250}.{d % 250 + 1}",
            f"mx-host={name},mail.{name},10",
            f'txt-record={name},"v=spf1 a:mail.{name} -all"',
            f'txt-record=_dmarc.{name},"v=DMARC1; p=none"',
            f"ptr-record={d % 250 + 1}.{d // 250}.0.127.in-addr.arpa,mail.{name}",
        ]
    executable = dnsserver.binary()
    assert executable, "dnsmasq is not installed"
    server = dnsserver.start(executable, zone)
    folder = Path(tempfile.mkdtemp(prefix="channelsync-bench-"))
    try:
        docs = []
        for d in range(domains):
            docs.append({"kind": "SmtpServer", "name": f"Relay {d}", "host": f"mail.d{d:03d}.test"})
        for i in range(channels):
            d = i % domains
            docs.append(
                {
                    "kind": "EmailChannel",
                    "name": f"C{i:04d}",
                    "email": f"c{i:04d}@d{d:03d}.test",
                    "enabled": True,
                    "incoming": {
                        "server": f"mail.d{d:03d}.test",
                        "protocol": "imap-ssl",
                        "user": "u",
                        "password": "${env:P}",
                    },
                    "outgoing": {"server": f"Relay {d}"},
                }
            )
        (folder / "all.yaml").write_text("---\n".join(json.dumps(doc) + "\n" for doc in docs))
        config = load_config(folder)
        assert not config.errors, [str(d) for d in config.errors][:3]
        started = time.perf_counter()
        lookups = Lookups(server.address)
        reports = check_channels(
            config.of_kind("EmailChannel"), config.of_kind("SmtpServer"), lookups
        )
        wall = time.perf_counter() - started
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    failed = sum(1 for r in reports if not r.ok)
    print(
        f"test --dns: {channels} channels over {domains} domains: {wall:.2f} s "
        f"(target <= 1 s), {lookups.queries} DNS queries, {failed} failed"
    )
    return failed == 0 and wall <= 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    parser.add_argument("--dns-channels", type=int, default=1000)
    parser.add_argument("--domains", type=int, default=200)
    opts = parser.parse_args()
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("bench/mailflow.py: watchdog fired"))
    signal.alarm(300)
    ok = dns_checks(opts.dns_channels, opts.domains)
    ok = round_trips(opts.channels, opts.delay_ms) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
