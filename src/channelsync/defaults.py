"""Built-in names and the defaults that depend on other fields.

Kept free of heavy imports: the fast path of ``validate`` and ``plan`` reads these without
loading pydantic. Static defaults are the pydantic fields' own (``model.py``) and reach the
fast path through the generated schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

# The combined resource schema the package ships (``channelsync schema --write`` writes it).
PACKAGED_SCHEMA = Path(__file__).with_name("resource.schema.json")
# The optional project file (environments) at the repository root, and its packaged schema.
PROJECT_FILE = "channelsync.yaml"
PACKAGED_PROJECT_SCHEMA = Path(__file__).with_name("project.schema.json")

# `channelsync serve`'s API tokens: where they are kept (hashed) and the roles a token can have.
DEFAULT_TOKENS_FILE = Path(".channelsync") / "tokens.json"
TokenRole = Literal["read", "write"]
TOKEN_ROLES: tuple[TokenRole, ...] = ("read", "write")

# The secret bindings file (which endpoints each secret may be sent to) and its variable.
BINDINGS_FILE = "channelsync.secrets.yaml"
BINDINGS_ENV = "CHANNELSYNC_SECRET_BINDINGS"

DEFAULT_TARGET = "sqlite:///.channelsync/tenant.db"  # the embedded tenant, created on first use

# The tenants of one store: the one every single-tenant path and sqlite:/// target means, and
# what a tenant's name may be (it appears in URLs: https://HOST/tenants/NAME).
DEFAULT_TENANT = "default"
TENANT_NAME_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"

BUILTIN_SMTP_SERVER = "VCC Internal"
DEFAULT_EMAIL_SCRIPT = "Default Email Script"

# Characters no configured text may hold: controls hide text and move the cursor in
# terminals, bidirectional overrides (U+202A-U+202E, U+2066-U+2069) and marks (U+200E,
# U+200F, U+061C) show text in another order than it is (in plans and PR comments), and
# invisible format characters (zero-width U+200B-U+200D, U+2060-U+2064, a BOM U+FEFF inside
# a value, the soft hyphen U+00AD) make two different values look the same. A regex class,
# escaped so that Python's `re` (jsonschema), Rust's `regex` (pydantic) and jsonschema-rs
# read it alike.
HIDDEN_CHARACTERS = (
    r"\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    r"\u2066-\u2069\ufeff"
)
DNS_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # RFC 1123: 1-63 characters

INCOMING_DEFAULT_PORTS: dict[str, int] = {
    "pop3": 110,
    "pop3-ssl": 995,
    "imap": 143,
    "imap-ssl": 993,
}
SMTP_DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "ssl": 465, "none": 25}
# The SMTP security modes each well-known SMTP port serves (25 and 587 may offer STARTTLS).
SMTP_PORT_SECURITY: dict[int, tuple[str, ...]] = {
    25: ("starttls", "none"),
    465: ("ssl",),
    587: ("starttls", "none"),
}
PLAIN_PROTOCOLS = frozenset({"pop3", "imap"})

# Connection tests: checks at the same time, and seconds allowed per check. 128 by measurement
# (bench/probe.py, 200 channels behind +100 ms per round trip, two cores): 32 waits on the
# network, 64-200 are about even; the number stays bounded (a thread and a socket per check).
PROBE_CONCURRENCY = 128
PROBE_TIMEOUT = 15.0
# End-to-end round trips: seconds to wait for the probe message; mail older than this many
# minutes in an enabled channel's mailbox is a backlog.
E2E_TIMEOUT = 120.0
E2E_CONCURRENCY = 256  # round trips at the same time: they mostly wait for the mail
BACKLOG_AFTER_MINUTES = 15.0

DEFAULT_OAUTH_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_OAUTH_SCOPE = "https://outlook.office365.com/.default"


def tenant_default_server(servers: Iterable[dict[str, Any]]) -> str:
    """The tenant's default outgoing server: the SmtpServer marked default, else VCC Internal.
    Channels without an outgoing server of their own send through it."""
    return next((s["name"] for s in servers if s.get("default")), BUILTIN_SMTP_SERVER)


def apply_derived(kind: str, doc: dict[str, Any]) -> None:
    """Fill the defaults that depend on other fields, in place (after static defaults)."""
    if kind == "EmailChannel":
        incoming = doc["incoming"]
        if incoming.get("port") is None:
            incoming["port"] = INCOMING_DEFAULT_PORTS[incoming["protocol"]]
    elif kind == "SmtpServer" and doc.get("port") is None:
        doc["port"] = SMTP_DEFAULT_PORTS[doc["security"]]
    outgoing = doc.get("outgoing")  # a channel's or an agent's: the account is its address
    if type(outgoing) is dict and outgoing.get("override") and outgoing.get("user") is None:
        outgoing["user"] = doc["email"]
