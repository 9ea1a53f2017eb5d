"""Deliverability: the DNS records that decide whether mail reaches a channel and whether its
replies are accepted (``channelsync test --dns``).

Per channel: the MX of its address domain (exists, and points at the provider it polls), the
SPF of its From domain (exists, and authorises the outgoing path), DMARC (exists, parses),
DKIM (each configured selector's key exists) and, for a custom SMTP host, forward-confirmed
reverse DNS. Every name is looked up once per run, however many channels share it.

SPF is evaluated here (RFC 7208 without macros) with dnspython: the SPF/DMARC libraries on
PyPI parse records and count lookups but do not evaluate a record for an address, and the
best known one (checkdmarc) brings a dozen more dependencies for what is ~100 lines.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from channelsync.defaults import BUILTIN_SMTP_SERVER, PROBE_CONCURRENCY, tenant_default_server

if TYPE_CHECKING:
    from channelsync.loader import Loaded

DNS_SERVER_ENV = "CHANNELSYNC_DNS_SERVER"
SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4
SPF_VOID_LIMIT = 2  # RFC 7208 4.6.4
CODES = (
    "mx_missing",
    "mx_mismatch",
    "spf_missing",
    "spf_fail",
    "spf_too_many_lookups",
    "dmarc_missing",
    "dmarc_invalid",
    "dkim_missing",
    "ptr_mismatch",
    "dns_error",
)
SENDER_RULES = (
    "Gmail and Yahoo (since February 2024) and Outlook.com (since May 2025, '550 5.7.515 "
    "Access denied, sending domain ... does not meet the required authentication level.') "
    "want SPF and DKIM passing and DMARC at least p=none, aligned with the From domain"
)

Status = Literal["ok", "fail", "note"]


@dataclass(frozen=True)
class Finding:
    check: str  # mx, spf, dmarc, dkim, ptr, outgoing
    status: Status
    detail: str  # what was found, in the DNS's own words where there are some
    code: str | None = None
    hint: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            "hint": self.hint,
        }


@dataclass
class Report:
    name: str
    domain: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.status != "fail" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "domain": self.domain,
            "ok": self.ok,
            "findings": [f.to_json() for f in self.findings],
        }


# --- known providers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    mx: tuple[str, ...]
    incoming: tuple[str, ...]
    smtp: tuple[str, ...]
    spf_include: str
    settings: dict[str, Any]  # what 'discover' suggests: incoming, outgoing, note


@cache
def providers() -> tuple[Provider, ...]:
    text = resources.files("channelsync").joinpath("data", "mail_providers.json").read_text()
    return tuple(
        Provider(
            p["id"],
            p["name"],
            tuple(p["mx"]),
            tuple(p["incoming"]),
            tuple(p["smtp"]),
            p["spf_include"],
            p["settings"],
        )
        for p in json.loads(text)["providers"]
    )


def _matches(host: str, names: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == n or (n.startswith(".") and host.endswith(n)) for n in names)


def provider_of(host: str, role: Literal["mx", "incoming", "smtp"]) -> Provider | None:
    return next((p for p in providers() if _matches(host, getattr(p, role))), None)


# --- lookups, each once per run -------------------------------------------------------------


class Lookups:
    """A resolver whose answers are shared by every check of the run (and every thread)."""

    def __init__(self, server: str | None = None, *, timeout: float = 5.0) -> None:
        import dns.exception
        import dns.resolver

        server = server or os.environ.get(DNS_SERVER_ENV) or None
        if server:
            host, port = parse_server(server)
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers, self.resolver.port = [host], port
        else:
            try:
                self.resolver = dns.resolver.Resolver()
            except dns.exception.DNSException as exc:  # no /etc/resolv.conf, for one
                raise LookupFailed(f"no system resolver ({exc}); pass --dns-server") from None
        self.resolver.lifetime = timeout
        self._answers: dict[tuple[str, str], Future[list[str]]] = {}
        self._lock = threading.Lock()
        self.queries = 0

    def get(self, name: str, rdtype: str) -> list[str]:
        """The records' text; [] when the name or the type does not exist."""
        key = (name.lower().rstrip("."), rdtype)
        with self._lock:
            future = self._answers.get(key)
            mine = future is None
            if future is None:
                future = self._answers[key] = Future()
        if mine:
            try:
                future.set_result(self._query(*key))
            except Exception as exc:
                future.set_exception(exc)
        return future.result()

    def _query(self, name: str, rdtype: str) -> list[str]:
        import dns.exception
        import dns.resolver

        self.queries += 1
        try:
            answer = self.resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"{rdtype} {name}: {exc}") from None
        if rdtype == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        return [r.to_text() for r in answer]

    def addresses(self, host: str) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            return self.get(host, "A") + self.get(host, "AAAA")


