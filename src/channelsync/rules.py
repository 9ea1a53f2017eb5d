"""Rules that relate fields and resources to each other (the vendor's rules and our advice).

Structural checks (types, enums, ranges, required fields) are the model's; everything here
needs more than one field or more than one resource to decide.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from channelsync import kinds
from channelsync.defaults import (
    BUILTIN_SMTP_SERVER,
    INCOMING_DEFAULT_PORTS,
    PLAIN_PROTOCOLS,
    SMTP_DEFAULT_PORTS,
    SMTP_PORT_SECURITY,
)
from channelsync.errors import Diagnostic, did_you_mean
from channelsync.inputfile import regular_problem

if TYPE_CHECKING:
    from channelsync.desired import Config, Loaded
    from channelsync.secrets import SourceContext

GMAIL_APP_PASSWORD_URL = "https://support.google.com/accounts/answer/185833"
GMAIL_DOMAINS = ("gmail.com", "googlemail.com", "google.com")
# Entra ID: a client id is a GUID; a tenant is its GUID or one of its verified domains (the
# token endpoint takes either). The multi-tenant aliases do not work for client credentials.
GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
DOMAIN = re.compile(
    r"^(?=.{4,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
MULTI_TENANT_ALIASES = ("common", "organizations", "consumers")
EXAMPLE_TENANT_DOMAIN = "contoso.onmicrosoft.com"
INCOMING_BY_PORT = {port: protocol for protocol, port in INCOMING_DEFAULT_PORTS.items()}
# What the first label of a mail host name usually says it serves (smtp.gmail.com, imap.x.com).
HOST_LABELS = {"smtp": "SMTP", "smtps": "SMTP", "imap": "IMAP", "imaps": "IMAP", "pop": "POP3"}
HOST_LABELS |= {"pop3": "POP3", "pop3s": "POP3", "pops": "POP3"}
INSECURE_SMTP = "the password would be sent without TLS"


Groups = dict[str, list["Loaded"]]


def check(config: Config) -> list[Diagnostic]:
    groups = config.by_kind()
    out: list[Diagnostic] = []
    out.extend(_unique_names(groups))
    out.extend(_unique_emails(groups))
    out.extend(_references(groups))
    out.extend(_single_default(groups))
    out.extend(_insecure_outgoing(groups))
    for item in groups["EmailChannel"]:
        out.extend(_channel(item, item.data))
    for item in groups["SmtpServer"]:
        out.extend(_smtp_server(item, item.data))
    for item in groups["EmailScript"]:
        out.extend(_script(item, item.data))
    for item in groups["Agent"]:
        out.extend(_agent(item, item.data))
    out.extend(_secret_refs(config.resources))
    return out


def reference_problems(config: Config) -> list[Diagnostic]:
    """The errors about names that no resource defines (a subset of ``check``)."""
    return list(_references(config.by_kind()))


def _where(item: Loaded, path: tuple[str | int, ...]) -> str:
    """``file:line:col`` of ``path`` in ``item``, for messages that point at a second place."""
    at = item.diagnostic(path, "error", "")
    return f"{at.file}:{at.line}:{at.column}"


def _secret_refs(resources: list[Loaded]) -> Iterator[Diagnostic]:
    """References a channel may never use: sources not installed, CI and channelsync
    variables, system files (each source's own rule)."""
    from channelsync.document import secret_paths
    from channelsync.secrets import usage_problem

    paths = {kind: secret_paths(kind) for kind in kinds.names()}
    for item in resources:
        for path in paths[item.kind]:
            text: Any = item.data
            for key in path:
                text = text.get(key) if isinstance(text, dict) else None
            if not isinstance(text, str):
                continue
            problem = usage_problem(text, functools.partial(_source_context, item))
            if problem is not None:
                yield item.diagnostic(path, "error", f"{'.'.join(path)}: {problem}")


def _source_context(item: Loaded) -> SourceContext:
    from channelsync.secrets import SourceContext

    return SourceContext(item.base_dir)


def _unique_names(groups: Groups) -> Iterator[Diagnostic]:
    for kind in kinds.names():
        seen: dict[str, Loaded] = {}
        claimed: dict[str, Loaded] = {}
        for item in groups[kind]:
            if item.name == kinds.get(kind).builtin:
                yield item.diagnostic(
                    ("name",),
                    "error",
                    f"'{item.name}' is built in and cannot be defined; choose another name",
                )
            first = seen.get(item.name)
            if first is not None:
                yield item.diagnostic(
                    ("name",),
                    "error",
                    f"duplicate {kind} name '{item.name}' (first defined at "
                    f"{_where(first, ('name',))})",
                )
            seen.setdefault(item.name, item)
            old = item.data.get("renamed_from")
            if old is None:
                continue
            if old == item.name:
                yield item.diagnostic(
                    ("renamed_from",), "error", "renamed_from repeats the name; remove it"
                )
            elif old in claimed:
                yield item.diagnostic(
                    ("renamed_from",),
                    "error",
                    f"'{old}' is already renamed to '{claimed[old].name}'",
                )
            claimed.setdefault(old, item)
        for old, item in claimed.items():
            if old in seen:
                yield item.diagnostic(
                    ("renamed_from",),
                    "error",
                    f"renamed_from '{old}', but a {kind} named '{old}' is still defined; "
                    "remove one of them",
                )


def _unique_emails(groups: Groups) -> Iterator[Diagnostic]:
    """The registry's unique fields (a channel's or an agent's address), kind by kind."""
    for kind in kinds.all_kinds():
        for field in kind.unique:
            seen: dict[str, Loaded] = {}
            for item in groups[kind.name]:
                value = item.data[field]
                first = seen.setdefault(str(value).lower(), item)
                if first is not item:
                    yield item.diagnostic(
                        (field,),
                        "error",
                        f"{field} {value} is already used by {kind.called} '{first.name}' "
                        f"(at {_where(first, (field,))}); each {kind.called} needs its own "
                        "address",
                    )


def _references(groups: Groups) -> Iterator[Diagnostic]:
    """Every reference (the registry's path -> kind) names a defined or built-in resource."""
    from channelsync.document import field_default

    defined: dict[str, set[str]] = {}
    for kind in kinds.all_kinds():
        defined[kind.name] = {i.name for i in groups[kind.name]}
        if kind.builtin is not None:
            defined[kind.name] |= {kind.builtin}
    for kind in kinds.all_kinds():
        for item in groups[kind.name]:
            for path, target, value in kinds.references_of(kind.name, item.data):
                names = defined[target]
                if value in names:
                    continue
                referred = kinds.get(target)
                acronym = referred.called.split()[0].isupper()  # "an SMTP server"
                article = "an" if target[0] in "AEIOU" or acronym else "a"
                if referred.builtin is None:
                    instead = ""
                elif field_default(kind.name, path) == referred.builtin:
                    instead = f", or omit '{'.'.join(path)}' for the '{referred.builtin}'"
                else:
                    instead = f", or use '{referred.builtin}'"
                yield item.diagnostic(
                    path,
                    "error",
                    f"{referred.called} '{value}' is not defined{did_you_mean(value, names)}:"
                    f" add {article} {target} with that name{instead}",
                )


def _insecure_outgoing(groups: Groups) -> Iterator[Diagnostic]:
    """A channel's own SMTP password goes to a security: none server only by consent; an
    agent's (which channelsync never holds) is a warning."""
    servers = {i.name: i.data for i in groups["SmtpServer"]}
    for item in groups["EmailChannel"]:
        out = item.data.get("outgoing")
        server = servers.get(out["server"]) if out and out["override"] else None
        if out is None or server is None or server["security"] != "none":
            continue
        if out.get("password") is not None and not (_insecure_ok(out) or _insecure_ok(server)):
            yield item.diagnostic(
                ("outgoing", "password"),
                "error",
                f"SmtpServer '{out['server']}' has security: none: {INSECURE_SMTP}; use a "
                "server with starttls or ssl, or set outgoing.allow_insecure_auth: true to "
                "accept the risk",
            )
    for item in groups["Agent"]:
        out = item.data.get("outgoing")
        server = servers.get(out["server"]) if out and out["override"] else None
        if out is None or server is None or server["security"] != "none":
            continue
        yield item.diagnostic(
            ("outgoing", "override"),
            "warning",
            f"SmtpServer '{out['server']}' has security: none: the agent's own password (entered "
            "in Agent Console > Profile) would be sent without TLS; use a server with starttls "
            "or ssl",
        )


def _insecure_ok(section: dict[str, Any]) -> bool:
    return bool(section.get("allow_insecure_auth"))


def _single_default(groups: Groups) -> Iterator[Diagnostic]:
    defaults = [i for i in groups["SmtpServer"] if i.data["default"]]
    for extra in defaults[1:]:
        yield extra.diagnostic(
            ("default",),
            "error",
            f"more than one default SmtpServer ('{defaults[0].name}' is the default already); "
            "keep default: true on one server",
        )


def _channel(item: Loaded, channel: dict[str, Any]) -> Iterator[Diagnostic]:
    incoming = channel["incoming"]
    yield from _incoming(item, incoming)
    yield from _incoming_port(item, incoming)
    if incoming.get("tls"):
        yield from _ca_file(item, ("incoming", "tls", "ca_file"), incoming["tls"])
    out = channel.get("outgoing")
    if out is not None:
        yield from _outgoing(item, out)
        if out["override"] and out["server"] != BUILTIN_SMTP_SERVER and out.get("password") is None:
            yield item.diagnostic(
                ("outgoing",),
                "error",
                "override: true needs the channel's password: add outgoing.password "
                "(e.g. ${env:NAME})",
                key=True,
            )
    protocol = incoming["protocol"]
    if channel["enabled"] and protocol in PLAIN_PROTOCOLS:
        yield item.diagnostic(
            ("incoming", "protocol"),
            "warning",
            f"protocol {protocol} sends the password without TLS unless the "
            f"server offers STARTTLS; prefer {protocol}-ssl",
        )


def _outgoing(item: Loaded, out: dict[str, Any]) -> Iterator[Diagnostic]:
    """The rules of an Outgoing Mail Server section, a channel's or an agent's."""
    if out["override"] and out["server"] == BUILTIN_SMTP_SERVER:
        yield item.diagnostic(
            ("outgoing", "override"),
            "error",
            f"'{BUILTIN_SMTP_SERVER}' cannot be overridden; choose a custom SmtpServer "
            "or set override: false",
        )
    unused = [f for f in ("password", "user") if out.get(f) is not None]
    if not out["override"] and unused:
        field = unused[0]
        yield item.diagnostic(
            ("outgoing", field),
            "error",
            f"outgoing.{field} is only used with override: true; add it or remove the {field}",
            key=True,
        )


def _agent(item: Loaded, agent: dict[str, Any]) -> Iterator[Diagnostic]:
    out = agent.get("outgoing")
    if out is None:
        return
    yield from _outgoing(item, out)
    if out["server"] == BUILTIN_SMTP_SERVER and not out["override"]:
        yield item.diagnostic(
            ("outgoing", "server"),
            "warning",
            f"with '{BUILTIN_SMTP_SERVER}' this agent's mail leaves from the tenant's default "
            "address, which is not recommended; use a custom SmtpServer with override: true",
        )


def _incoming(item: Loaded, incoming: dict[str, Any]) -> Iterator[Diagnostic]:
    if incoming["auth"] == "normal":
        if incoming.get("oauth") is not None:
            yield item.diagnostic(
                ("incoming", "oauth"),
                "error",
                "oauth is only used with auth: microsoft-exchange; remove it or change auth",
                key=True,
            )
        if incoming.get("password") is None:
            yield item.diagnostic(
                ("incoming",),
                "error",
                "auth: normal needs incoming.password (e.g. ${env:NAME})",
                key=True,
            )
    else:
        if _is_gmail(incoming["server"]):
            yield item.diagnostic(
                ("incoming", "auth"),
                "warning",
                "Gmail does not accept Microsoft (Entra ID) sign-in; use auth: normal with an "
                f"App password: {GMAIL_APP_PASSWORD_URL}",
            )
        oauth = incoming.get("oauth")
        if oauth is not None:
            yield from _oauth_ids(item, oauth)
        from channelsync.targets import has_credentials

        if oauth is not None and has_credentials(oauth["authority"]):
            yield item.diagnostic(
                ("incoming", "oauth", "authority"),
                "error",
                "the authority URL carries credentials (USER[:PASSWORD]@HOST), which every plan "
                "and connection test would show; remove them (the app signs in with "
                "client_secret)",
            )
        if incoming.get("password") is not None:
            yield item.diagnostic(
                ("incoming", "password"),
                "error",
                "password is not used with auth: microsoft-exchange (it signs in with oauth); "
                "remove it",
                key=True,
            )
        if incoming.get("oauth") is None:
            yield item.diagnostic(
                ("incoming",),
                "error",
                "auth: microsoft-exchange needs incoming.oauth "
                "(tenant_id, client_id, client_secret)",
                key=True,
            )


def _oauth_ids(item: Loaded, oauth: dict[str, Any]) -> Iterator[Diagnostic]:
    tenant, client = oauth["tenant_id"], oauth["client_id"]
    if tenant.lower() in MULTI_TENANT_ALIASES:
        yield item.diagnostic(
            ("incoming", "oauth", "tenant_id"),
            "warning",
            f"tenant_id '{tenant}' names no single tenant, and app-only sign-in needs one: use "
            f"the Directory (tenant) ID (a GUID) or a verified domain ({EXAMPLE_TENANT_DOMAIN})",
        )
    elif not (GUID.match(tenant) or DOMAIN.match(tenant)):
        yield item.diagnostic(
            ("incoming", "oauth", "tenant_id"),
            "warning",
            f"tenant_id '{tenant}' is neither a Directory (tenant) ID (a GUID) nor a verified "
            f"domain ({EXAMPLE_TENANT_DOMAIN}); copy it from Entra ID > Overview",
        )
    if not GUID.match(client):
        yield item.diagnostic(
            ("incoming", "oauth", "client_id"),
            "warning",
            f"client_id '{client}' is not a GUID; use the Application (client) ID from "
            "Entra ID > App registrations > your app > Overview",
        )


def _incoming_port(item: Loaded, incoming: dict[str, Any]) -> Iterator[Diagnostic]:
    """A port that belongs to another mail protocol: the usual copy-paste mistake."""
    protocol, port = incoming["protocol"], incoming["port"]
    wanted = "IMAP" if protocol.startswith("imap") else "POP3"
    named = _host_label(incoming["server"])
    if named is not None and named != wanted:
        yield item.diagnostic(
            ("incoming", "server"),
            "warning",
            f"{incoming['server']} is named for {named}, but protocol {protocol} reads mail "
            f"over {wanted}; check the server and the protocol",
        )
    usual = INCOMING_DEFAULT_PORTS[protocol]
    if port == usual:
        return
    other = INCOMING_BY_PORT.get(port)
    if other is not None:
        message = (
            f"port {port} is the {other} port; {protocol} uses {usual}: "
            f"set protocol: {other}, or port: {usual}"
        )
    elif port in SMTP_PORT_SECURITY:
        message = f"port {port} is an SMTP (outgoing mail) port; {protocol} uses {usual}"
    else:
        return
    yield item.diagnostic(("incoming", "port"), "warning", message)


def _host_label(host: str) -> str | None:
    """The protocol a host's first label names, if any (never for an IP address)."""
    label, dot, _ = host.lower().partition(".")
    return HOST_LABELS.get(label) if dot else None


def _smtp_host(item: Loaded, server: dict[str, Any]) -> Iterator[Diagnostic]:
    named = _host_label(server["host"])
    if named is not None and named != "SMTP":
        yield item.diagnostic(
            ("host",),
            "warning",
            f"{server['host']} is named for {named} (incoming mail); an SmtpServer needs the "
            "SMTP host, e.g. smtp.example.com",
        )


def _smtp_port(item: Loaded, server: dict[str, Any]) -> Iterator[Diagnostic]:
    security, port = server["security"], server["port"]
    usual = SMTP_DEFAULT_PORTS[security]
    modes = SMTP_PORT_SECURITY.get(port)
    other = INCOMING_BY_PORT.get(port)
    if modes is not None and security not in modes:
        message = (
            f"port {port} is for security: {' or '.join(modes)}; {security} uses {usual}: "
            f"set security: {modes[0]}, or port: {usual}"
        )
    elif other is not None:
        message = (
            f"port {port} is the {other} port (incoming mail); SMTP with {security} uses {usual}"
        )
    else:
        return
    yield item.diagnostic(("port",), "warning", message)


def _script(item: Loaded, script: dict[str, Any]) -> Iterator[Diagnostic]:
    queues: list[str] = script["queues"]
    if not queues:
        yield item.diagnostic(
            ("queues",),
            "warning",
            "EmailScript routes to no queue: mail of the channels that use it reaches no agent; "
            "add queues: [NAME, ...]",
            key=True,
        )
    first_at: dict[str, int] = {}
    for index, queue in enumerate(queues):
        first = first_at.setdefault(queue.casefold(), index)
        if first != index:
            as_ = f" as '{queues[first]}'" if queues[first] != queue else ""
            yield item.diagnostic(
                ("queues", index),
                "warning",
                f"queue '{queue}' is listed twice (first{as_} at "
                f"{_where(item, ('queues', first))}); remove one",
            )


def _smtp_server(item: Loaded, server: dict[str, Any]) -> Iterator[Diagnostic]:
    yield from _smtp_host(item, server)
    yield from _smtp_port(item, server)
    if server.get("tls"):
        yield from _ca_file(item, ("tls", "ca_file"), server["tls"])
    user, password = server.get("user"), server.get("password")
    if (user is None) != (password is None):
        missing = "password" if password is None else "user"
        yield item.diagnostic(
            (), "error", f"SmtpServer needs both user and password, or neither; add {missing}"
        )
    if server["security"] == "none" and password is not None and not _insecure_ok(server):
        yield item.diagnostic(
            ("security",),
            "error",
            f"{INSECURE_SMTP}; use security: starttls or ssl, or set allow_insecure_auth: true "
            "on this SmtpServer to accept the risk",
        )


def _ca_file(
    item: Loaded, path: tuple[str, ...], tls: dict[str, Any] | None
) -> Iterator[Diagnostic]:
    ca_file = tls["ca_file"] if tls else None
    problem = regular_problem(item.base_dir / ca_file) if ca_file is not None else None
    if problem == "does not exist":
        yield item.diagnostic(
            path,
            "error",
            f"ca_file '{ca_file}' does not exist (paths are relative to this file's directory)",
        )
    elif problem is not None:
        yield item.diagnostic(path, "error", f"ca_file '{ca_file}' {problem}")


_GMAIL_SUFFIXES = tuple("." + d for d in GMAIL_DOMAINS)


def _is_gmail(host: str) -> bool:
    host = host.lower()
    if not host.endswith(GMAIL_DOMAINS):  # the common answer, in one call
        return False
    return host in GMAIL_DOMAINS or host.endswith(_GMAIL_SUFFIXES)
