"""The tenant's own rules, whatever client writes, over any ``Repository``.

References must exist (or name a built-in); a channel without a script gets the default
script; a channel or agent without an outgoing server follows the tenant's default, and at
most one SmtpServer is the default; a new default resets the outgoing server of every channel
and agent to it (``reset_to_default``); built-ins cannot be changed; unique fields (a
channel's address) are unique within a kind; renaming a resource carries the resources
that name it along; a resource still named by another cannot be deleted. The references,
built-ins, unique fields and reset sections come from the kind registry
(``channelsync.kinds``), not from field names here.

Every operation is one transaction of the repository, with its audit entry in it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channelsync import kinds
from channelsync.defaults import BUILTIN_SMTP_SERVER, DEFAULT_EMAIL_SCRIPT, tenant_default_server
from channelsync.document import copy_mappings, get_path, secret_paths, set_path
from channelsync.targets.base import ConflictError, Operation, TargetError
from channelsync.tenant.lease import Lease, abandoned
from channelsync.tenant.repository import Repository, Row, Stored, Tenants
from channelsync.tenant.sealing import Keys, Sealer, new_data_key, tenant_keys

# The audit entry's fields from the resource before and after a change (None: absent).
AuditFields = Callable[[dict[str, Any] | None, dict[str, Any] | None], list[str]]


def stored_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """The embedded store's audit: the top-level fields written (none for a delete)."""
    return sorted(after) if after is not None else []


def _subject(kind: str, name: str) -> str:
    """How an error names a resource: "channel 'Support'", "server 'Relay'"."""
    return f"{kinds.get(kind).console.noun.split()[-1]} '{name}'"


