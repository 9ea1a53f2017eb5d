"""The resource kinds: one row per kind, the only place for the facts every layer needs.

Adding a kind is a model class (``model.py`` or a plug-in's own module) and a ``register``
call. The loader's rules, the stores' delete protection and rename following, the apply order,
the REST collections and the runbook all read these rows; nothing else lists kinds.

Kept free of heavy imports: the fast path of ``validate``/``plan`` reads the table without
loading pydantic, so a row names its model class by import path.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from channelsync.defaults import BUILTIN_SMTP_SERVER, DEFAULT_EMAIL_SCRIPT

Path = tuple[str, ...]  # a field path inside a resource, e.g. ("outgoing", "server")
OUTGOING_SERVER: Path = ("outgoing", "server")  # the Outgoing Mail Server of a channel, an agent


@dataclass(frozen=True)
class Console:
    """The vendor console's own words for a kind (the runbook's steps)."""

    noun: str  # "email channel"
    open: str  # how to reach the list: "From the Configuration Menu, open Channels ..."
    add: str  # "click Add new email channel"
    # where the resource itself enters the password of its own mail account (override: true)
    # when channelsync holds none ("": the admin enters it, from the secret store)
    own_password: str = ""


@dataclass(frozen=True)
class Kind:
    name: str  # "EmailChannel": the `kind:` of a document
    collection: str  # the REST API's collection: /v1/channels
    model: str  # "module:Class" of the pydantic model (imported on demand)
    console: Console
    builtin: str | None = None  # the one built-in resource of this kind (never written)
    references: Mapping[Path, str] = field(default_factory=dict)  # field path -> kind it names
    local_fields: tuple[Path, ...] = ()  # channelsync's own settings: never sent to a tenant
    tested: bool = False  # connection-tested (channelsync test, the apply gate)
    unique: tuple[str, ...] = ()  # top-level fields unique among this kind (case-insensitive)
    word: str = ""  # the short word in messages ("channel", "script"); the name by default
    # the section a new default SMTP server resets to the tenant's default (None: follow it)
    resets: Path | None = None

    @property
    def called(self) -> str:
        return self.word or self.name

    def model_class(self) -> Any:
        module, _, attr = self.model.partition(":")
        return getattr(importlib.import_module(module), attr)


_KINDS: dict[str, Kind] = {}
_WATCHERS: list[Callable[[], None]] = []


def register(kind: Kind) -> Kind:
    """Add (or replace) a kind. Its references may name kinds registered later;
    ``dependency_order`` checks that every one exists."""
    _KINDS[kind.name] = kind
    _changed()
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests that register a kind of their own)."""
    if _KINDS.pop(name, None) is not None:
        _changed()


def watch(forget: Callable[[], None]) -> None:
    """Call ``forget`` whenever the table changes (caches of what kinds' schemas say)."""
    _WATCHERS.append(forget)


def _changed() -> None:
    for forget in _WATCHERS:
        forget()


def as_shipped() -> bool:
    """Whether the table is the built-in one, from which the packaged schema was generated."""
    return tuple(_KINDS.values()) == _SHIPPED


def get(name: str) -> Kind:
    return _KINDS[name]


def names() -> tuple[str, ...]:
    """Every kind, in registration order (the order of listings and reports)."""
    return tuple(_KINDS)


def all_kinds() -> tuple[Kind, ...]:
    return tuple(_KINDS.values())


def by_collection(collection: str) -> Kind | None:
    return next((k for k in _KINDS.values() if k.collection == collection), None)


def builtin_names() -> dict[str, str]:
    return {k.name: k.builtin for k in _KINDS.values() if k.builtin is not None}


# --- the reference walker ------------------------------------------------------------------


def get_path(doc: Mapping[str, Any], path: Path) -> Any:
    """The value at ``path`` in a resource, or None when a step of it is missing."""
    node: Any = doc
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def references_of(kind: str, data: Mapping[str, Any]) -> Iterator[tuple[Path, str, str]]:
    """(path, kind referred to, name referred to) of every reference a resource holds."""
    for path, target in _KINDS[kind].references.items():
        value = get_path(data, path)
        if isinstance(value, str):
            yield path, target, value


def users_of(
    resources: Iterable[tuple[str, str, Mapping[str, Any]]], kind: str, name: str
) -> list[tuple[str, str, Path]]:
    """(kind, name, path) of every resource whose reference names ``kind`` ``name``."""
    out = []
    for user_kind, user_name, data in resources:
        for path, target, value in references_of(user_kind, data):
            if target == kind and value == name:
                out.append((user_kind, user_name, path))
    return sorted(out)


def referring_kinds(kind: str) -> list[tuple[str, Path]]:
    """(kind, path) of every reference field, of any kind, that can name a ``kind``."""
    return [(k.name, p) for k in _KINDS.values() for p, t in k.references.items() if t == kind]


def dependency_order() -> tuple[str, ...]:
    """Kinds in an order where every kind comes after the kinds it refers to (a topological
    order of the references; ties in registration order). Creates and updates go in this
    order, deletes in its reverse."""
    done: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise ValueError(f"the references of kind {name} form a cycle")
        visiting.add(name)
        for target in _KINDS[name].references.values():
            if target not in _KINDS:
                raise ValueError(f"kind {name} refers to kind {target}, which is not registered")
            if target != name:
                visit(target)
        visiting.discard(name)
        done.append(name)

    for name in _KINDS:
        visit(name)
    return tuple(done)


# --- the built-in kinds --------------------------------------------------------------------

_CONFIGURATION = "From the Configuration Menu, open"

register(
    Kind(
        "EmailChannel",
        collection="channels",
        model="channelsync.model:EmailChannel",
        console=Console(
            "email channel",
            f"{_CONFIGURATION} Channels and go to the Email tab",
            "click Add new email channel",
        ),
        references={("script",): "EmailScript", OUTGOING_SERVER: "SmtpServer"},
        local_fields=(
            ("incoming", "tls"),
            ("incoming", "allow_insecure_auth"),
            ("outgoing", "allow_insecure_auth"),
            ("outgoing", "dkim_selectors"),
        ),
        tested=True,
        unique=("email",),
        word="channel",
        resets=("outgoing",),
    )
)
register(
    Kind(
        "SmtpServer",
        collection="smtp-servers",
        model="channelsync.model:SmtpServer",
        console=Console(
            "SMTP server",
            f"{_CONFIGURATION} the outgoing email (SMTP) server settings",
            "add a new SMTP server",
        ),
        builtin=BUILTIN_SMTP_SERVER,
        local_fields=(("tls",), ("allow_insecure_auth",), ("dkim_selectors",)),
        tested=True,
        word="SMTP server",
    )
)
register(
    Kind(
        "EmailScript",
        collection="scripts",
        model="channelsync.model:EmailScript",
        console=Console(
            "email script",
            f"{_CONFIGURATION} Scripts and go to the email scripts",
            "add a new email script",
        ),
        builtin=DEFAULT_EMAIL_SCRIPT,
        word="script",
    )
)
register(
    Kind(
        "Agent",
        collection="agents",
        model="channelsync.model:Agent",
        console=Console(
            "agent",
            f"{_CONFIGURATION} Users",
            "click Add new user",
            own_password="Agent Console > Profile",
        ),
        references={OUTGOING_SERVER: "SmtpServer"},
        tested=True,
        unique=("email",),
        word="agent",
        resets=("outgoing",),
    )
)

_SHIPPED = tuple(_KINDS.values())
