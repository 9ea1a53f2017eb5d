"""The resource model: the one place for every field, default and built-in name.

The JSON Schema in ``schemas/`` is generated from these classes (``channelsync schema --write``).
Structural rules live here so that the schema and the fast validator agree; rules that relate
fields or resources to each other live in ``rules.py``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from channelsync.defaults import (
    BUILTIN_SMTP_SERVER,
    DEFAULT_EMAIL_SCRIPT,
    DEFAULT_OAUTH_AUTHORITY,
    DEFAULT_OAUTH_SCOPE,
    DNS_LABEL,
    HIDDEN_CHARACTERS,
)
from channelsync.secrets import SOURCE_NAME

# Kept to syntax both Python's `re` (jsonschema) and Rust's `regex` (pydantic) read the same way.
# No text may hold HIDDEN_CHARACTERS (controls, bidirectional overrides).
_H = HIDDEN_CHARACTERS
TEXT_PATTERN = rf"^[^{_H}]*$"
NAME_PATTERN = rf"^[^{_H}]*[^\s{_H}][^{_H}]*$"  # and not blank
# Any source name: which sources are installed is validate's check (secrets.usage_problem).
SECRET_REF_PATTERN = rf"^\$\{{{SOURCE_NAME}:[^{{}}{_H}]+\}}$"
EMAIL_PATTERN = rf"^[^@\s{_H}]+@[^@\s{_H}]+\.[^@\s{_H}]+$"
DKIM_SELECTOR_PATTERN = rf"^{DNS_LABEL}(\.{DNS_LABEL})*$"  # RFC 6376 3.1: DNS labels, 1-63 each
HOSTNAME_PATTERN = r"^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)$"

Protocol = Literal["pop3", "pop3-ssl", "imap", "imap-ssl"]
AuthType = Literal["normal", "microsoft-exchange"]
SmtpSecurity = Literal["starttls", "ssl", "none"]

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NAME_PATTERN)]
Text = Annotated[str, Field(min_length=1, pattern=TEXT_PATTERN)]
DkimSelector = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=DKIM_SELECTOR_PATTERN,
        json_schema_extra={"format": "dkim-selector"},
    ),
]
Port = Annotated[int, Field(ge=1, le=65535)]
Hostname = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=HOSTNAME_PATTERN,
        description="DNS name or IP address of the server.",
        json_schema_extra={"format": "hostname"},
    ),
]
Email = Annotated[
    str,
    Field(
        min_length=3, max_length=254, pattern=EMAIL_PATTERN, json_schema_extra={"format": "email"}
    ),
]
SecretRef = Annotated[
    str,
    Field(
        pattern=SECRET_REF_PATTERN,
        description="A reference, never the secret itself: ${env:NAME}, ${file:PATH}, or "
        "${SOURCE:NAME} of an installed secret source.",
        json_schema_extra={"writeOnly": True},
    ),
]

# The Outgoing Mail Server of a channel or an agent.
OutgoingServer = Annotated[
    Name,
    Field(
        title="Outgoing Mail Server",
        description=f'An SmtpServer\'s name, or "{BUILTIN_SMTP_SERVER}".',
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Tls(_Strict):
    """TLS settings for connection tests against servers with a private CA."""

    ca_file: Text = Field(
        description="PEM file of CA certificates to trust, relative to this YAML file.",
    )


class OAuth(_Strict):
    """Microsoft Exchange (Entra ID) app registration for the client-credentials flow."""

    tenant_id: Name = Field(description="Directory (tenant) ID of the Entra ID tenant.")
    client_id: Name = Field(description="Application (client) ID of the app registration.")
    client_secret: SecretRef = Field(description="Client secret of the app registration.")
    authority: Text = Field(
        default=DEFAULT_OAUTH_AUTHORITY,
        description="Identity provider base URL; the token endpoint is "
        "{authority}/{tenant_id}/oauth2/v2.0/token.",
    )
    scope: Text = Field(default=DEFAULT_OAUTH_SCOPE, description="Token scope.")


class Incoming(_Strict):
    """Incoming Mail Configuration: the mailbox the channel polls."""

    auth: AuthType = Field(
        default="normal",
        title="Authentication type",
        description="normal (user name and password) or microsoft-exchange (OAuth2).",
    )
    server: Hostname = Field(title="Incoming Mail Server", description="e.g. imap.gmail.com")
    protocol: Protocol = Field(
        title="Protocol", description="pop3, pop3-ssl (POP3 over SSL), imap or imap-ssl."
    )
    port: Port | None = Field(
        default=None, title="Port", description="Default by protocol: 110, 995, 143, 993."
    )
    user: Name = Field(title="User ID", description="User name of the mailbox.")
    password: SecretRef | None = Field(
        default=None, title="Password", description="Mailbox password (auth: normal only)."
    )
    oauth: OAuth | None = Field(
        default=None, description="OAuth2 app registration (auth: microsoft-exchange only)."
    )
    tls: Tls | None = None
    allow_insecure_auth: bool = Field(
        default=False,
        description="Allow sending the password over a connection without TLS "
        "(plain pop3/imap on a server that offers no STARTTLS).",
    )


class Outgoing(_Strict):
    """Outgoing Mail Configuration: where agents' replies are sent from."""

    server: OutgoingServer
    override: bool = Field(
        default=False,
        title="Override Server Configuration",
        description="Send through the channel's own account on that server.",
    )
    user: Name | None = Field(
        default=None, description="Account for override; defaults to the channel's email."
    )
    password: SecretRef | None = Field(
        default=None, title="Password", description="Account password; required with override."
    )
    allow_insecure_auth: bool = Field(
        default=False,
        description="Allow the connection test to send this account's password to an "
        "SmtpServer with security: none (no TLS).",
    )
    dkim_selectors: list[DkimSelector] | None = Field(
        default=None,
        description="DKIM selectors whose keys 'channelsync test --dns' checks "
        "(<selector>._domainkey.<domain>); channelsync's own, never sent to the tenant.",
    )