class LookupFailed(Exception):
    """The DNS server did not answer (timeout, SERVFAIL): a finding, not a crash."""


def parse_server(text: str) -> tuple[str, int]:
    """HOST[:PORT] or [IPv6]:PORT; a ValueError names what is wrong."""
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = _port(rest.removeprefix(":"), text)
    elif text.count(":") == 1:
        host, raw = text.split(":")
        port = _port(raw, text)
    ipaddress.ip_address(host)  # dnspython needs an address, not a name
    return host, port


def open_lookups(server: str | None) -> Lookups:
    """The run's Lookups; LookupFailed (one line, naming --dns-server or the variable it came
    from) when the resolver is not an address or there is no system resolver."""
    try:
        return Lookups(server)
    except ValueError as exc:
        where = "--dns-server" if server else DNS_SERVER_ENV
        raise LookupFailed(f"{where}: {exc}; give an IP address, e.g. 127.0.0.1:5353") from None


def _port(raw: str, text: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"'{text}' has no valid port")
    return int(raw)


# --- SPF (RFC 7208, without macros) ---------------------------------------------------------


class SpfError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def spf_record(lookups: Lookups, domain: str) -> str | None:
    records = [t for t in lookups.get(domain, "TXT") if t.lower().split(" ", 1)[0] == "v=spf1"]
    if len(records) > 1:
        raise SpfError("spf_fail", f"{domain} has {len(records)} SPF records (permerror)")
    return records[0] if records else None


@dataclass
class _Budget:
    """RFC 7208 4.6.4: at most 10 DNS-querying terms and 2 void lookups per evaluation, so that
    no record (however its includes fan out) costs more than a bounded number of queries."""

    lookups: int = 0
    voids: int = 0

    def spend(self, domain: str) -> None:
        self.lookups += 1
        if self.lookups > SPF_LOOKUP_LIMIT:
            raise SpfError(
                "spf_too_many_lookups",
                f"evaluating the SPF of {domain} needs more than {SPF_LOOKUP_LIMIT} DNS lookups "
                "(permerror: receivers treat it as no SPF)",
            )

    def answered(self, domain: str, records: Sequence[str]) -> Sequence[str]:
        if not records:
            self.voids += 1
            if self.voids > SPF_VOID_LIMIT:
                raise SpfError(
                    "spf_fail",
                    f"evaluating the SPF of {domain} meets more than {SPF_VOID_LIMIT} names "
                    "that do not exist (permerror: receivers treat it as no SPF)",
                )
        return records


def _terms(record: str) -> list[tuple[str, str, str]]:
    """(qualifier, mechanism or modifier name, value) per term; a modifier's name ends in '='."""
    terms = []
    for term in record.split()[1:]:
        qualifier = term[0] if term[0] in "+-~?" else "+"
        body = term.lstrip("+-~?")
        colon, equals = body.find(":"), body.find("=")
        if equals > 0 and (colon < 0 or equals < colon):
            terms.append(("", body[:equals].lower() + "=", body[equals + 1 :]))
        else:
            name, _, value = body.partition(":")
            if "/" in name:  # a/24, mx/24//64: a CIDR length on the own domain
                name, slash, lengths = name.partition("/")
                value = value + slash + lengths
            terms.append((qualifier, name.lower(), value))
    return terms


def _cidr(value: str, domain: str) -> tuple[str, int, int]:
    """An a/mx term's target and its IPv4 and IPv6 prefix lengths (RFC 7208 5.6)."""
    value, _, ip6 = value.partition("//")
    target, _, ip4 = value.partition("/")
    four, six = int(ip4) if ip4 else 32, int(ip6) if ip6 else 128
    if not (0 <= four <= 32 and 0 <= six <= 128):
        raise ValueError(value)
    return target or domain, four, six


def _within(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, ips: Sequence[str], four: int, six: int
) -> bool:
    length = four if address.version == 4 else six
    return any(
        ipaddress.ip_address(ip).version == address.version
        and address in ipaddress.ip_network(f"{ip}/{length}", strict=False)
        for ip in ips
    )


