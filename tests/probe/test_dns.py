"""`channelsync test --dns` against dnsmasq on loopback (the zone is tests/dnsserver.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from channelsync.loader import load_config
from channelsync.probe.dnscheck import Lookups, check_channels
from tests.dnsserver import DnsServer
from tests.probe.conftest import write


def _channel(email: str, server: str | None = "Relay", **outgoing: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "EmailChannel",
        "name": email,
        "email": email,
        "enabled": True,
        "incoming": {
            "server": "localhost",
            "protocol": "imap-ssl",
            "user": email,
            "password": "${env:P}",
        },
    }
    if server:
        doc["outgoing"] = {"server": server, **outgoing}
    return doc


def _relay(host: str = "mail.acme.test", **fields: Any) -> dict[str, Any]:
    return {"kind": "SmtpServer", "name": "Relay", "host": host, **fields}


def _check(
    cli: Any, config_dir: Path, dns_server: DnsServer, *docs: dict[str, Any]
) -> tuple[int, dict[str, dict[str, Any]]]:
    write(config_dir, *docs)
    result = cli(
        "test", "--dir", str(config_dir), "--dns", "--dns-server", dns_server.address,
        "--format", "json",
    )  # fmt: skip
    assert "Traceback" not in result.err
    report = json.loads(result.out)
    by_check = {r["name"]: {f["check"]: f for f in r["findings"]} for r in report["dns"]}
    return result.code, by_check


def test_a_well_kept_domain_passes_every_check(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    code, found = _check(
        cli, config_dir, dns_server, _relay(dkim_selectors=["s1"]), _channel("support@acme.test")
    )
    assert code == 0, found
    checks = found["support@acme.test"]
    assert {c: f["status"] for c, f in checks.items()} == {
        "mx": "ok", "spf": "ok", "dkim": "ok", "ptr": "ok", "dmarc": "ok",
    }  # fmt: skip
    assert checks["spf"]["detail"] == "v=spf1 ip4:127.0.0.1 -all (pass for 127.0.0.1)"
    assert checks["dmarc"]["detail"].startswith("policy p=none: v=DMARC1; p=none")
    assert checks["ptr"]["detail"] == "127.0.0.1 <-> mail.acme.test"


def test_mx_at_google_spf_fail_and_invalid_dmarc(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    code, found = _check(cli, config_dir, dns_server, _relay(), _channel("help@google.test"))
    assert code == 1
    checks = found["help@google.test"]
    assert checks["mx"]["code"] == "mx_mismatch"
    assert checks["spf"]["code"] == "spf_fail"
    assert checks["spf"]["detail"] == (
        "the SPF of google.test (v=spf1 include:_spf.google.test -all) does not authorise "
        "mail.acme.test: 127.0.0.1 (fail)"
    )
    assert checks["dmarc"]["code"] == "dmarc_invalid"
    assert checks["dmarc"]["detail"] == (
        "_dmarc.google.test does not parse (p=sometimes): v=DMARC1; p=sometimes"
    )
    assert "Outlook.com (since May 2025, '550 5.7.515" in checks["dmarc"]["hint"]


def test_a_bare_domain_has_no_mx_spf_or_dmarc(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    code, found = _check(cli, config_dir, dns_server, _relay(), _channel("info@bare.test"))
    assert code == 1
    assert {c: f["code"] for c, f in found["info@bare.test"].items() if f["code"]} == {
        "mx": "mx_missing", "spf": "spf_missing", "dmarc": "dmarc_missing",
    }  # fmt: skip


def test_spf_needing_more_than_ten_lookups(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    code, found = _check(cli, config_dir, dns_server, _relay(), _channel("x@loops.test"))
    assert code == 1
    assert found["x@loops.test"]["spf"]["code"] == "spf_too_many_lookups"
    assert found["x@loops.test"]["spf"]["detail"] == (
        "evaluating the SPF of l9.loops.test needs more than 10 DNS lookups (permerror: "
        "receivers treat it as no SPF)"
    )


def test_missing_dkim_selector_key(config_dir: Path, dns_server: DnsServer, cli: Any) -> None:
    _, found = _check(
        cli, config_dir, dns_server, _relay(dkim_selectors=["s1"]),
        _channel("support@acme.test", dkim_selectors=["s2"]),
    )  # fmt: skip
    dkim = found["support@acme.test"]["dkim"]
    assert (dkim["code"], dkim["detail"]) == (
        "dkim_missing",
        "s2._domainkey.acme.test has no DKIM key",
    )


def test_reverse_dns_that_does_not_confirm_forward(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    _, found = _check(
        cli, config_dir, dns_server, _relay("smtp.ptr.test"), _channel("support@acme.test")
    )
    ptr = found["support@acme.test"]["ptr"]
    assert ptr["code"] == "ptr_mismatch"
    assert ptr["detail"] == (
        "127.0.0.3 (smtp.ptr.test) reverses to elsewhere.example.test, which does not resolve "
        "back to 127.0.0.3"
    )
    assert found["support@acme.test"]["spf"]["code"] == "spf_fail"


def test_known_provider_smtp_needs_its_include(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    _, found = _check(
        cli, config_dir, dns_server, _relay("smtp.office365.com"), _channel("support@acme.test")
    )
    checks = found["support@acme.test"]
    assert checks["spf"]["detail"] == (
        "the SPF of acme.test (v=spf1 ip4:127.0.0.1 -all) does not include "
        "spf.protection.outlook.com, which Microsoft 365's smtp.office365.com sends from"
    )
    assert "ptr" not in checks  # the provider's own reverse DNS is not ours to check


def test_vcc_internal_channel_is_told_it_sends_from_the_tenant_default(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    code, found = _check(cli, config_dir, dns_server, _channel("support@acme.test", None))
    assert code == 0
    outgoing = found["support@acme.test"]["outgoing"]
    assert outgoing["status"] == "note"
    assert outgoing["detail"].startswith("replies leave through 'VCC Internal' from the tenant's")


def test_each_name_is_queried_once_per_run(config_dir: Path, dns_server: DnsServer) -> None:
    channels = [_channel(f"c{i}@acme.test") | {"name": f"C{i}"} for i in range(40)]
    write(config_dir, _relay(dkim_selectors=["s1"]), *channels)
    config = load_config(config_dir)
    lookups = Lookups(dns_server.address)
    reports = check_channels(
        config.of_kind("EmailChannel"), config.of_kind("SmtpServer"), lookups, concurrency=16
    )
    assert all(r.ok for r in reports)
    # MX, TXT (SPF), A+AAAA of the host, PTR, A+AAAA of the PTR name, DKIM, DMARC
    assert lookups.queries == len(lookups._answers) <= 10


@pytest.mark.parametrize("server", ["dns.example.test", "127.0.0.1:99999"])
def test_a_dns_server_that_is_not_an_address_is_a_clear_error(
    server: str, config_dir: Path, cli: Any
) -> None:
    write(config_dir, _channel("support@acme.test", None))
    result = cli("test", "--dir", str(config_dir), "--dns", "--dns-server", server)
    assert result.code == 1
    assert result.err.startswith("error: --dns-server: ")
    assert result.err.endswith("; give an IP address, e.g. 127.0.0.1:5353\n")


def test_no_system_resolver_is_one_clear_line(
    config_dir: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dns.resolver

    def no_config(*args: Any, **kwargs: Any) -> None:
        raise dns.resolver.NoResolverConfiguration("no nameservers")

    monkeypatch.delenv("CHANNELSYNC_DNS_SERVER", raising=False)
    monkeypatch.setattr(dns.resolver, "Resolver", no_config)
    write(config_dir, _channel("support@acme.test", None))
    result = cli("test", "--dir", str(config_dir), "--dns")
    assert (result.code, result.err) == (
        1,
        "error: no system resolver (no nameservers); pass --dns-server\n",
    )


@pytest.mark.parametrize(
    "domain",
    [
        "fan.test",  # includes itself 20 times: exponential without the limit
        "many.test",  # 11 includes before Microsoft 365's own
    ],
)
def test_the_lookup_limit_bounds_the_walk_to_a_known_providers_include(
    domain: str, config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    started = time.monotonic()
    code, found = _check(
        cli, config_dir, dns_server, _relay("smtp.office365.com"), _channel(f"help@{domain}")
    )
    assert time.monotonic() - started < 5
    assert code == 1
    spf = found[f"help@{domain}"]["spf"]
    assert (spf["code"], spf["detail"]) == (
        "spf_too_many_lookups",
        f"evaluating the SPF of {domain} needs more than 10 DNS lookups (permerror: receivers "
        "treat it as no SPF)",
    )


def test_spf_a_term_with_a_cidr_length_authorises_its_network(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    _, found = _check(cli, config_dir, dns_server, _relay(), _channel("help@cidr.test"))
    spf = found["help@cidr.test"]["spf"]
    assert (spf["status"], spf["detail"]) == (
        "ok",
        "v=spf1 a:net.cidr.test/24 -all (pass for 127.0.0.1)",
    )


def test_spf_cidr_lengths_of_every_mechanism() -> None:
    from channelsync.probe.dnscheck import _cidr, _terms

    assert _terms("v=spf1 a/24 mx:m.test/16//64 ip4:10.0.0.0/8 -all redirect=r.test") == [
        ("+", "a", "/24"), ("+", "mx", "m.test/16//64"), ("+", "ip4", "10.0.0.0/8"),
        ("-", "all", ""), ("", "redirect=", "r.test"),
    ]  # fmt: skip
    assert _cidr("/24", "own.test") == ("own.test", 24, 128)
    assert _cidr("m.test/16//64", "own.test") == ("m.test", 16, 64)


def test_an_unknown_gateway_in_front_of_microsoft_365_is_a_note(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    channel = _channel("help@acme.test")
    channel["incoming"]["server"] = "outlook.office365.com"
    code, found = _check(cli, config_dir, dns_server, _relay(), channel)
    mx = found["help@acme.test"]["mx"]
    assert (mx["status"], mx["code"], mx["detail"]) == (
        "note",
        None,
        "MX of acme.test points at mail.acme.test, not at Microsoft 365, which the channel "
        "polls (outlook.office365.com)",
    )
    assert code == 0


def test_mx_at_one_known_provider_while_polling_another_is_a_mismatch(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    channel = _channel("help@google.test")
    channel["incoming"]["server"] = "outlook.office365.com"
    _, found = _check(cli, config_dir, dns_server, _relay(), channel)
    assert found["help@google.test"]["mx"]["detail"] == (
        "MX of google.test points at Google (aspmx.l.google.com), but the channel polls "
        "Microsoft 365 (outlook.office365.com)"
    )


def test_a_null_mx_accepts_no_mail(config_dir: Path, dns_server: DnsServer, cli: Any) -> None:
    _, found = _check(cli, config_dir, dns_server, _relay(), _channel("help@nullmx.test"))
    mx = found["help@nullmx.test"]["mx"]
    assert (mx["code"], mx["detail"]) == (
        "mx_missing",
        "nullmx.test has a null MX (0 .): it accepts no mail",
    )


def test_a_subdomain_without_dmarc_falls_back_to_its_parent(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    _, found = _check(cli, config_dir, dns_server, _relay(), _channel("help@sub.acme.test"))
    dmarc = found["help@sub.acme.test"]["dmarc"]
    assert dmarc["status"] == "ok"
    assert dmarc["detail"].startswith("policy p=none (from _dmarc.acme.test): v=DMARC1; p=none")


def test_one_failing_lookup_keeps_the_other_findings(
    config_dir: Path, dns_server: DnsServer
) -> None:
    write(config_dir, _relay(dkim_selectors=["broken", "s1"]), _channel("support@acme.test"))
    config = load_config(config_dir)
    [report] = check_channels(
        config.of_kind("EmailChannel"),
        config.of_kind("SmtpServer"),
        Lookups(dns_server.address, timeout=0.5),
    )
    assert [(f.check, f.status) for f in report.findings] == [
        ("mx", "ok"), ("spf", "ok"), ("dns", "fail"), ("dkim", "ok"), ("ptr", "ok"),
        ("dmarc", "ok"),
    ]  # fmt: skip
    assert report.findings[2].detail.startswith(
        "the DNS server did not answer: TXT broken._domainkey.acme.test: "
    )


def test_an_include_without_an_spf_record_is_a_permerror(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    _, found = _check(cli, config_dir, dns_server, _relay(), _channel("help@dangling.test"))
    spf = found["help@dangling.test"]["spf"]
    assert (spf["code"], spf["detail"]) == (
        "spf_fail",
        "include:gone.dangling.test in the SPF of dangling.test has no SPF record (permerror: "
        "receivers treat it as no SPF)",
    )
    assert spf["hint"].startswith("fix the record so that every name it refers to exists; ")
