"""Secret references (``${source:name}``), the per-run resolver, and fingerprints.

A secret's value is read only where it is needed (apply, connection tests, plan fingerprints),
at most once per run (``Resolver``), and never stored in a model, a plan, an error message or
a log line. Sources are plug-ins found by name in the ``channelsync.secrets`` entry-point
group; the built-ins ``env`` and ``file`` (``secret_sources.py``) register the same way, so a
package adds one by declaring, for example::

    [project.entry-points."channelsync.secrets"]
    vault = "acme_vault:VaultSource"

A secret file is read only if it is a regular file of at most 64 KiB, UTF-8 text, not empty,
and (when the command's resolver confines secret files) inside the config repository after
following symlinks. Which endpoints a secret may be sent to is ``bindings.py``'s rule.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import hmac
import importlib
import os
import re
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from channelsync.errors import ChannelsyncError
from channelsync.errors import SecretUnavailable as SecretUnavailable

ENTRY_POINT_GROUP = "channelsync.secrets"
SOURCE_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_REF = re.compile(rf"^\$\{{(?P<source>{SOURCE_NAME}):(?P<name>[^{{}}]*)\}}$")
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
# devices are refused as not regular files, wherever they are
_SYSTEM_DIRS = ("/proc", "/sys")
_SYSTEM_DIRS_SLASH = tuple(d + "/" for d in _SYSTEM_DIRS)


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


PLACEHOLDER_SOURCE = "env"  # where export points a secret the config does not name yet


def placeholder(name: str) -> str:
    """The reference export writes for a live secret the config has no reference for."""
    return str(SecretRef(PLACEHOLDER_SOURCE, name))


@dataclass(frozen=True)
class SourceContext:
    """What a source may use besides the reference's name: the folder of the YAML file that
    holds the reference (None: not from a config file), the folder secret files must be
    inside (a real path; None: anywhere), and the rules for reading a secret file."""

    base_dir: Path | None = None
    confinement: str | None = None

    def path(self, name: str) -> Path:
        """``name`` as a path, relative paths from the YAML file's folder."""
        path = Path(name)
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path

    def read_file(self, path: Path) -> str:
        """The text of a secret file: a regular file of at most 64 KiB, UTF-8, inside the
        confinement after following symlinks; never blocks on a FIFO."""
        return _file_value(path, self.confinement)


class SecretSource:
    """A place secrets are read from, named by the ``source`` of ``${source:name}``.

    Registered in the ``channelsync.secrets`` entry-point group; the class is called without
    arguments, once per process. Only ``read`` is required; the rest have safe defaults.
    """

    by_folder = False  # whether ``problem`` needs the context's base_dir

    def read(self, name: str, context: SourceContext) -> str:
        """The secret's value; SecretUnavailable (a message without the value) when it
        cannot be read. Called at most once per run for each ``identity``."""
        raise NotImplementedError

    def identity(self, name: str, context: SourceContext) -> str:
        """What the reference denotes, without reading it: references with equal identities
        are the same secret (read once, bound once)."""
        return name

    def describe(self, name: str, context: SourceContext) -> str:
        """The secret in an error message (never its value)."""
        return f"secret {name}"

    def problem(self, name: str, context: SourceContext) -> str | None:
        """Why a reference may never be used, found without reading it (``validate``)."""
        return None

    def hint(self, name: str) -> str:
        """What to do when the secret cannot be read."""
        return "make the secret readable where channelsync runs"

    def as_written(self, identity: str, root: Path) -> str:
        """The name a bindings file (relative to the repository ``root``) gives ``identity``."""
        return identity


_NO_FOLDER = SourceContext()

BUILTIN_SOURCES = {
    "env": "channelsync.secret_sources:EnvSource",
    "file": "channelsync.secret_sources:FileSource",
}


@functools.cache
def installed() -> dict[str, str]:
    """Every source name -> its ``module:Class``: the ``channelsync.secrets`` entry points.
    The built-ins register there too; they are known without the scan."""
    from importlib.metadata import entry_points

    found = dict(BUILTIN_SOURCES)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def _known(name: str) -> bool:
    return name in BUILTIN_SOURCES or name in installed()


