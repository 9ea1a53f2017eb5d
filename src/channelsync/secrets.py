"""Secret references (``${env:NAME}``, ``${file:PATH}``), their resolution and fingerprints.

A secret's value is read only where it is needed (apply, connection tests, plan fingerprints)
and never stored in a model, a plan, an error message or a log line.

A secret file is read only if it is a regular file of at most 64 KiB, UTF-8 text, not empty,
and (while a command confines secret files, see ``confined_to``) inside the config repository
after following symlinks. Which endpoints a secret may be sent to is ``bindings.py``'s rule.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from channelsync.errors import SecretUnavailable as SecretUnavailable

_REF = re.compile(r"^\$\{(?P<source>[A-Za-z_][A-Za-z0-9_-]*):(?P<name>[^{}]*)\}$")
SOURCES = ("env", "file")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# Other tools' spellings of a reference -> (source, name). A bare ``$NAME`` counts only in
# capitals: a literal password that happens to start with '$' must never be echoed back.
_LOOKALIKES = (
    re.compile(r"^\$(?P<name>[A-Z_][A-Z0-9_]*)$"),  # shell $NAME
    re.compile(rf"^\$\{{(?P<name>{_IDENT})\}}$"),  # shell ${NAME}
    re.compile(rf"^\$\((?P<name>{_IDENT})\)$"),  # make $(NAME)
    re.compile(rf"^%(?P<name>{_IDENT})%$"),  # cmd.exe %NAME%
    re.compile(rf"^\$(?i:env):(?P<name>{_IDENT})$"),  # PowerShell $env:NAME
    re.compile(rf"^(?P<source>env|file)\s*:\s*(?P<name>{_IDENT})$"),  # env:NAME
    re.compile(r"^\{(?P<source>env|file):(?P<name>[^{}]+)\}$"),  # {env:NAME}, no '$'
    re.compile(r"^\$\{(?P<source>env|file):(?P<name>[^{}]+)$"),  # ${env:NAME, unclosed
)
_SOURCE_ALIASES = {"env": "env", "environ": "env", "environment": "env", "file": "file"}
FINGERPRINT_PREFIX = "hmac-sha256:"
MAX_SECRET_FILE_BYTES = 64 * 1024
# Variables of the CI system and of channelsync itself: never a channel's secret.
RESERVED_PREFIXES = ("CHANNELSYNC_", "GITHUB_", "ACTIONS_", "RUNNER_")
# procfs and sysfs files claim to be regular and empty, yet hold (other processes') data;
# devices are refused as not regular files, wherever they are
_SYSTEM_DIRS = ("/proc", "/sys")
_SYSTEM_DIRS_SLASH = tuple(d + "/" for d in _SYSTEM_DIRS)


# The folder secret files must be inside (a real path), or None: anywhere. Set by the
# commands that resolve secrets (``confined_to``); a plain module value, because connection
# tests resolve secrets on worker threads.
_confinement: str | None = None


@contextlib.contextmanager
def confined_to(root: Path | None) -> Iterator[None]:
    """While active, ``${file:...}`` must name a file inside ``root`` (None: no limit)."""
    global _confinement
    before = _confinement
    _confinement = os.path.realpath(root) if root is not None else None
    try:
        yield
    finally:
        _confinement = before


def repository_root(config_dir: Path) -> Path:
    """The config repository: the git work tree holding ``config_dir`` (the nearest folder,
    from ``config_dir`` up, with a ``.git``), else the folder that holds ``config_dir``."""
    start = Path(os.path.realpath(config_dir))
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start.parent


@dataclass(frozen=True)
class SecretRef:
    source: str
    name: str

    def __str__(self) -> str:
        return f"${{{self.source}:{self.name}}}"

    def file_path(self, base_dir: Path | None) -> Path:
        """The file a ``${file:...}`` reference names, relative paths from ``base_dir``."""
        path = Path(self.name)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return path

    def resolve(self, base_dir: Path | None = None) -> str:
        if self.source == "env":
            value = _env_value(self.name)
            what = f"environment variable {self.name}"
        else:
            path = self.file_path(base_dir)
            value = _file_value(path)
            what = f"secret file {path}"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8, smuggled in as surrogates
            raise SecretUnavailable(f"{what} is not UTF-8 text") from None
        if not value.strip():
            raise SecretUnavailable(f"{what} is empty")
        return value


def system_file_problem(ref: SecretRef, base_dir: Path | None) -> str | None:
    """Why a ``${file:...}`` names a system file (under ``/proc`` or ``/sys``, after
    following symlinks), or None; nothing is read."""
    if ref.source != "file":
        return None
    try:
        real = os.path.realpath(ref.file_path(base_dir))
    except (OSError, ValueError):
        return None  # resolution says why
    if real in _SYSTEM_DIRS or real.startswith(_SYSTEM_DIRS_SLASH):
        return f"{ref} is a system file ({real}), not a secret; name a file of your own"
    return None


def _env_value(name: str) -> str:
    try:
        value = os.environ.get(name)
    except ValueError:  # a NUL in the name
        raise SecretUnavailable("secret variable name is not valid") from None
    if value is None:
        raise SecretUnavailable(f"environment variable {name} is not set")
    return value


def _file_value(path: Path) -> str:
    """The text of a secret file; never blocks on a FIFO, never reads more than the limit."""
    try:
        real = os.path.realpath(path)
        if real in _SYSTEM_DIRS or real.startswith(_SYSTEM_DIRS_SLASH):
            raise SecretUnavailable(f"secret file {path} is a system file ({real}), not a secret")
        if _confinement is not None and os.path.commonpath((_confinement, real)) != _confinement:
            raise SecretUnavailable(
                f"secret file {path} is outside the config repository {_confinement} (after "
                "following symlinks); move it inside, or pass --allow-secret-files-outside"
            )
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SecretUnavailable(
                    f"secret file {path} is {_file_type(info.st_mode)}, not a regular file"
                )
            if info.st_size > MAX_SECRET_FILE_BYTES:
                raise SecretUnavailable(
                    f"secret file {path} is {info.st_size:,} bytes; the limit is 64 KiB"
                )
            raw = os.read(fd, MAX_SECRET_FILE_BYTES + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SecretUnavailable(f"secret file {path} cannot be read ({exc.strerror})") from None
    except ValueError:  # e.g. a NUL in the path
        raise SecretUnavailable("secret file path is not a valid path") from None
    if len(raw) > MAX_SECRET_FILE_BYTES:  # it grew, or its size lied
        raise SecretUnavailable(f"secret file {path} is larger than the limit of 64 KiB")
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise SecretUnavailable(f"secret file {path} is not UTF-8 text") from None


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ):
        if test(mode):
            return name
    return "not a file"


def parse_ref(text: str) -> SecretRef | None:
    """The reference in ``text``, or None when ``text`` is not reference syntax at all."""
    m = _REF.match(text)
    if m is None:
        return None
    return SecretRef(m["source"], m["name"])


def ref_problem(text: str) -> str | None:
    """Why ``text`` is not a usable reference, or None. A literal value is never echoed; only a
    name written in another tool's reference syntax is, as the reference it should be."""
    ref = parse_ref(text)
    if ref is None:
        meant = _meant(text)
        if meant is not None:
            return (
                "secrets must be references like ${env:NAME} or ${file:PATH}; "
                f"did you mean {meant}?"
            )
        return (
            "secrets must be references like ${env:NAME} or ${file:PATH}, "
            "not literal values; move the value into an environment variable or a file"
        )
    if ref.source not in SOURCES:
        source = _SOURCE_ALIASES.get(ref.source.lower())
        hint = f"did you mean {SecretRef(source, ref.name)}?" if source and ref.name.strip() else ""
        return f"unknown secret source '{ref.source}'; {hint or 'use ${env:NAME} or ${file:PATH}'}"
    if not ref.name.strip():
        return f"secret reference ${{{ref.source}:}} names nothing"
    return reserved_problem(ref)


def reserved_problem(ref: SecretRef) -> str | None:
    """Why ``ref`` names a variable that is not a channel's to use, or None."""
    if ref.source != "env":
        return None
    upper = ref.name.upper()
    for prefix in RESERVED_PREFIXES:
        if upper.startswith(prefix):
            return (
                f"{ref} is reserved: {prefix}* variables belong to the CI system or to "
                "channelsync itself, never to a channel; store the secret under a name of its own"
            )
    return None


def _meant(text: str) -> SecretRef | None:
    """The reference ``text`` was probably meant to be, written the way another tool spells it."""
    for pattern in _LOOKALIKES:
        m = pattern.match(text.strip())
        if m is not None:
            found = m.groupdict()
            return SecretRef(found.get("source") or "env", found["name"])
    return None


def fingerprint(key: bytes, value: str) -> str:
    """Keyed fingerprint: equal secrets compare equal, and the value cannot be recovered."""
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return FINGERPRINT_PREFIX + digest
