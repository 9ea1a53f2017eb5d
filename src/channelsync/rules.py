"""Rules that relate fields and resources to each other (the vendor's rules and our advice).

Structural checks (types, enums, ranges, required fields) are the model's; everything here
needs more than one field or more than one resource to decide.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from channelsync.defaults import (
    BUILTIN_NAMES,
    BUILTIN_SMTP_SERVER,
    DEFAULT_EMAIL_SCRIPT,
    KIND_NAMES,
    PLAIN_PROTOCOLS,
)
from channelsync.errors import Diagnostic

if TYPE_CHECKING:
    from channelsync.loader import Config, Loaded

Groups = dict[str, list["Loaded"]]


def check(config: Config) -> list[Diagnostic]:
    groups = config.by_kind()
    out: list[Diagnostic] = []
    out.extend(_unique_names(groups))
    out.extend(_unique_emails(groups))
    out.extend(_references(groups))
    out.extend(_single_default(groups))
    for item in groups["EmailChannel"]:
        out.extend(_channel(item, item.data))
    for item in groups["SmtpServer"]:
        out.extend(_smtp_server(item, item.data))
    return out


def _unique_names(groups: Groups) -> Iterator[Diagnostic]:
    for kind in KIND_NAMES:
        seen: dict[str, Loaded] = {}
        claimed: dict[str, Loaded] = {}
        for item in groups[kind]:
            if item.name == BUILTIN_NAMES.get(kind):
                yield item.diagnostic(
                    ("name",),
                    "error",
                    f"'{item.name}' is built in and cannot be defined; choose another name",
                )
            first = seen.get(item.name)
            if first is not None:
                where = first.diagnostic(("name",), "error", "")
                yield item.diagnostic(
                    ("name",),
                    "error",
                    f"duplicate {kind} name '{item.name}' (first defined at "
                    f"{where.file}:{where.line}:{where.column})",
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
    seen: dict[str, Loaded] = {}
    for item in groups["EmailChannel"]:
        address = item.data["email"].lower()
        first = seen.setdefault(address, item)
        if first is not item:
            yield item.diagnostic(
                ("email",),
                "error",
                f"email {item.data['email']} is already used by channel '{first.name}'; "
                "each channel needs its own address",
            )


def _references(groups: Groups) -> Iterator[Diagnostic]:
    from channelsync.loader import did_you_mean

    scripts = {i.name for i in groups["EmailScript"]} | {DEFAULT_EMAIL_SCRIPT}
    servers = {i.name for i in groups["SmtpServer"]} | {BUILTIN_SMTP_SERVER}
    for item in groups["EmailChannel"]:
        script, out = item.data["script"], item.data.get("outgoing")
        if script not in scripts:
            yield item.diagnostic(
                ("script",),
                "error",
                f"script '{script}' is not defined{did_you_mean(script, scripts)}:"
                f" add an EmailScript with that name, or omit 'script' for the "
                f"'{DEFAULT_EMAIL_SCRIPT}'",
            )
        if out is not None and out["server"] not in servers:
            server = out["server"]
            yield item.diagnostic(
                ("outgoing", "server"),
                "error",
                f"SMTP server '{server}' is not defined{did_you_mean(server, servers)}:"
                f" add an SmtpServer with that name, or use '{BUILTIN_SMTP_SERVER}'",
            )


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
    if incoming.get("tls"):
        yield from _ca_file(item, ("incoming", "tls", "ca_file"), incoming["tls"])
    out = channel.get("outgoing")
    if out is not None:
        if out["override"] and out["server"] == BUILTIN_SMTP_SERVER:
            yield item.diagnostic(
                ("outgoing", "override"),
                "error",
                f"'{BUILTIN_SMTP_SERVER}' cannot be overridden; choose a custom SmtpServer "
                "or set override: false",
            )
        elif out["override"] and out.get("password") is None:
            yield item.diagnostic(
                ("outgoing",),
                "error",
                "override: true needs the channel's password: add outgoing.password "
                "(e.g. ${env:NAME})",
                key=True,
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
    protocol = incoming["protocol"]
    if channel["enabled"] and protocol in PLAIN_PROTOCOLS:
        yield item.diagnostic(
            ("incoming", "protocol"),
            "warning",
            f"protocol {protocol} sends the password without TLS unless the "
            f"server offers STARTTLS; prefer {protocol}-ssl",
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


def _smtp_server(item: Loaded, server: dict[str, Any]) -> Iterator[Diagnostic]:
    if server.get("tls"):
        yield from _ca_file(item, ("tls", "ca_file"), server["tls"])
    user, password = server.get("user"), server.get("password")
    if (user is None) != (password is None):
        missing = "password" if password is None else "user"
        yield item.diagnostic(
            (), "error", f"SmtpServer needs both user and password, or neither; add {missing}"
        )
    if server["security"] == "none" and password is not None:
        yield item.diagnostic(
            ("security",),
            "warning",
            "security: none sends the password without TLS; use starttls or ssl",
        )


def _ca_file(
    item: Loaded, path: tuple[str, ...], tls: dict[str, Any] | None
) -> Iterator[Diagnostic]:
    ca_file = tls["ca_file"] if tls else None
    if ca_file is not None and not (item.base_dir / ca_file).is_file():
        yield item.diagnostic(
            path,
            "error",
            f"ca_file '{ca_file}' does not exist (paths are relative to this file's directory)",
        )