def spf_check(lookups: Lookups, domain: str, ip: str, budget: _Budget | None = None) -> str:
    """pass, fail, softfail, neutral or none for ``ip`` sending as ``domain``."""
    budget = budget or _Budget()
    record = spf_record(lookups, domain)
    if record is None:
        return "none"
    address = ipaddress.ip_address(ip)
    redirect = None
    for qualifier, name, value in _terms(record):
        if name.endswith("="):
            redirect = value if name == "redirect=" else redirect
            continue
        try:
            matched = _spf_matches(lookups, domain, name, value, address, budget)
        except ValueError:  # a malformed ip4:/ip6:/CIDR term matches nothing
            matched = False
        if matched:
            return {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}[qualifier]
    if redirect:
        budget.spend(domain)
        return spf_check(lookups, redirect, ip, budget)
    return "neutral"


def _spf_matches(
    lookups: Lookups,
    domain: str,
    name: str,
    value: str,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    budget: _Budget,
) -> bool:
    if name == "all":
        return True
    if name in ("ip4", "ip6"):
        return address in ipaddress.ip_network(value, strict=False)
    if name == "include":
        budget.spend(domain)
        if spf_record(lookups, value) is None:
            raise SpfError(
                "spf_fail",
                f"include:{value} in the SPF of {domain} has no SPF record "
                "(permerror: receivers treat it as no SPF)",
            )
        return spf_check(lookups, value, str(address), budget) == "pass"
    if name in ("a", "mx", "ptr", "exists"):
        budget.spend(domain)
    if name == "a":
        target, four, six = _cidr(value, domain)
        return _within(address, budget.answered(domain, lookups.addresses(target)), four, six)
    if name == "mx":
        target, four, six = _cidr(value, domain)
        hosts = [mx.split()[-1] for mx in budget.answered(domain, lookups.get(target, "MX"))]
        if len(hosts) > SPF_LOOKUP_LIMIT:
            raise SpfError(
                "spf_too_many_lookups",
                f"mx:{target} in the SPF of {domain} names "
                f"more than {SPF_LOOKUP_LIMIT} mail servers (permerror)",
            )
        return any(_within(address, lookups.addresses(h), four, six) for h in hosts)
    return False  # ptr (discouraged) and exists (macros) are not evaluated


def spf_includes(
    lookups: Lookups, domain: str, include: str, budget: _Budget | None = None
) -> bool:
    """Whether the SPF of ``domain`` includes ``include``, directly or through other includes,
    counting the lookups a receiver makes on the way (the limit is the receiver's)."""
    budget = budget or _Budget()
    record = spf_record(lookups, domain)
    if record is None:
        return False
    for _, name, value in _terms(record):
        if name in ("include", "redirect=", "a", "mx", "ptr", "exists"):
            budget.spend(domain)
        if name in ("include", "redirect="):
            if value.lower().rstrip(".") == include:
                return True
            if spf_includes(lookups, value, include, budget):
                return True
    return False


# --- the checks -----------------------------------------------------------------------------


def check_channels(
    channels: Sequence[Loaded],
    servers: Sequence[Loaded],
    lookups: Lookups,
    *,
    concurrency: int = PROBE_CONCURRENCY,
) -> list[Report]:
    known = {s.name: s.data for s in servers}
    default = tenant_default_server(known.values())
    if not channels:
        return []
    with ThreadPoolExecutor(max(1, min(concurrency, len(channels))), "dns") as pool:
        futures = [pool.submit(_channel, c.data, known, default, lookups) for c in channels]
        return [f.result() for f in futures]


def _channel(
    channel: dict[str, Any], servers: dict[str, dict[str, Any]], default: str, lookups: Lookups
) -> Report:
    domain = channel["email"].rsplit("@", 1)[-1].lower()
    report = Report(channel["name"], domain)
    out = channel.get("outgoing") or {}
    server = servers.get(out.get("server") or default)
    report.findings.extend(_answered(_mx, lookups, domain, channel["incoming"]["server"]))
    report.findings.extend(_outgoing(lookups, domain, server, out))
    report.findings.extend(_answered(_dmarc, lookups, domain))
    return report


