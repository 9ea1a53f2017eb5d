"""Secret references (``${env:NAME}``, ``${file:PATH}``), their resolution and fingerprints.

A secret's value is read only where it is needed (apply, connection tests, plan fingerprints)
and never stored in a model, a plan, an error message or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path

from channelsync.errors import ChannelsyncError

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


class SecretUnavailable(ChannelsyncError):
    """A reference is well-formed but its value cannot be read here (unset variable, no file)."""


@dataclass(frozen=True)
class SecretRef:
    source: str
    name: str

    def __str__(self) -> str:
        return f"${{{self.source}:{self.name}}}"

    def resolve(self, base_dir: Path | None = None) -> str:
        if self.source == "env":
            try:
                value = os.environ.get(self.name)
            except ValueError:  # a NUL in the name
                raise SecretUnavailable("secret variable name is not valid") from None
            if value is None:
                raise SecretUnavailable(f"environment variable {self.name} is not set")
            return value
        path = Path(self.name)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretUnavailable(f"secret file {path} cannot be read ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise SecretUnavailable(f"secret file {path} is not UTF-8 text") from None
        except ValueError:  # e.g. a NUL in the path
            raise SecretUnavailable("secret file path is not a valid path") from None


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