@functools.cache
def source(name: str) -> SecretSource:
    """The source ``name`` (installed, see ``installed``); ChannelsyncError when it cannot be
    loaded."""
    target = BUILTIN_SOURCES.get(name) or installed().get(name)
    if target is None:
        raise SecretUnavailable(f"no secret source '{name}' is installed")
    module, _, attr = target.partition(":")
    try:
        found = getattr(importlib.import_module(module), attr)()
    except Exception as exc:  # a broken plug-in: name it, never a traceback
        raise ChannelsyncError(
            f"secret source '{name}' ({target}) cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(found, SecretSource):
        raise ChannelsyncError(
            f"secret source '{name}' ({target}) is not a channelsync.secrets.SecretSource"
        )
    return found


def identity(ref: SecretRef, base_dir: Path | None) -> tuple[str, str]:
    """What ``ref`` denotes (a ``${file:...}``: the file it really reads); nothing is read."""
    return ref.source, source(ref.source).identity(ref.name, SourceContext(base_dir))


class Resolver:
    """The secrets of one run: each reference is read at most once, then served from memory.

    Created by the command (with the repository that confines secret files), passed down to
    plan, apply, the gate and the probes. Failures are remembered too: a secret that cannot
    be read is not tried again in the same run. Safe to share between threads.
    """

    def __init__(
        self, confine_to: Path | None = None, *, sources: dict[str, SecretSource] | None = None
    ) -> None:
        self.confinement = os.path.realpath(confine_to) if confine_to is not None else None
        self._sources = dict(sources or {})  # this run's own, e.g. the served store's secrets
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str], str | SecretUnavailable] = {}
        self._pending: dict[tuple[str, str], threading.Lock] = {}

    def resolve(self, ref: SecretRef, base_dir: Path | None = None) -> str:
        """The value of ``ref`` (relative paths from ``base_dir``); SecretUnavailable says why
        not, naming the secret but never its value."""
        found = self.source(ref.source)
        context = SourceContext(base_dir, self.confinement)
        key = (ref.source, found.identity(ref.name, context))
        with self._lock:
            gate = self._pending.setdefault(key, threading.Lock())
        with gate:  # one read per secret, even when checks on many threads need it at once
            value = self._values.get(key)
            if value is None:
                try:
                    value = _checked(found.read(ref.name, context), found, ref.name, context)
                except SecretUnavailable as exc:
                    value = exc
                except Exception as exc:  # a plug-in's own failure; its words may hold data
                    what = found.describe(ref.name, context)
                    value = SecretUnavailable(f"{what} cannot be read ({type(exc).__name__})")
                self._values[key] = value
        if isinstance(value, SecretUnavailable):
            raise SecretUnavailable(str(value))
        return value

    def values(self) -> list[str]:
        """The values read so far (for scrubbing what the run writes, never for showing)."""
        with self._lock:
            return [v for v in self._values.values() if isinstance(v, str)]

    def source(self, name: str) -> SecretSource:
        """The source ``name``: one of this run's own, else an installed one."""
        return self._sources.get(name) or source(name)

    def try_resolve(self, ref: SecretRef, base_dir: Path | None = None) -> str | None:
        with contextlib.suppress(SecretUnavailable):
            return self.resolve(ref, base_dir)
        return None


def _checked(value: str, found: SecretSource, name: str, context: SourceContext) -> str:
    """Every source's value is UTF-8 text that is not blank."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8, smuggled in as surrogates
        raise SecretUnavailable(f"{found.describe(name, context)} is not UTF-8 text") from None
    if not value.strip():
        raise SecretUnavailable(f"{found.describe(name, context)} is empty")
    return value


def is_system_path(real: str) -> bool:
    """procfs and sysfs files claim to be regular and empty, yet hold (other processes')
    data."""
    return real in _SYSTEM_DIRS or real.startswith(_SYSTEM_DIRS_SLASH)


def _file_value(path: Path, confinement: str | None) -> str:
    """The text of a secret file; never blocks on a FIFO, never reads more than the limit."""
    try:
        real = os.path.realpath(path)
        if is_system_path(real):
            raise SecretUnavailable(f"secret file {path} is a system file ({real}), not a secret")
        if confinement is not None and os.path.commonpath((confinement, real)) != confinement:
            raise SecretUnavailable(
                f"secret file {path} is outside the config repository {confinement} (after "
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
    if not _known(ref.source):
        return _unknown_source(ref)
    if not ref.name.strip():
        return f"secret reference ${{{ref.source}:}} names nothing"
    return source(ref.source).problem(ref.name, SourceContext())


def usage_problem(text: str, context: Callable[[], SourceContext]) -> str | None:
    """Why the well-formed reference ``text`` in a YAML file may never be used (an unknown
    source, a reserved variable, a system file), or None; nothing is read. ``context`` makes
    the file's context, only for sources whose rule needs it (``SecretSource.by_folder``)."""
    found, name, problem = _context_free_problem(text)
    return found.problem(name, context()) if found is not None else problem


@functools.lru_cache(maxsize=65536)  # a large config repeats its references
def _context_free_problem(text: str) -> tuple[SecretSource | None, str, str | None]:
    """(the source, when its rule needs the YAML file's folder; the name; else the problem)."""
    m = _REF.match(text)
    if m is None or not m["name"].strip():
        return None, "", None  # the schema check says why
    name, rest = m["source"], m["name"]
    if not _known(name):
        return None, rest, _unknown_source(SecretRef(name, rest))
    found = source(name)
    if found.by_folder:
        return found, rest, None
    return None, rest, found.problem(rest, _NO_FOLDER)


def reload_sources() -> None:
    """Find the installed sources again (after a package was installed in this process)."""
    for cached in (installed, source, _context_free_problem):
        cached.cache_clear()


def _unknown_source(ref: SecretRef) -> str:
    known = sorted(installed())
    meant = _SOURCE_ALIASES.get(ref.source.lower())
    if meant is None:
        close = difflib.get_close_matches(ref.source.lower(), known, n=1, cutoff=0.6)
        meant = close[0] if close else None
    hint = f"did you mean {SecretRef(meant, ref.name)}?" if meant and ref.name.strip() else ""
    if not hint and set(known) != set(BUILTIN_SOURCES):
        hint = f"installed sources: {', '.join(known)}"
    return f"unknown secret source '{ref.source}'; {hint or 'use ${env:NAME} or ${file:PATH}'}"


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
