"""From an address to a channel: ``channelsync discover ADDRESS [--write FILE]``.

The sources mail clients use, in their order: the domain's autoconfig file (https only: it is
trusted with the address), RFC 6186/8314 SRV records, then the MX mapped to a known provider.
Every source's answer is reported; the first that names an incoming server wins.
"""

from __future__ import annotations

import ipaddress
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from channelsync.defaults import DNS_LABEL
from channelsync.errors import DiscoverError as DiscoverError
from channelsync.errors import visible

if TYPE_CHECKING:
    from channelsync.probe.dnscheck import Lookups

MAX_AUTOCONFIG_BYTES = 1_000_000
_HOST_NAME = re.compile(rf"^{DNS_LABEL}(\.{DNS_LABEL})*\.?$")
SRV_INCOMING = (
    ("_imaps._tcp", "imap-ssl"),
    ("_imap._tcp", "imap"),
    ("_pop3s._tcp", "pop3-ssl"),
    ("_pop3._tcp", "pop3"),
)
SRV_OUTGOING = (("_submissions._tcp", "ssl"), ("_submission._tcp", "starttls"))


@dataclass
class Settings:
    source: str  # "autoconfig", "srv" or "mx"
    incoming: dict[str, Any] | None = None  # server, protocol, port, auth, user
    outgoing: dict[str, Any] | None = None  # host, security, port, user
    note: str = ""


@dataclass
class Discovery:
    address: str
    said: list[str] = field(default_factory=list)  # what each source said, in order
    chosen: Settings | None = None
    why: str = ""


class Unusable(Exception):
    """A source's answer that cannot be used (a host that is not a host name, a bad port)."""


