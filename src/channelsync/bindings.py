"""Secret bindings: which endpoints each secret may be sent to (``channelsync.secrets.yaml``).

Configuration arrives in pull requests, and a connection test sends a secret to the server
the configuration names. With a bindings file in force, a test sends a secret only to the
endpoints bound to it there, so that a change to ``channels.d/`` cannot send a mailbox
password (or a token obtained with a client secret) to a host of its own::

    bindings:
      - secret: ${env:ACMEJETS_IMAP_PASSWORD}
        endpoints: ["imap.gmail.com:993"]
      - secret: ${env:CONTOSO_OAUTH_SECRET}
        endpoints: ["https://login.microsoftonline.com", "outlook.office365.com:993"]

An endpoint is ``host:port`` (IMAP, POP3, SMTP) or an ``https://`` URL (an OAuth token
endpoint: the authority, optionally with the tenant path). A client secret's check needs
both its token endpoint and the mail server the token is then sent to. A ``${file:PATH}``
secret is identified by the file it really reads (symlinks followed; any source: by its
``identity``); relative paths in the bindings file are relative to the config repository
(``secrets.repository_root``).

Nothing here reads a secret's value; resolution is ``secrets.py``'s job.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from channelsync.defaults import BINDINGS_ENV, BINDINGS_FILE
from channelsync.errors import ConfigError, Diagnostic
from channelsync.secrets import SecretRef, identity, parse_ref, ref_problem, source

FILE_NAME = BINDINGS_FILE
ENV_VAR = BINDINGS_ENV
NOT_BOUND = "secret_not_bound"

_HOST_PORT = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:/\s\[\]@]+)):(?P<port>\d{1,5})$"
)
# Only plain URLs: a character that URL parsers read differently (\, @, %2F...) is refused.
_URL = re.compile(
    r"^(?P<scheme>https?)://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?"
    r"(?P<path>(?:/[A-Za-z0-9._~-]*)*)$"
)
_DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class Endpoint:
    """``host:port`` (``scheme`` empty) or a URL; hosts in lower case, paths without a
    trailing slash."""

    host: str
    port: int
    scheme: str = ""
    path: str = ""

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if not self.scheme:
            return f"{host}:{self.port}"
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"

    def covers(self, other: Endpoint) -> bool:
        """``other`` is this endpoint, or (for a URL) a path below it."""
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        return not self.path or other.path == self.path or other.path.startswith(self.path + "/")


def _host(text: str) -> str:
    return text.lower().rstrip(".")


def mail_endpoint(host: str, port: int) -> Endpoint:
    """Where a mail server check sends its credentials."""
    return Endpoint(_host(host.strip("[]")), port)


def parse_endpoint(text: str) -> Endpoint | str:
    """The endpoint ``text`` names, or why it is not one."""
    from channelsync.model import HOSTNAME_PATTERN
    from channelsync.targets import has_credentials, without_userinfo

    if has_credentials(text):
        return (
            f"'{without_userinfo(text)}' carries credentials (USER[:PASSWORD]@HOST); "
            "remove them: a binding names only where a secret may go"
        )
    url = _URL.match(text)
    if url is not None:
        path = url["path"].rstrip("/")
        if any(part in (".", "..") for part in path.split("/")):
            return f"'{text}': a URL path with '.' or '..' segments; write the path itself"
        port = int(url["port"]) if url["port"] else _DEFAULT_PORTS[url["scheme"]]
        if not 1 <= port <= 65535:
            return f"'{text}': port {port} is outside 1-65535"
        return Endpoint(_host(url["host"].strip("[]")), port, url["scheme"], path)
    if "://" in text:
        return (
            f"'{text}' is not a plain https:// URL (no user, query or fragment; letters, "
            "digits and . - _ ~ in the path)"
        )
    match = _HOST_PORT.match(text)
    if match is None:
        return f"'{text}' is neither host:port (e.g. imap.gmail.com:993) nor an https:// URL"
    host = match["v6"] or match["host"]
    port = int(match["port"])
    if not re.match(HOSTNAME_PATTERN, host):
        return f"'{text}': '{host}' is not a valid host name or IP address"
    if not 1 <= port <= 65535:
        return f"'{text}': port {port} is outside 1-65535"
    return mail_endpoint(host, port)


def token_endpoint(authority: str, tenant_id: str) -> Endpoint | None:
    """Where an OAuth check sends its client secret (``{authority}/{tenant_id}``), or None
    when that is not a plain URL whose destination is certain."""
    found = parse_endpoint(f"{authority.rstrip('/')}/{tenant_id}")
    return found if isinstance(found, Endpoint) and found.scheme else None


@dataclass(frozen=True)
class Binding:
    ref: SecretRef
    key: tuple[str, str]  # what the secret is: ("env", NAME) or ("file", real path)
    endpoints: tuple[Endpoint, ...]
    line: int  # of its endpoints key, for hints
    inline: bool = True  # the list is written on that line ([a, b]), not one item a line


@dataclass
class Bindings:
    """A loaded bindings file: ``refusal`` says whether a secret may go to endpoints."""

    display: str
    root: Path
    bindings: list[Binding] = field(default_factory=list)

    def refusal(
        self, ref: SecretRef, base_dir: Path, field_name: str, wanted: Sequence[Endpoint]
    ) -> tuple[str, str] | None:
        """(message, hint) when ``ref`` (written in a file in ``base_dir``) is not bound to
        every endpoint of ``wanted``; None when it is. Several bindings of one file (through
        symlinks) allow only what all of them allow."""
        key = _key(ref, base_dir)
        matching = [b for b in self.bindings if b.key == key]
        missing = [w for w in wanted if not matching or not all(_bound(b, w) for b in matching)]
        if not missing:
            return None
        names = ", ".join(str(m) for m in missing)
        message = f"{field_name} {ref} is not bound to {names} in {self.display}; nothing was sent"
        added = [json.dumps(str(m)) for m in missing]
        if matching and matching[0].inline:
            first = matching[0]
            listed = [json.dumps(str(e)) for e in first.endpoints] + added
            hint = (
                f"if the secret belongs there, change line {first.line} of {self.display} "
                f"to: endpoints: [{', '.join(listed)}]"
            )
        elif matching:
            hint = (
                f"if the secret belongs there, add {', '.join(added)} to the endpoints at line "
                f"{matching[0].line} of {self.display}"
            )
        else:
            shown = json.dumps(str(self._as_written(ref, key)))
            hint = (
                f"if the secret belongs there, add under bindings: in {self.display}: "
                f"- {{secret: {shown}, endpoints: [{', '.join(added)}]}}"
            )
        return message, hint

    def _as_written(self, ref: SecretRef, key: tuple[str, str]) -> SecretRef:
        """``ref`` as the bindings file would write it (file paths from the repository)."""
        return SecretRef(ref.source, source(ref.source).as_written(key[1], self.root))


def _bound(binding: Binding, wanted: Endpoint) -> bool:
    return any(e.covers(wanted) for e in binding.endpoints)


def _key(ref: SecretRef, base_dir: Path | None) -> tuple[str, str]:
    return identity(ref, base_dir)


# ---- reading the file --------------------------------------------------------------------


def _display(path: Path) -> str:
    text = str(path)
    cwd = os.getcwd() + os.sep
    return text[len(cwd) :] if text.startswith(cwd) else text


def read(path: Path, root: Path) -> tuple[Bindings, list[Diagnostic]]:
    """The bindings in ``path`` and every problem found in it (positions file:line:col)."""
    from channelsync.yamlsource import read_source

    display = _display(path)
    bindings = Bindings(display, root)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        problem = "does not exist" if isinstance(exc, FileNotFoundError) else exc.strerror
        message = f"secret bindings file {problem}; create it (see {FILE_NAME}) or fix the path"
        return bindings, [Diagnostic(display, 1, 1, "error", message)]
    if not stat.S_ISREG(mode):
        message = "secret bindings file is not a regular file"
        return bindings, [Diagnostic(display, 1, 1, "error", message)]
    source = read_source(str(path), display)
    if not source.problems:
        if len(source.documents) != 1:
            source.error(1, 1, "a secret bindings file holds one YAML document")
        else:
            _parse(source, bindings)
    return bindings, sorted(source.problems)


def load(path: Path, root: Path) -> Bindings:
    """The bindings in ``path``; ConfigError (every problem, positioned) when it has any."""
    bindings, problems = read(path, root)
    if problems:
        raise ConfigError(
            problems, summary=f"the secret bindings file {bindings.display} has errors"
        )
    return bindings


def _parse(source: Any, bindings: Bindings) -> None:
    document = source.document(0)
    data = document.data

    def error(path: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        source.error(*document.position(path, key=key), message)

    if not isinstance(data, dict) or "bindings" not in data:
        error((), "expected a mapping with 'bindings:' (a list of {secret, endpoints})")
        return
    for extra in data:
        if extra != "bindings":
            error((extra,), f"unknown field '{extra}'; only 'bindings' is allowed", key=True)
    entries = data["bindings"]
    if not isinstance(entries, list):
        error(("bindings",), "bindings: expected a list of {secret, endpoints}")
        return
    seen: dict[tuple[str, str], tuple[int, int]] = {}
    for index, entry in enumerate(entries):
        at: tuple[str | int, ...] = ("bindings", index)
        binding = _entry(entry, at, bindings.root, error, document)
        if binding is None:
            continue
        first = seen.get(binding.key)
        where = document.position((*at, "secret"))
        if first is not None:
            error(
                (*at, "secret"),
                f"{binding.ref} is bound already (at line {first[0]}, column {first[1]}); "
                "list all its endpoints in one binding",
            )
            continue
        seen[binding.key] = where
        bindings.bindings.append(binding)


def _entry(
    entry: Any, at: tuple[str | int, ...], root: Path, error: Any, document: Any
) -> Binding | None:
    if not isinstance(entry, dict):
        error(at, "each binding is a mapping: {secret: ${env:NAME}, endpoints: [host:port]}")
        return None
    ok = True
    for extra in entry:
        if extra not in ("secret", "endpoints"):
            error(
                (*at, extra),
                f"unknown field '{extra}'; a binding has secret and endpoints",
                key=True,
            )
            ok = False
    secret, endpoints = entry.get("secret"), entry.get("endpoints")
    ref = parse_ref(secret) if isinstance(secret, str) else None
    if secret is None:
        error(at, "missing 'secret' (e.g. secret: ${env:NAME})")
        ok = False
    else:
        problem = ref_problem(secret) if isinstance(secret, str) else "must be a secret reference"
        if problem is not None:
            error((*at, "secret"), f"secret: {problem}")
            ok = False
    if not isinstance(endpoints, list) or not endpoints:
        error(
            at if endpoints is None else (*at, "endpoints"),
            "endpoints: expected a non-empty list of host:port or https:// URLs",
        )
        return None
    parsed: list[Endpoint] = []
    for i, text in enumerate(endpoints):
        found = parse_endpoint(text) if isinstance(text, str) else "must be text"
        if isinstance(found, str):
            error((*at, "endpoints", i), f"endpoint {found}")
            ok = False
        else:
            parsed.append(found)
    if not ok or ref is None:
        return None
    line = document.position((*at, "endpoints"), key=True)[0]
    inline = document.position((*at, "endpoints", 0))[0] == line
    return Binding(ref, _key(ref, root), tuple(parsed), line, inline)


# ---- the command line --------------------------------------------------------------------


def from_args(args: argparse.Namespace) -> Bindings | None:
    """The bindings the command line selects, or None; ConfigError when the file is bad."""
    from channelsync.secrets import repository_root

    path: Path | None = getattr(args, "secret_bindings", None)
    return load(path, repository_root(args.dir)) if path is not None else None


def problems_of(args: argparse.Namespace) -> list[Diagnostic]:
    """Every problem of the bindings file the command line selects (for ``validate``)."""
    from channelsync.secrets import repository_root

    return read(args.secret_bindings, repository_root(args.dir))[1]


# ---- writing: export adds bindings for the placeholders it writes -------------------------


def check_writable(path: Path) -> bool:
    """ConfigError when ``path`` exists and is not a valid bindings file (so that ``export``
    can refuse before it writes anything); True when it has content to keep."""
    if not path.exists() or not path.stat().st_size:
        return False
    problems = read(path, path.parent)[1]
    if problems:
        raise ConfigError(problems, summary=f"fix {_display(path)} first; nothing was exported")
    return True


def extend_file(path: Path, wanted: Mapping[str, Iterable[str]]) -> bool:
    """Bind each reference of ``wanted`` to its endpoints in ``path`` (created if missing),
    keeping every existing line and comment. True when the file changed."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    text = path.read_text(encoding="utf-8") if check_writable(path) else ""
    data = yaml.load(text) if text else CommentedMap(bindings=CommentedSeq())
    entries = data["bindings"]  # a list: read() checked the file
    entries.fa.set_block_style()
    by_secret = {str(e.get("secret")): e for e in entries if isinstance(e, dict)}
    changed = False
    for secret, endpoints in wanted.items():
        entry = by_secret.get(secret)
        if entry is None:
            entry = CommentedMap(secret=secret, endpoints=_flow([]))
            entries.append(entry)
            by_secret[secret] = entry
            changed = True
        listed = entry.setdefault("endpoints", _flow([]))
        for endpoint in endpoints:
            if endpoint not in listed:
                listed.append(DoubleQuotedScalarString(endpoint))
                changed = True
    if changed:
        import io

        out = io.StringIO()
        yaml.dump(data, out)
        from channelsync.fsio import write_atomic

        write_atomic(path, out.getvalue())
    return changed