def _answered(check: Callable[..., Finding | list[Finding]], *args: Any) -> list[Finding]:
    """One check's findings, or a dns_error finding when a lookup fails: one failing lookup
    never drops the findings of the others."""
    try:
        found = check(*args)
    except LookupFailed as exc:
        return [
            Finding(
                "dns",
                "fail",
                f"the DNS server did not answer: {exc}",
                "dns_error",
                "check --dns-server (or CHANNELSYNC_DNS_SERVER) and try again",
            )
        ]
    return found if isinstance(found, list) else [found]


def _mx(lookups: Lookups, domain: str, incoming: str) -> Finding:
    records = sorted(lookups.get(domain, "MX"), key=lambda r: int(r.split()[0]))
    if not records:
        return Finding(
            "mx",
            "fail",
            f"{domain} has no MX record",
            "mx_missing",
            f"mail to this channel's address cannot be delivered: publish an MX for {domain} "
            "pointing at the mail server the channel polls",
        )
    hosts = [r.split()[-1].rstrip(".") for r in records]
    if hosts == [""]:  # RFC 7505 null MX: '0 .'
        return Finding(
            "mx",
            "fail",
            f"{domain} has a null MX (0 .): it accepts no mail",
            "mx_missing",
            f"mail to this channel's address is refused: replace the null MX of {domain} with "
            "one pointing at the mail server the channel polls",
        )
    at = provider_of(hosts[0], "mx")
    polls = provider_of(incoming, "incoming")
    shown = ", ".join(hosts)
    polled = polls.name if polls else incoming
    if at is None and polls is not None:
        return Finding(
            "mx",
            "note",
            f"MX of {domain} points at {shown}, not at {polls.name}, which the channel polls "
            f"({incoming})",
            hint=f"fine when {shown} is a filtering gateway that relays to {polls.name}; "
            "otherwise mail to the address does not reach the mailbox the channel polls",
        )
    if at is not None and at != polls:
        return Finding(
            "mx",
            "fail",
            f"MX of {domain} points at {at.name} ({shown}), but the channel polls "
            f"{polled} ({incoming})",
            "mx_mismatch",
            "mail to the address lands where the MX points, not in the mailbox the channel "
            "polls: fix the MX, or poll the mailbox at the MX's provider",
        )
    return Finding("mx", "ok", f"MX {shown}")


def _outgoing(
    lookups: Lookups, domain: str, server: dict[str, Any] | None, out: dict[str, Any]
) -> list[Finding]:
    if server is None:
        return [
            Finding(
                "outgoing",
                "note",
                f"replies leave through '{BUILTIN_SMTP_SERVER}' from the tenant's default "
                "address, not from this channel's address (the vendor does not recommend it)",
                hint="give the channel a custom SmtpServer so that replies come from its address",
            ),
            *_answered(_spf_exists, lookups, domain),
        ]
    host = server["host"]
    findings = _answered(_spf, lookups, domain, host)
    selectors = out.get("dkim_selectors") or server.get("dkim_selectors") or []
    for selector in selectors:
        findings.extend(_answered(_dkim, lookups, domain, selector))
    if provider_of(host, "smtp") is None:
        findings.extend(_answered(_ptr, lookups, host))
    return findings


def _spf_exists(lookups: Lookups, domain: str) -> list[Finding]:
    try:
        record = spf_record(lookups, domain)
    except SpfError as exc:
        return [Finding("spf", "fail", str(exc), exc.code, _SPF_HINT)]
    if record is None:
        return [Finding("spf", "fail", f"{domain} has no SPF record", "spf_missing", _SPF_HINT)]
    return [Finding("spf", "ok", record)]


_SPF_HINT = (
    f"publish one TXT 'v=spf1 ...' that names the servers sending for the domain; {SENDER_RULES}"
)