def host_name(text: str) -> str:
    """``text`` when it is a host name or an IP address; remote text is never trusted to be."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if len(text) > 253 or not _HOST_NAME.match(text):
        raise Unusable(f"'{visible(text)}' is not a host name")
    return text.rstrip(".")


def port_number(text: str) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
        raise Unusable(f"port '{visible(text)}' is not a port number (1-65535)")
    return int(text)


def autoconfig_urls(address: str) -> list[str]:
    domain = address.rsplit("@", 1)[-1]
    return [
        f"https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={address}",
        f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
    ]


def discover(
    address: str, lookups: Lookups, *, autoconfig_url: str | None = None, timeout: float = 10.0
) -> Discovery:
    if address.count("@") != 1 or not all(address.split("@")):
        raise DiscoverError(f"'{address}' is not an email address (name@domain)")
    found = Discovery(address)
    candidates: list[Settings] = []
    for url in [autoconfig_url] if autoconfig_url else autoconfig_urls(address):
        from channelsync.targets import has_credentials

        if has_credentials(url):
            raise DiscoverError(
                "the autoconfig URL carries credentials (USER[:PASSWORD]@HOST); remove them"
            )
        if not url.startswith("https://"):
            raise DiscoverError(f"{url}: only https autoconfig is trusted with the address")
        settings, said = _autoconfig(url, address, timeout)
        found.said.append(visible(f"autoconfig {url}: {said}"))
        if settings is not None:
            candidates.append(settings)
            break
    from channelsync.probe.dnscheck import LookupFailed

    try:
        srv, srv_said = _srv(address, lookups)
    except LookupFailed as exc:  # a good autoconfig answer still counts
        srv, srv_said = None, [visible(f"SRV: the DNS server did not answer ({exc})")]
    found.said.extend(srv_said)
    if srv is not None:
        candidates.append(srv)
    try:
        mx, said = _mx(address, lookups)
    except LookupFailed as exc:
        mx, said = None, visible(f"MX: the DNS server did not answer ({exc})")
    found.said.append(said)
    if mx is not None:
        candidates.append(mx)
    found.chosen = next((c for c in candidates if c.incoming), None)
    if found.chosen is not None:
        found.why = {
            "autoconfig": "the domain publishes its own settings (autoconfig), which come first",
            "srv": "no autoconfig; the domain's SRV records name its servers (RFC 6186/8314)",
            "mx": "no autoconfig or SRV records; the MX belongs to a known provider",
        }[found.chosen.source]
    return found


def _autoconfig(url: str, address: str, timeout: float) -> tuple[Settings | None, str]:
    import ssl

    import httpx

    deadline = time.monotonic() + timeout  # for the whole download, however slowly it drips
    try:
        with (
            httpx.Client(verify=ssl.create_default_context(), timeout=timeout) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                return None, f"HTTP {response.status_code}"
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_AUTOCONFIG_BYTES:
                    return None, f"more than {MAX_AUTOCONFIG_BYTES:,} bytes; ignored"
                if time.monotonic() > deadline:
                    return None, f"not complete after {timeout:g} s; ignored"
    except httpx.HTTPError as exc:
        return None, f"not reachable ({exc})"
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        return None, f"not valid XML ({exc})"
    settings = Settings("autoconfig")
    try:
        for server in root.iter("incomingServer"):
            kind = server.get("type")
            if kind in ("imap", "pop3"):
                settings.incoming = _incoming(server, kind, address)
                break
        for server in root.iter("outgoingServer"):
            if server.get("type") == "smtp":
                settings.outgoing = _outgoing(server, address)
                break
    except Unusable as exc:
        return None, f"{exc}; ignored"
    if settings.incoming is None:
        return None, "no IMAP or POP3 server in the file"
    return settings, _summary(settings)


def _text(server: ET.Element, tag: str) -> str:
    return (server.findtext(tag) or "").strip()


def _user(server: ET.Element, address: str) -> str:
    user = _text(server, "username") or "%EMAILADDRESS%"
    if visible(user) != user or len(user) > 200:
        raise Unusable(f"user name '{visible(user[:200])}' is not usable")
    return user.replace("%EMAILADDRESS%", address).replace(
        "%EMAILLOCALPART%", address.split("@")[0]
    )


def _incoming(server: ET.Element, kind: str, address: str) -> dict[str, Any]:
    tls = _text(server, "socketType").upper() == "SSL"
    oauth = _text(server, "authentication").upper() == "OAUTH2"
    return {
        "server": host_name(_text(server, "hostname")),
        "protocol": kind + ("-ssl" if tls else ""),
        "port": port_number(_text(server, "port")),
        "auth": "microsoft-exchange" if oauth else "normal",
        "user": _user(server, address),
    }


def _outgoing(server: ET.Element, address: str) -> dict[str, Any]:
    socket_type = _text(server, "socketType").upper()
    security = {"SSL": "ssl", "STARTTLS": "starttls"}.get(socket_type, "none")
    return {
        "host": host_name(_text(server, "hostname")),
        "security": security,
        "port": port_number(_text(server, "port")),
        "user": _user(server, address),
    }


def _srv(address: str, lookups: Lookups) -> tuple[Settings | None, list[str]]:
    domain = address.rsplit("@", 1)[-1]
    settings = Settings("srv")
    said = []
    for records, role in ((SRV_INCOMING, "incoming"), (SRV_OUTGOING, "outgoing")):
        for prefix, protocol in records:
            name = f"{prefix}.{domain}"
            answers = sorted(
                (a.split() for a in lookups.get(name, "SRV")), key=lambda a: (int(a[0]), -int(a[1]))
            )
            offered = [a for a in answers if a[3] != "."]  # "." = service not offered
            if not offered:
                said.append(f"SRV {name}: none")
                continue
            try:
                host, port = host_name(offered[0][3]), port_number(offered[0][2])
            except Unusable as exc:
                said.append(f"SRV {name}: {exc}; ignored")
                continue
            said.append(f"SRV {name}: {host}:{port}")
            if role == "incoming" and settings.incoming is None:
                settings.incoming = {
                    "server": host, "protocol": protocol, "port": port, "auth": "normal",
                    "user": address,
                }  # fmt: skip
            elif role == "outgoing" and settings.outgoing is None:
                settings.outgoing = {"host": host, "security": protocol, "port": port,
                                     "user": address}  # fmt: skip
            break
    found = settings if settings.incoming or settings.outgoing else None
    return found, said


def _mx(address: str, lookups: Lookups) -> tuple[Settings | None, str]:
    from channelsync.probe.dnscheck import provider_of

    domain = address.rsplit("@", 1)[-1]
    records = sorted(lookups.get(domain, "MX"), key=lambda r: int(r.split()[0]))
    if not records:
        return None, f"MX {domain}: none"
    host = records[0].split()[-1].rstrip(".")
    provider = provider_of(host, "mx")
    host = visible(host)
    if provider is None:
        return None, f"MX {domain}: {host} (not a known provider)"
    settings = Settings(
        "mx",
        incoming={**provider.settings["incoming"], "user": address},
        outgoing={**provider.settings["outgoing"], "user": address},
        note=provider.settings["note"],
    )
    return settings, f"MX {domain}: {host} ({provider.name})"


def _summary(settings: Settings) -> str:
    parts = []
    if settings.incoming:
        i = settings.incoming
        parts.append(f"{i['protocol']} {i['server']}:{i['port']}")
    if settings.outgoing:
        o = settings.outgoing
        parts.append(f"smtp {o['security']} {o['host']}:{o['port']}")
    return ", ".join(parts)


def report(found: Discovery) -> str:
    lines = [f"discover {found.address}:", *(f"  {line}" for line in found.said)]
    if found.chosen is None:
        lines.append("no settings found: ask the mail provider for the IMAP/POP3 and SMTP servers")
    else:
        lines.append(f"chosen: {found.chosen.source}: {_summary(found.chosen)} ({found.why})")
        if found.chosen.note:
            lines.append(f"note: {found.chosen.note}")
    return "\n".join(lines) + "\n"


def channel_yaml(found: Discovery) -> str:
    """A commented channel (and SmtpServer) with ${env:...} placeholders for the secrets."""
    import json

    chosen = found.chosen
    assert chosen is not None and chosen.incoming is not None
    address = found.address
    local, domain = address.split("@")
    env = "".join(c if c.isalnum() else "_" for c in f"{local}_{domain}").upper()
    incoming = dict(chosen.incoming)
    if incoming.get("port") is None:
        incoming.pop("port", None)
    lines = [
        _comment(f"Found by 'channelsync discover {address}' from {chosen.source}: {found.why}."),
        *(_comment(line) for line in found.said),
        *([_comment(f"note: {chosen.note}")] if chosen.note else []),
        "kind: EmailChannel",
        f"name: {json.dumps(address)}",
        f"email: {json.dumps(address)}",
        "enabled: false                # enable once 'channelsync test' passes",
        "incoming:",
    ]
    for key in ("auth", "server", "protocol", "port", "user"):
        if incoming.get(key) is not None:
            lines.append(f"  {key}: {json.dumps(incoming[key])}")
    if incoming.get("auth") == "microsoft-exchange":
        lines += [
            "  oauth:",
            "    tenant_id: TENANT-ID      # Directory (tenant) ID of the app registration",
            "    client_id: CLIENT-ID      # Application (client) ID",
            f"    client_secret: ${{env:{env}_CLIENT_SECRET}}",
        ]
    else:
        lines.append(f"  password: ${{env:{env}_PASSWORD}}")
    out = chosen.outgoing
    if out:
        server = f"{out['host']} ({address})"
        lines += [
            "outgoing:",
            f"  server: {json.dumps(server)}",
            "  override: true              # send with this mailbox's own account",
            *([f"  user: {json.dumps(out['user'])}"] if out.get("user") else []),
            f"  password: ${{env:{env}_SMTP_PASSWORD}}",
            "---",
            "kind: SmtpServer",
            f"name: {json.dumps(server)}",
            f"host: {json.dumps(out['host'])}",
            f"security: {out['security']}",
        ]
        if out.get("port"):
            lines.append(f"port: {out['port']}")
    return "\n".join(lines) + "\n"


def secret_bindings(text: str) -> dict[str, list[str]]:
    """The endpoints each secret placeholder of ``channel_yaml``'s text is sent to, as
    ``export --secret-bindings`` binds them (``bindings.endpoints_of``)."""
    from ruamel.yaml import YAML

    from channelsync.bindings import endpoints_of

    docs = [d for d in YAML(typ="safe").load_all(text) if isinstance(d, dict)]
    servers = {d["name"]: d for d in docs if d.get("kind") == "SmtpServer"}
    wanted: dict[str, list[str]] = {}
    for doc in docs:
        if doc.get("kind") != "EmailChannel":
            continue
        incoming, outgoing = doc["incoming"], doc.get("outgoing") or {}
        places: list[tuple[tuple[str, ...], Any]] = [
            (("incoming", "password"), incoming.get("password")),
            (
                ("incoming", "oauth", "client_secret"),
                (incoming.get("oauth") or {}).get("client_secret"),
            ),
            (("outgoing", "password"), outgoing.get("password")),
        ]
        for path, ref in places:
            if isinstance(ref, str):
                wanted[ref] = endpoints_of("EmailChannel", doc, path, servers)
    return wanted


def _comment(line: str) -> str:
    """A YAML comment line of remote text: no line break or control character survives."""
    return "# " + visible(line)


def write_new(path: Path, text: str) -> None:
    """Write ``text`` to a file that must not exist yet, atomically (``fsio``)."""
    from channelsync.fsio import write_atomic

    try:
        write_atomic(path, text, exclusive=True)
    except FileExistsError:
        raise DiscoverError(
            f"{path} exists; choose a new file (discover never overwrites)"
        ) from None
