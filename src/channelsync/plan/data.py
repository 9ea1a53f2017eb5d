"""A plan as data: what changes, field by field, and what to warn about.

Nothing here formats output (``render/plan.py`` does) or reads files (``plan/saved.py``
does). Actions are a string enum, so a plan's JSON reads the same as plain strings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from channelsync.errors import Diagnostic, Severity
from channelsync.targets.base import Key

SENSITIVE = "(sensitive)"


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    RENAME = "rename"
    DELETE = "delete"


ACTIONS = tuple(a.value for a in Action)


class WarningCategory(enum.StrEnum):
    """What a plan warning is about, for tools that filter or count them."""

    SECRET_UNREADABLE = "secret-unreadable"  # a secret reference plan cannot read
    SECRETS_NOT_SHOWN = "secrets-not-shown"  # more unreadable secrets than are listed
    TENANT_ABSENT = "tenant-absent"  # the target names no tenant yet
    IGNORE_RULE_EXPIRED = "ignore-rule-expired"  # drift: a rule that no longer applies


@dataclass(frozen=True)
class Position:
    file: str
    line: int
    column: int


@dataclass(frozen=True)
class PlanWarning:
    """One warning of a plan; positioned ones point at the config line they are about."""

    category: WarningCategory
    message: str
    kind: str | None = None
    name: str | None = None
    position: Position | None = None
    severity: Severity = "warning"

    @classmethod
    def at(
        cls, category: WarningCategory, diagnostic: Diagnostic, kind: str, name: str
    ) -> PlanWarning:
        """The warning ``diagnostic`` states about resource ``kind``/``name``."""
        where = Position(diagnostic.file, diagnostic.line, diagnostic.column)
        return cls(category, diagnostic.message, kind, name, where, diagnostic.severity)

    @property
    def order(self) -> tuple[str, int, int]:
        """Where it stands in the order validate uses (file, line, column)."""
        where = self.position or Position("", 0, 0)
        return (where.file, where.line, where.column)


@dataclass(slots=True)  # a plan of 100,000 creates holds over a million
class FieldChange:
    path: str
    before: Any
    after: Any
    sensitive: bool = False


@dataclass(slots=True)
class Change:
    kind: str
    name: str
    action: Action
    previous_name: str | None = None
    fields: list[FieldChange] = field(default_factory=list)
    live_etag: str | None = None
    followers: list[str] = field(default_factory=list)  # channels the tenant carries along
    # the kind of each follower that is not a channel (an agent), by name
    follower_kinds: dict[str, str] = field(default_factory=dict)
    # an address another channel takes in the same apply: this channel holds this one first
    temporary_email: str | None = None
    # the SmtpServer this apply makes the default, which resets this resource's outgoing
    # server; the change sets it back
    reset_by: str | None = None
    # the tenant's default SMTP server, when the live outgoing server is the default's
    # because a default was set outside channelsync (drift says why)
    reset_outside: str | None = None
    # the change only sets back what the new default resets (the resource is as the config
    # says before the apply): it does not count towards --force
    set_back_only: bool = False

    def __post_init__(self) -> None:
        self.action = Action(self.action)

    @property
    def key(self) -> Key:
        return (self.kind, self.name)


@dataclass(frozen=True)
class DefaultReset:
    """A new default SMTP server resets the outgoing server of every channel and agent of
    the tenant ("The changes are kept unless a new default server is set")."""

    server: str  # the new default
    counts: dict[str, int]  # kind -> how many resources of it the tenant resets
    set_back: int  # of them, those the config gives a server of their own: set back


@dataclass(frozen=True)
class Refusal:
    """Something apply refuses to do unless given ``flag``; the plan says so in advance."""

    flag: str
    reason: str
    advice: str

    def __str__(self) -> str:
        return f"apply will need {self.flag}: {self.reason}"


@dataclass
class Plan:
    target: str
    changes: list[Change]
    no_op: int
    warnings: list[PlanWarning]
    config_fingerprint: str  # "" unless asked for (saving or checking a plan reads it)
    live_count: int = 0
    only: list[str] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    ignored: int = 0  # drift: resources with differences left out by ignore rules
    not_selected: int = 0  # changes that --only left out (not counted as unchanged)
    default_reset: DefaultReset | None = None  # what this apply's new default resets

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action.value] += 1
        if self.only:  # what --only left out, not counted as unchanged
            return {**counts, "no_op": self.no_op, "not_selected": self.not_selected}
        return {**counts, "no_op": self.no_op}

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)
