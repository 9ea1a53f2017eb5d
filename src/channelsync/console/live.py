"""Test connection from the console: the checks of ``channelsync test``, with stored secrets.

The stored resources stand in for the config's: their bodies (normalised as the loader
does) give the checks, and each stored secret becomes a reference that only this run's
resolver can read, unsealed by the server for the length of one run. The checks, their
timeouts, their diagnoses and the backlog warnings are ``probe``'s, exactly as the CLI runs
them; nothing here talks to a mail server itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from channelsync import document
from channelsync.defaults import BACKLOG_AFTER_MINUTES, BUILTIN_SMTP_SERVER, PROBE_TIMEOUT
from channelsync.errors import Diagnostic, SecretUnavailable
from channelsync.probe.check import Check, Result
from channelsync.secrets import Resolver, SecretRef

if TYPE_CHECKING:
    from channelsync.desired import Loaded
    from channelsync.server.store import Store

_SOURCE = "env"  # any installed source: the run's resolver answers before a source is read
_PREFIX = "channelsync-stored/"


@dataclass
class StoredResource:
    """A stored resource with the attributes of a loaded one that the checks read."""

    kind: str
    name: str
    data: dict[str, Any]
    base_dir: Path

    def diagnostic(self, path: Any, severity: Any, message: str, **_: Any) -> Diagnostic:
        return Diagnostic(f"{self.kind} '{self.name}' (stored)", 0, 0, severity, message)


class StoredSecrets(Resolver):
    """The run's resolver: the stored values of the references ``prepare`` wrote."""

    def __init__(self) -> None:
        super().__init__()
        self._stored: dict[str, str] = {}

    def add(self, kind: str, name: str, path: str, value: str) -> str:
        key = f"{_PREFIX}{kind}/{name}/{path}"
        self._stored[key] = value
        return str(SecretRef(_SOURCE, key))

    def resolve(self, ref: SecretRef, base_dir: Path | None = None) -> str:
        value = self._stored.get(ref.name)
        if value is None:
            raise SecretUnavailable("the tenant holds no value for it")
        return value


@dataclass
class Run:
    """What one press of Test connection runs: the checks and the secrets they need."""

    checks: list[Check]
    secrets: StoredSecrets
    enabled: set[str]
    untested: list[str]  # why a part of the path is not tested (the vendor's own relay)


def _stored(
    store: Store, kind: str, name: str, secrets: StoredSecrets, base_dir: Path
) -> StoredResource | None:
    found = store.resource(kind, name)
    if found is None:
        return None
    data = document.normalize(kind, found[0])
    values = store.tenant.sealer.unseal(store.repo.sealed(kind, name))
    for path in document.secret_paths(kind):
        dotted = ".".join(path)
        parent = document.get_path(data, path[:-1]) if len(path) > 1 else data
        if not isinstance(parent, dict) or path[-1] not in parent:
            continue
        if dotted in values:
            parent[path[-1]] = secrets.add(kind, name, dotted, values[dotted])
        else:
            del parent[path[-1]]
    return StoredResource(kind, name, data, base_dir)


def prepare(store: Store, kind: str, name: str) -> Run | None:
    """The checks of one stored channel (incoming, and its outgoing path) or SMTP server;
    None when it does not exist. Runs on the database thread."""
    from channelsync.probe.runner import checks_for

    base_dir = Path(store.path).parent  # where a relative tls.ca_file is found
    secrets = StoredSecrets()
    item = _stored(store, kind, name, secrets, base_dir)
    if item is None:
        return None
    untested: list[str] = []
    out = item.data.get("outgoing") or {}
    server = out.get("server") or store.default_name() if kind == "EmailChannel" else None
    found = _stored(store, "SmtpServer", server, secrets, base_dir) if server else None
    servers = [found] if found is not None else []
    checks = checks_for(_loaded([item]), servers=_loaded(servers))
    if kind == "EmailChannel" and not out.get("override"):
        if server == BUILTIN_SMTP_SERVER:
            untested.append(f"outgoing: {server} is the vendor's own relay; it is not tested")
        else:  # the channel sends through its server with the server's account
            checks += [
                dataclasses.replace(c, kind=kind, name=name, sender=item.data["email"])
                for c in checks_for(_loaded(servers))
            ]
    enabled = {name} if kind == "EmailChannel" and item.data.get("enabled") else set()
    return Run(checks, secrets, enabled, untested)


def run(prepared: Run, timeout: float = PROBE_TIMEOUT) -> list[Result]:
    """The checks' results, as ``channelsync test`` gets them (blocking: call in a thread)."""
    from channelsync.probe.mailbox import add_backlog_warnings
    from channelsync.probe.runner import run_checks

    results = run_checks(prepared.checks, timeout=timeout, secrets=prepared.secrets)
    add_backlog_warnings(results, prepared.enabled, after_minutes=BACKLOG_AFTER_MINUTES)
    return results


def _loaded(items: list[StoredResource]) -> list[Loaded]:
    # the checks read kind, name, data, base_dir and diagnostic(): a StoredResource has them
    return cast("list[Loaded]", items)