class EmailChannel(_Strict):
    """An email channel: one mailbox polled and routed to agents by an email script."""

    kind: Literal["EmailChannel"]
    name: Name = Field(title="Channel name", description="Unique; the channel's identity.")
    renamed_from: Name | None = Field(
        default=None, description="Previous name, so a rename keeps the live channel."
    )
    email: Email = Field(
        title="Email Address", description="The address customers write to; unique."
    )
    script: Name = Field(
        default=DEFAULT_EMAIL_SCRIPT,
        title="Email script",
        description="EmailScript that routes the mail; omitted means the default script.",
    )
    enabled: bool = Field(default=False, title="This Channel is enabled")
    incoming: Incoming
    outgoing: Outgoing | None = Field(
        default=None, description="Omitted means the tenant's default SMTP server."
    )


class SmtpServer(_Strict):
    """A custom outgoing (SMTP) server that channels can send through."""

    kind: Literal["SmtpServer"]
    name: Name = Field(title="Server name", description="Unique; the server's identity.")
    renamed_from: Name | None = None
    host: Hostname = Field(title="Host")
    security: SmtpSecurity = Field(
        default="starttls", description="starttls, ssl (implicit TLS) or none."
    )
    port: Port | None = Field(default=None, description="Default by security: 587, 465, 25.")
    user: Name | None = Field(default=None, title="User name")
    password: SecretRef | None = Field(default=None, title="Password")
    default: bool = Field(
        default=False, description="The tenant's default outgoing server (at most one)."
    )
    tls: Tls | None = None
    allow_insecure_auth: bool = Field(
        default=False,
        description="Allow the connection test to send the password with security: none "
        "(no TLS); without it validate refuses the password.",
    )
    dkim_selectors: list[DkimSelector] | None = Field(
        default=None,
        description="DKIM selectors whose keys 'channelsync test --dns' checks "
        "(<selector>._domainkey.<domain>); channelsync's own, never sent to the tenant.",
    )


class EmailScript(_Strict):
    """An email script: routes incoming mail to agents through email queues."""

    kind: Literal["EmailScript"]
    name: Name = Field(title="Script name")
    renamed_from: Name | None = None
    queues: list[Name] = Field(default=[], description="Email queues it routes to.")


# Why a field that a channel's section has is not an agent's (the loader says it).
AGENT_PASSWORD_REFUSED = (
    "channelsync holds no agent password: with override: true the agent enters it in "
    "Agent Console > Profile; remove it"
)


class AgentOutgoing(_Strict):
    """An agent's Outgoing Mail Server (Users > the agent > Outgoing Mail Server)."""

    model_config = ConfigDict(
        **_Strict.model_config,
        json_schema_extra={"x-refused": {"password": AGENT_PASSWORD_REFUSED}},
    )

    server: OutgoingServer
    override: bool = Field(
        default=False,
        title="Override Server Configuration",
        description="Send with the agent's own mail account on that server; the agent enters "
        "its password in Agent Console > Profile (channelsync never holds it).",
    )
    user: Name | None = Field(
        default=None, description="Account for override; defaults to the agent's email."
    )


class Agent(_Strict):
    """An agent (a user of the contact centre) and the server its replies are sent through."""

    kind: Literal["Agent"]
    name: Name = Field(
        title="User name", description="The agent's login name; unique, the agent's identity."
    )
    renamed_from: Name | None = Field(
        default=None, description="Previous name, so a rename keeps the live agent."
    )
    email: Email = Field(title="Email Address", description="The agent's address; unique.")
    outgoing: AgentOutgoing | None = Field(
        default=None, description="Omitted means the tenant's default SMTP server."
    )