def _spf(lookups: Lookups, domain: str, host: str) -> list[Finding]:
    found = _spf_exists(lookups, domain)
    if found[0].status != "ok":
        return found
    record = found[0].detail
    provider = provider_of(host, "smtp")
    try:
        if provider is not None:
            if spf_includes(lookups, domain, provider.spf_include):
                return [Finding("spf", "ok", f"{record} (includes {provider.spf_include})")]
            return [
                Finding(
                    "spf",
                    "fail",
                    f"the SPF of {domain} ({record}) does not include "
                    f"{provider.spf_include}, which {provider.name}'s {host} sends from",
                    "spf_fail",
                    f"add include:{provider.spf_include} to the SPF record; {SENDER_RULES}",
                )
            ]
        addresses = lookups.addresses(host)
        verdicts = {ip: spf_check(lookups, domain, ip) for ip in addresses}
    except SpfError as exc:
        return [
            Finding(
                "spf",
                "fail",
                str(exc),
                exc.code,
                "flatten the record: fewer include/a/mx terms (ip4/ip6 cost no lookup)"
                if exc.code == "spf_too_many_lookups"
                else f"fix the record so that every name it refers to exists; {SENDER_RULES}",
            )
        ]
    refused = {ip: v for ip, v in verdicts.items() if v != "pass"}
    if not addresses:
        return [Finding("spf", "fail", f"{host} has no address to evaluate", "spf_fail", _SPF_HINT)]
    if refused:
        listed = ", ".join(f"{ip} ({v})" for ip, v in refused.items())
        return [
            Finding(
                "spf",
                "fail",
                f"the SPF of {domain} ({record}) does not authorise {host}: {listed}",
                "spf_fail",
                f"add ip4:/ip6: or a: terms for {host}; {SENDER_RULES}",
            )
        ]
    return [Finding("spf", "ok", f"{record} (pass for {', '.join(addresses)})")]


DMARC_WALK_LIMIT = 8  # DMARCbis's DNS tree walk: at most 8 names


def _dmarc_record(lookups: Lookups, domain: str) -> tuple[str, list[str]]:
    """The DMARC records that apply to ``domain``: its own, else the nearest parent's (the
    DMARCbis tree walk, which stands in for the organisational domain without a suffix list)."""
    labels = domain.split(".")
    parents = [".".join(labels[i:]) for i in range(len(labels) - 1)][:DMARC_WALK_LIMIT]
    for name in parents or [domain]:
        records = [t for t in lookups.get(f"_dmarc.{name}", "TXT") if t.startswith("v=DMARC1")]
        if records:
            return name, records
    return domain, []


def _dmarc(lookups: Lookups, domain: str) -> Finding:
    found_at, records = _dmarc_record(lookups, domain)
    hint = f"publish TXT _dmarc.{domain} 'v=DMARC1; p=none; rua=mailto:...'; {SENDER_RULES}"
    if not records:
        return Finding(
            "dmarc", "fail", f"_dmarc.{domain} has no DMARC record", "dmarc_missing", hint
        )
    tags = dict(
        (k.strip().lower(), v.strip())
        for k, _, v in (t.partition("=") for t in records[0].split(";"))
        if k.strip()
    )
    policy = tags.get("p", "").lower()
    if len(records) > 1 or policy not in ("none", "quarantine", "reject"):
        why = "more than one record" if len(records) > 1 else f"p={tags.get('p', '(missing)')}"
        return Finding(
            "dmarc",
            "fail",
            f"_dmarc.{found_at} does not parse ({why}): {records[0]}",
            "dmarc_invalid",
            f"p must be none, quarantine or reject; {SENDER_RULES}",
        )
    inherited = f" (from _dmarc.{found_at})" if found_at != domain else ""
    return Finding("dmarc", "ok", f"policy p={policy}{inherited}: {records[0]}")


def _dkim(lookups: Lookups, domain: str, selector: str) -> Finding:
    name = f"{selector}._domainkey.{domain}"
    keys = [t for t in lookups.get(name, "TXT") if "p=" in t]
    if not keys:
        return Finding(
            "dkim",
            "fail",
            f"{name} has no DKIM key",
            "dkim_missing",
            f"publish the sending service's DKIM key for selector '{selector}'; {SENDER_RULES}",
        )
    return Finding("dkim", "ok", f"{name} has a key")


def _ptr(lookups: Lookups, host: str) -> list[Finding]:
    import dns.reversename

    findings = []
    for ip in lookups.addresses(host):
        names = [
            n.rstrip(".") for n in lookups.get(dns.reversename.from_address(ip).to_text(), "PTR")
        ]
        confirmed = [n for n in names if ip in lookups.addresses(n)]
        if not confirmed:
            shown = ", ".join(names) or "no PTR record"
            findings.append(
                Finding(
                    "ptr",
                    "fail",
                    f"{ip} ({host}) reverses to {shown}, which does not resolve back to {ip}",
                    "ptr_mismatch",
                    "receivers distrust senders without forward-confirmed reverse DNS: ask whoever "
                    f"runs {ip} for a PTR record naming {host}",
                )
            )
        else:
            findings.append(Finding("ptr", "ok", f"{ip} <-> {confirmed[0]}"))
    return findings