class Tenant:
    """The rules, the sealing of secrets and the audit, composed over one repository."""

    def __init__(
        self, repo: Repository, sealer: Sealer, *, audit_fields: AuditFields = stored_fields
    ) -> None:
        self.repo = repo
        self.sealer = sealer
        self._audit_fields = audit_fields

    # --- writing ------------------------------------------------------------------------

    def apply(self, op: Operation, *, actor: str, lease: Lease | None = None) -> None:
        """One operation in one transaction; ``lease``: the apply lock it renews."""
        if op.kind not in kinds.names():
            raise TargetError(f"unknown kind '{op.kind}' (known: {', '.join(kinds.names())})")
        with self.repo.transaction():
            if lease is not None:
                lease.renew(self.repo)
            default = self.default_server() if op.kind == "SmtpServer" else None
            if op.action == "create":
                if self.repo.exists(op.kind, op.name):
                    raise ConflictError(f"{op.kind} '{op.name}' already exists in the tenant")
                self._write(op, None, actor, insert=True)
            elif op.action == "update":
                self._write(op, self._expect(op, op.name), actor, insert=False)
            elif op.action == "rename":
                self._rename(op, actor)
            elif op.action == "delete":
                self._delete(op, actor)
            else:
                raise TargetError(f"unknown action '{op.action}'")
            if op.action == "rename" and default == op.previous_name:
                default = op.name  # the default, renamed: not a new default
            if default is not None and self.default_server() != default:
                self.reset_to_default(actor)

    def set_default(self, name: str, *, actor: str, lease: Lease | None = None) -> bool:
        """Make SmtpServer ``name`` the tenant's default (for the built-in: mark none), in one
        audited transaction; False, changing nothing, when there is no such server."""
        with self.repo.transaction():
            if lease is not None:
                lease.renew(self.repo)
            default = self.default_server()
            if name != BUILTIN_SMTP_SERVER:
                found = self.repo.get("SmtpServer", name)
                if found is None:
                    return False
                self.repo.update_body("SmtpServer", name, {**found.body, "default": True})
            self._clear_other_defaults(name)
            self.repo.audit(actor, "SmtpServer", name, "set-default", ["default"])
            if self.default_server() != default:
                self.reset_to_default(actor)
        return True

    def reset_to_default(self, actor: str) -> None:
        """The vendor's rule, read literally: "The changes are kept unless a new default
        server is set". Every resource of a kind that ``resets`` a section (a channel's and
        an agent's Outgoing Mail Server) loses it and follows the new default; the secrets
        of that section go with it."""
        for kind in kinds.all_kinds():
            section = kind.resets
            if section is None:
                continue
            prefix = ".".join(section)
            for row in self.repo.of_kind(kind.name):
                if get_path(row.body, section) is None:
                    continue
                body = copy_mappings(row.body)
                set_path(body, section, None)
                secrets = self.sealer.unseal(self.repo.sealed(kind.name, row.name))
                if not any(p == prefix or p.startswith(prefix + ".") for p in secrets):
                    self.repo.update_body(kind.name, row.name, body)
                else:
                    for path, value in secrets.items():
                        if not path.startswith(prefix + "."):
                            set_path(body, tuple(path.split(".")), value)
                    sealed = self.sealer.seal(kind.name, body)
                    self.repo.update(Row(kind.name, row.name, body, sealed, _unique(kind, body)))
                self.repo.audit(actor, kind.name, row.name, "reset", [prefix])

    def _expect(self, op: Operation, name: str) -> Stored:
        found = self.repo.get(op.kind, name)
        if found is None:
            raise ConflictError(f"{op.kind} '{name}' no longer exists in the tenant")
        if op.expected_etag is not None and found.etag != op.expected_etag:
            raise ConflictError(f"{op.kind} '{name}' was changed in the tenant since the plan")
        return found

    def _rename(self, op: Operation, actor: str) -> None:
        old = op.previous_name
        assert old is not None
        before = self._expect(op, old)
        if self.repo.exists(op.kind, op.name):
            raise ConflictError(f"cannot rename to '{op.name}': that {op.kind} already exists")
        self.repo.rename(op.kind, old, op.name)
        self._follow_rename(op.kind, old, op.name)
        self._write(op, before, actor, insert=False)

    def _delete(self, op: Operation, actor: str) -> None:
        before = self._expect(op, op.name)
        users = self.users_of(op.kind, op.name)
        if users:
            raise TargetError(f"{op.kind} '{op.name}' is still used by {_listing(users)}")
        self.repo.delete(op.kind, op.name)
        self.repo.audit(actor, op.kind, op.name, op.action, self._audit_fields(before.body, None))

    def _write(self, op: Operation, before: Stored | None, actor: str, *, insert: bool) -> None:
        name = op.name
        if op.body is None:
            raise TargetError(f"{op.action} of {op.kind} '{name}' carries no body")
        if kinds.get(op.kind).builtin == name:
            raise TargetError(f"'{name}' is built in and cannot be changed")
        body = copy_mappings(op.body)  # the caller's stays as it was
        body["name"] = name
        unique = self._check(op.kind, name, body)
        sealed = self.sealer.seal(op.kind, body)
        if op.kind == "SmtpServer" and body.get("default"):
            self._clear_other_defaults(name)
        row = Row(op.kind, name, body, sealed, unique)
        if insert:
            self.repo.insert(row)
        else:
            self.repo.update(row)
        fields = self._audit_fields(before.body if before is not None else None, body)
        self.repo.audit(actor, op.kind, name, op.action, fields)

    def rotate_key(self, tenants: Tenants, name: str, master: Keys, *, actor: str) -> int:
        """A new data key for this tenant (``name`` in ``tenants``), sealed by ``master``, and
        every secret of the tenant sealed and fingerprinted again under it, all in one
        transaction (a failure leaves the old key and secrets); the number of resources
        sealed again. Refused while an apply holds the tenant's lock (its sealer is the old
        one). The other tenants' rows are not touched."""
        with self.repo.transaction():
            found = self.repo.lock_row()
            if found is not None and not abandoned(*found):
                raise TargetError(
                    f"tenant '{name}' is locked by an apply ({found[0].describe()}); rotate "
                    "its key once that apply is done"
                )
            sealed_key = new_data_key(master)
            new = Sealer(tenant_keys(master, sealed_key, name))
            count = 0
            for kind in kinds.names():
                paths = secret_paths(kind)
                if not paths:
                    continue
                for stored in self.repo.of_kind(kind):
                    values = self.sealer.unseal(self.repo.sealed(kind, stored.name))
                    if not values:
                        continue
                    body = copy_mappings(stored.body)
                    for path in paths:
                        if ".".join(path) in values:
                            set_path(body, path, values[".".join(path)])
                    unique = self._check(kind, stored.name, body)
                    self.repo.update(Row(kind, stored.name, body, new.seal(kind, body), unique))
                    self.repo.audit(actor, kind, stored.name, "rotate-key", sorted(values))
                    count += 1
            tenants.set_data_key(name, sealed_key)
        self.sealer = new
        return count

    # --- the rules ----------------------------------------------------------------------

    def _check(self, kind: str, name: str, body: dict[str, Any]) -> str | None:
        """Fill what the tenant fills, refuse what it refuses; the row's unique value."""
        if kind == "EmailChannel":
            body.setdefault("script", DEFAULT_EMAIL_SCRIPT)
        for _path, target, value in kinds.references_of(kind, body):
            other = kinds.get(target)
            if value != other.builtin and not self.repo.exists(target, value):
                raise TargetError(
                    f"{_subject(kind, name)}: {other.console.noun} '{value}' does not exist"
                )
        outgoing = body.get("outgoing") or {}
        if outgoing.get("server") == BUILTIN_SMTP_SERVER and outgoing.get("override"):
            raise TargetError(
                f"{_subject(kind, name)}: '{BUILTIN_SMTP_SERVER}' cannot be overridden"
            )
        unique = _unique(kinds.get(kind), body)
        if unique is None:
            return None
        clash = self.repo.unique_holder(kind, unique, name)
        if clash is not None:
            field = kinds.get(kind).unique[0]
            raise TargetError(
                f"{_subject(kind, name)}: {field} {body.get(field, '')} is used by '{clash}'"
            )
        return unique

    def users_of(self, kind: str, name: str) -> list[tuple[str, str, kinds.Path]]:
        """(kind, name, path) of every resource that names ``kind`` ``name``."""
        return kinds.users_of(self._referring(kind), kind, name)

    def _referring(self, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
        referring = dict.fromkeys(k for k, _ in kinds.referring_kinds(kind))
        return [(r.kind, r.name, r.body) for k in referring for r in self.repo.of_kind(k)]

    def _follow_rename(self, kind: str, old: str, new: str) -> None:
        rows = self._referring(kind)
        bodies = {(k, n): body for k, n, body in rows}
        for user_kind, user_name, path in kinds.users_of(rows, kind, old):
            body = bodies[(user_kind, user_name)]
            set_path(body, path, new)
            self.repo.update_body(user_kind, user_name, body)

    def _clear_other_defaults(self, name: str) -> None:
        for server in self.repo.of_kind("SmtpServer"):
            if server.name != name and server.body.get("default"):
                self.repo.update_body("SmtpServer", server.name, {**server.body, "default": False})

    def default_server(self) -> str:
        """The tenant's default SMTP server: the one marked default, else the built-in."""
        return tenant_default_server(r.body for r in self.repo.of_kind("SmtpServer"))


def _unique(kind: kinds.Kind, body: dict[str, Any]) -> str | None:
    """The row's unique value (lower case): a store keeps one per row, the first field's."""
    return str(body.get(kind.unique[0], "")).lower() if kind.unique else None


def _listing(users: list[tuple[str, str, kinds.Path]]) -> str:
    """ "channel(s) A, B" (at most five names per kind), kind by kind."""
    by_kind: dict[str, list[str]] = {}
    for kind, name, _path in users:
        names = by_kind.setdefault(kind, [])
        if name not in names:
            names.append(name)
    return "; ".join(
        f"{kinds.get(kind).called}(s) {', '.join(names[:5])}" for kind, names in by_kind.items()
    )