def _flow(items: list[str]) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def endpoints_of(
    kind: str, data: dict[str, Any], path: tuple[str, ...], servers: dict[str, dict[str, Any]]
) -> list[str]:
    """Where the secret at ``path`` of a resource is sent (its connection test's endpoints);
    ``servers`` are the SmtpServers by name, for a channel's own SMTP account."""
    from channelsync.defaults import INCOMING_DEFAULT_PORTS, SMTP_DEFAULT_PORTS

    def smtp(server: dict[str, Any] | None) -> list[str]:
        if server is None:
            return []
        port = server.get("port") or SMTP_DEFAULT_PORTS[server.get("security") or "starttls"]
        return [str(mail_endpoint(server["host"], port))]

    if kind == "SmtpServer":
        return smtp(data)
    if path[:1] == ("outgoing",):
        return smtp(servers.get(str((data.get("outgoing") or {}).get("server"))))
    incoming = data["incoming"]
    port = incoming.get("port") or INCOMING_DEFAULT_PORTS[incoming["protocol"]]
    mail = str(mail_endpoint(incoming["server"], port))
    if path[-1] != "client_secret":
        return [mail]
    from channelsync.defaults import DEFAULT_OAUTH_AUTHORITY

    authority = parse_endpoint(
        (incoming.get("oauth") or {}).get("authority") or DEFAULT_OAUTH_AUTHORITY
    )
    return ([str(authority)] if isinstance(authority, Endpoint) else []) + [mail]
