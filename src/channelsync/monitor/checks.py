"""What the monitor tests in a served tenant: the checks ``channelsync test`` makes for its
enabled channels and its SMTP servers, with the secrets the store holds.

The stored bodies carry fingerprints where the secrets were; each becomes a reference to the
run's own ``stored`` source, which reads the unsealed value from memory, so a check uses the
very code path (and diagnoses) of ``channelsync test``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from channelsync.document import get_path, normalize, secret_paths, set_path
from channelsync.secrets import SecretRef, SecretSource, SecretUnavailable, SourceContext

if TYPE_CHECKING:
    from channelsync.loader import Loaded
    from channelsync.notices import Notice
    from channelsync.probe.check import Check

STORED_SOURCE = "stored"
KINDS = ("EmailChannel", "SmtpServer")
NOTICE_DAYS = 30  # a dated provider notice is alerted this many days ahead


class StoredSecrets(SecretSource):
    """The unsealed secrets of one round of checks, by ``Kind/name/field.path``."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values

    def read(self, name: str, context: SourceContext) -> str:
        try:
            return self._values[name]
        except KeyError:
            raise SecretUnavailable("the store holds no value for it") from None

    def describe(self, name: str, context: SourceContext) -> str:
        return f"stored secret {name}"

    def hint(self, name: str) -> str:
        return "store the secret again (channelsync apply, or PUT with the secret)"


@dataclass
class _Resource:
    """What ``checks_for`` reads of a loaded resource, for one in the store."""

    kind: str
    name: str
    data: dict[str, Any]
    base_dir: Path


@dataclass
class Round:
    """The checks of one tenant, the source of their secrets, and the enabled channels (for
    the backlog warning)."""

    checks: list[Check]
    secrets: StoredSecrets
    enabled: set[str]


def collect(store: Any) -> Round:
    """The checks of the tenant in ``store`` (a ``server.store.Store``), as the store is now."""
    from channelsync.probe.runner import checks_for

    base_dir = Path(store.path).parent
    values: dict[str, str] = {}
    resources: list[_Resource] = []
    for kind in KINDS:
        for stored in store.repo.of_kind(kind):
            body = dict(stored.body)
            unsealed = store.tenant.sealer.unseal(store.repo.sealed(kind, stored.name))
            for path in secret_paths(kind):
                field = ".".join(path)
                if get_path(body, path) is not None:
                    name = f"{kind}/{stored.name}/{field}"
                    if field in unsealed:
                        values[name] = unsealed[field]
                    set_path(body, path, str(SecretRef(STORED_SOURCE, name)))
            resources.append(_Resource(kind, stored.name, normalize(kind, body), base_dir))
    enabled = {r.name for r in resources if r.kind == "EmailChannel" and r.data.get("enabled")}
    wanted = [r for r in resources if r.kind == "SmtpServer" or r.name in enabled]
    servers = [r for r in resources if r.kind == "SmtpServer"]
    found = checks_for(cast("list[Loaded]", wanted), servers=cast("list[Loaded]", servers))
    # no config file to point at: a stored resource has no position
    checks = [dataclasses.replace(c, origin=None) for c in found]
    return Round(checks, StoredSecrets(values), enabled)


def upcoming_notices(check: Check, today: dt.date) -> list[Notice]:
    """The dated provider notices that apply to ``check`` and take effect within
    ``NOTICE_DAYS`` days."""
    from channelsync import notices

    return [
        n
        for n in notices.applying(check.check, check.host, notices.check_auth(check))
        if 0 <= (n.effective - today).days <= NOTICE_DAYS
    ]
