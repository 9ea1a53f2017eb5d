"""Dated changes at mail providers: what will break next, and what already has.

The notices are data (``data/provider_notices.json``, shipped in the package): each names the
hosts and the kind of sign-in it concerns, the day it takes effect, the words the server sends
once it is in force, and where it was published. ``validate`` warns about every notice that
applies to a resource; the connection tests quote the notice whose words a server sent.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from channelsync import kinds
from channelsync.defaults import BUILTIN_SMTP_SERVER

if TYPE_CHECKING:
    from channelsync.errors import Diagnostic
    from channelsync.loader import Loaded
    from channelsync.probe.check import Check

Direction = Literal["incoming", "outgoing"]
Auth = Literal["password", "oauth"]
DATA_FILE = "provider_notices.json"


@dataclass(frozen=True)
class Notice:
    id: str
    provider: str
    code: str
    check: str  # incoming, outgoing or any
    hosts: tuple[str, ...]  # exact names; a leading dot matches every name under it
    auth: str  # password, oauth or any
    effective: dt.date
    change: str
    error: str | None
    hint: str
    source: str

    def applies(self, check: Direction, host: str, auth: Auth | None) -> bool:
        if self.check not in ("any", check) or auth is None:
            return False
        if self.auth not in ("any", auth):
            return False
        host = host.lower().rstrip(".")
        return any(host == h or (h.startswith(".") and host.endswith(h)) for h in self.hosts)

    def when(self, as_of: dt.date) -> str:
        days = (self.effective - as_of).days
        if days <= 0:
            return f"since {self.effective.isoformat()}"
        return f"from {self.effective.isoformat()} (in {days} day{'s' if days > 1 else ''})"

    def warning(self, as_of: dt.date) -> str:
        words = f"servers answer '{self.error}'; " if self.error else ""
        return (
            f"{self.provider}, {self.when(as_of)}: {self.change}; {self.hint} "
            f"({words}{self.source})"
        )

    def quote(self, as_of: dt.date | None = None) -> str:
        """The notice as a diagnosis hint: what changed, since (or from) when, what to do, and
        where; ``as_of`` is today unless given."""
        when = self.when(as_of or dt.date.today())
        return f"{self.provider}, {when}: {self.change}; {self.hint} ({self.source})"


@cache
def load() -> tuple[Notice, ...]:
    text = resources.files("channelsync").joinpath("data", DATA_FILE).read_text("utf-8")
    return tuple(_notice(entry) for entry in json.loads(text)["notices"])


def _notice(entry: dict[str, Any]) -> Notice:
    return Notice(
        id=entry["id"],
        provider=entry["provider"],
        code=entry["code"],
        check=entry["check"],
        hosts=tuple(h.lower() for h in entry["hosts"]),
        auth=entry["auth"],
        effective=dt.date.fromisoformat(entry["effective"]),
        change=entry["change"],
        error=entry.get("error"),
        hint=entry["hint"],
        source=entry["source"],
    )


def applying(check: Direction, host: str, auth: Auth | None) -> list[Notice]:
    return [n for n in load() if n.applies(check, host, auth)]


def for_reply(reply: str, check: Direction, host: str, auth: Auth | None) -> Notice | None:
    """The notice whose error string is in ``reply`` from a server it applies to."""
    lowered = reply.lower()
    return next(
        (
            n
            for n in applying(check, host, auth)
            if n.error is not None and n.error.lower() in lowered
        ),
        None,
    )


def for_failed_check(reply: str, check: Check) -> Notice | None:
    """The notice that explains a connection test's failure (``probe/diagnose.py``)."""
    return for_reply(reply, check.check, check.host, check_auth(check))


def check_auth(check: Check) -> Auth | None:
    """How a connection test signs in (None: it does not)."""
    return "oauth" if check.oauth else ("password" if check.password else None)


def diagnostics(resources: Sequence[Loaded], as_of: dt.date) -> Iterator[Diagnostic]:
    """A warning for each notice that applies to a channel, an agent or an SMTP server."""
    servers = {r.name: r.data for r in resources if r.kind == "SmtpServer"}
    for item in resources:
        data = item.data
        if item.kind == "EmailChannel":
            incoming = data["incoming"]
            auth: Auth = "password" if incoming["auth"] == "normal" else "oauth"
            for notice in applying("incoming", incoming["server"], auth):
                yield item.diagnostic(("incoming", "server"), "warning", notice.warning(as_of))
        # a channel's or an agent's own account (override)
        if kinds.OUTGOING_SERVER in kinds.get(item.kind).references:
            out = data.get("outgoing") or {}
            server = servers.get(out.get("server", ""))
            if out.get("override") and server is not None and out["server"] != BUILTIN_SMTP_SERVER:
                for notice in applying("outgoing", server["host"], "password"):
                    yield item.diagnostic(("outgoing", "server"), "warning", notice.warning(as_of))
        elif item.kind == "SmtpServer" and data.get("password") is not None:
            for notice in applying("outgoing", data["host"], "password"):
                yield item.diagnostic(("host",), "warning", notice.warning(as_of))
