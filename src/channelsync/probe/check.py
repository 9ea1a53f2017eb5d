"""What one connection test is, what it found, and the state it carries while it runs.

Secrets are held here only as references; their values live in ``Attempt.secrets`` for the
duration of one check, so that every message leaving a check can be scrubbed of them.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from channelsync.secrets import Resolver

CheckName = Literal["incoming", "outgoing"]


@dataclass(frozen=True)
class OAuthSettings:
    tenant_id: str
    client_id: str
    client_secret: str  # a reference such as ${env:NAME}
    authority: str
    scope: str


@dataclass(frozen=True)
class Check:
    """One endpoint to test with the credentials that will really be used there."""

    kind: str
    name: str
    check: CheckName
    host: str
    port: int
    protocol: str  # pop3, pop3-ssl, imap, imap-ssl, smtp, smtp-starttls, smtp-ssl
    base_dir: Path
    user: str | None = None
    password: str | None = None  # a reference such as ${env:NAME}
    oauth: OAuthSettings | None = None
    ca_file: str | None = None
    allow_insecure_auth: bool = False
    sender: str | None = None
    # why the check does not log in (the account's password is one channelsync never holds):
    # it still connects, negotiates TLS and greets, and says this in a warning
    login_skipped: str | None = None
    # the config resource whose secrets this check uses (a loader.Loaded), for positions
    origin: Any = field(default=None, compare=False, repr=False)

    @property
    def implicit_tls(self) -> bool:
        return self.protocol.endswith("-ssl")

    @property
    def label(self) -> str:
        return f"{self.kind} '{self.name}' ({self.check})"


@dataclass(frozen=True)
class Login:
    """Resolved credentials for one check; ``repr`` never shows them."""

    user: str
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class TlsInfo:
    version: str | None = None
    cert_expires_in_days: int | None = None
    cert_expires_at: float | None = None  # notAfter as a Unix time (the monitor's metric)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "cert_expires_in_days": self.cert_expires_in_days}


@dataclass(frozen=True)
class Diagnosis:
    code: str
    message: str
    hint: str

    def __post_init__(self) -> None:
        # the server chooses some of these words: its control characters and bidirectional
        # overrides would reach the terminal, the PR comment and the JUnit file
        from channelsync.errors import visible

        object.__setattr__(self, "message", visible(self.message))
        object.__setattr__(self, "hint", visible(self.hint))

    def __str__(self) -> str:
        return f"{self.code}: {self.message}; {self.hint}"

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class ProbeFailure(Exception):
    """A failure the protocol code has diagnosed itself (no server exception to interpret)."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


class Stopped(Exception):
    """The run was interrupted (Ctrl-C): a check still under way ends at its next read."""


class ServerRefusal(Exception):
    """The server answered a command with an error; ``reply`` is its own words."""

    def __init__(self, reply: object) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass
class Result:
    kind: str
    name: str
    check: CheckName
    host: str
    port: int
    protocol: str
    ok: bool
    elapsed_ms: int
    tls: TlsInfo = field(default_factory=TlsInfo)
    error: Diagnosis | None = None
    warnings: list[str] = field(default_factory=list)
    messages: int | None = None
    queue_id: str | None = None
    unseen: int | None = None
    oldest: dt.datetime | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.protocol}://{self.host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "check": self.check,
            "host": self.host,
            "port": self.port,
            "protocol": self.protocol,
            "ok": self.ok,
            "elapsed_ms": self.elapsed_ms,
            "tls": self.tls.to_json(),
            "error": self.error.to_json() if self.error else None,
            "warnings": list(self.warnings),
            "messages": self.messages,
            "queue_id": self.queue_id,
            "unseen": self.unseen,
            "oldest": self.oldest.isoformat() if self.oldest else None,
        }


@dataclass
class Attempt:
    """The running state of one check: deadline, stage reached, secrets in play, findings."""

    check: Check
    timeout: float
    started: float = field(default_factory=time.monotonic)
    stage: str = "connect"
    secrets: list[str] = field(default_factory=list)
    tls: TlsInfo = field(default_factory=TlsInfo)
    tls_used: bool = False
    warnings: list[str] = field(default_factory=list)
    messages: int | None = None
    queue_id: str | None = None
    message: bytes | None = None  # what a sending check sends instead of its own test message
    unseen: int | None = None
    oldest: dt.datetime | None = None  # INTERNALDATE of the mailbox's first message (UTC)
    resolver: Resolver | None = None  # the run's secrets (None: read on their own)
    stop: threading.Event | None = None  # set when the run is interrupted

    def remaining(self) -> float:
        if self.stop is not None and self.stop.is_set():
            raise Stopped("the run was interrupted")
        left = self.started + self.timeout - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer within {self.timeout:g} s")
        return left

    def step(self, stage: str, sock: Any = None) -> None:
        """Enter ``stage``; the socket's timeout shrinks so the whole check keeps its bound."""
        self.stage = stage
        if sock is not None:
            sock.settimeout(self.remaining())

    def pause(self, seconds: float) -> None:
        """Wait between two looks at a mailbox; an interrupted run ends at once."""
        if self.stop is None:
            time.sleep(seconds)
        elif self.stop.wait(seconds):
            self.remaining()  # raises Stopped

    def secret(self, value: str) -> str:
        if value:
            self.secrets.append(value)
        return value

    def sasl(self, text: str) -> str:
        """``text`` base64-encoded for a SASL exchange, and remembered as a secret."""
        import base64

        encoded = base64.b64encode(text.encode()).decode()
        self.secret(encoded)
        return encoded

    def elapsed_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)


def needs_login(login: Login | None) -> Login:
    if login is None:
        raise ProbeFailure(
            "secret_unavailable",
            "incoming.password is not set; nothing was sent to the server",
            "add incoming.password (e.g. ${env:NAME}) and run 'channelsync validate'",
        )
    return login
