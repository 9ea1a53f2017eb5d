"""Which CAs a TLS connection trusts: one order for every connection channelsync makes.

The resource's ``tls.ca_file`` (relative to its YAML file), else ``SSL_CERT_FILE``, else the
system store; the first one set is the only one used. IMAP, POP3, SMTP, the OAuth token
endpoint and the ``https://`` target all ask here, so ``REQUESTS_CA_BUNDLE`` or
``CURL_CA_BUNDLE`` (which requests, and so msal, would otherwise prefer) never silently win.
``setting`` names what was in force, for the hint of a certificate failure.
"""

from __future__ import annotations

import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from channelsync.errors import TrustUnavailable as TrustUnavailable

SYSTEM_STORE = "the system store"

_contexts: dict[Path | None, ssl.SSLContext] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Trust:
    setting: str  # "tls.ca_file certs/ca.pem", "SSL_CERT_FILE=/x" or "the system store"
    cafile: Path | None  # None: the system store

    def context(self) -> ssl.SSLContext:
        """A verifying client context (TLS 1.2 at least), cached: a run opens hundreds."""
        with _lock:
            ctx = _contexts.get(self.cafile)
            if ctx is None:
                try:
                    ctx = ssl.create_default_context(
                        cafile=str(self.cafile) if self.cafile else None
                    )
                except (OSError, ssl.SSLError) as exc:
                    reason: str | None = exc.strerror
                    if isinstance(exc, ssl.SSLError):
                        reason = (exc.reason or "").lower().replace("_", " ")
                    raise TrustUnavailable(
                        f"cannot load the CA certificates of {self.setting} "
                        f"({reason or exc}); fix the path or the file"
                    ) from None
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                _contexts[self.cafile] = ctx
            return ctx

    def path(self) -> str:
        """The CA file (or folder) for libraries that take a path, such as requests."""
        if self.cafile is not None:
            return str(self.cafile)
        paths = ssl.get_default_verify_paths()
        if paths.cafile and os.path.isfile(paths.cafile):
            return paths.cafile
        return paths.capath or paths.openssl_capath


def trust_for(ca_file: str | None = None, base_dir: Path | None = None) -> Trust:
    if ca_file:
        path = Path(ca_file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return Trust(f"tls.ca_file {ca_file}", path)
    env = os.environ.get("SSL_CERT_FILE")
    if env:
        return Trust(f"SSL_CERT_FILE={env}", Path(env))
    return Trust(SYSTEM_STORE, None)


def untrusted_hint(trust: Trust) -> str:
    """What to do about a certificate that ``trust`` does not accept."""
    if trust.cafile is None:
        return (
            f"the certificate is not signed by a CA in {trust.setting}; for a private CA set "
            "tls.ca_file (relative to the YAML file) or SSL_CERT_FILE"
        )
    return (
        f"the certificate is not signed by a CA in {trust.setting} (the only CAs trusted "
        "here); put the CA that signed it in that file, or set tls.ca_file "
        "(relative to the YAML file) or SSL_CERT_FILE"
    )


def unreadable_hint(trust: Trust) -> str:
    """What to do about CA certificates of ``trust`` that cannot be loaded: the setting in
    force is the one to fix."""
    if trust.setting.startswith("SSL_CERT_FILE="):
        return (
            "SSL_CERT_FILE must name a file of PEM certificates; fix it, or unset it to "
            f"trust {SYSTEM_STORE}"
        )
    if trust.cafile is None:
        return "set SSL_CERT_FILE (or tls.ca_file) to a file of PEM certificates"
    return "tls.ca_file is relative to the YAML file and must hold PEM certificates"


def cert_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate failure behind ``exc``, however deep an HTTP library wrapped it."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += [a for a in current.args if isinstance(a, BaseException)]
    return None
