"""Failures -> a stable code, the server's own words (scrubbed of secrets) and a hint.

The message is the product: an admin reading one line should know what broke and what to do.
Codes are part of the JSON output and must not change; ``CODES`` is the complete list.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import ssl
from typing import Any

from channelsync.probe.check import Attempt, Check, Diagnosis, ProbeFailure, ServerRefusal

CODES = (
    "dns",
    "refused",
    "timeout",
    "wrong_protocol",
    "tls_handshake",
    "cert_untrusted",
    "cert_hostname",
    "cert_expired",
    "starttls_unavailable",
    "insecure_auth_refused",
    "auth_failed",
    "app_password_required",
    "basic_auth_disabled",
    "oauth_token",
    "mailbox",
    "protocol_error",
    "secret_unavailable",
    "secret_not_bound",
)

GMAIL_APP_PASSWORDS = "https://myaccount.google.com/apppasswords"
IMPLICIT_TLS_PORTS = {993: "imap-ssl", 995: "pop3-ssl", 465: "security: ssl"}

# OpenSSL verify codes (X509_V_ERR_*)
_EXPIRED = {10}
_HOSTNAME = {62, 64}
_UNTRUSTED = {2, 18, 19, 20, 21, 27}

# (fragment of the server's reply, code, hint); the first match wins.
_VENDOR_REPLIES = (
    (
        "application-specific password required",
        "app_password_required",
        "Google needs an App password for mail clients when 2-step verification is on: "
        f"create one at {GMAIL_APP_PASSWORDS} and store it in the secret",
    ),
    (
        "invalidsecondfactor",
        "app_password_required",
        f"create an App password at {GMAIL_APP_PASSWORDS} and store it in the secret",
    ),
    (
        "smtpclientauthentication is disabled",
        "basic_auth_disabled",
        "SMTP AUTH is switched off for the tenant or mailbox; enable authenticated SMTP for "
        "this mailbox in Exchange admin (Set-CASMailbox -SmtpClientAuthenticationDisabled "
        "$false), or send through another server",
    ),
    (
        "basic authentication is disabled",
        "basic_auth_disabled",
        "Exchange Online refuses passwords; use auth: microsoft-exchange with an app "
        "registration (incoming.oauth)",
    ),
    (
        "5.7.139",
        "basic_auth_disabled",
        "Exchange Online refuses password sign-in here; see https://aka.ms/smtp_auth_disabled",
    ),
    (
        "user is authenticated but not connected",
        "mailbox",
        "the token was accepted but the app may not open this mailbox: register the app's "
        "service principal in Exchange (New-ServicePrincipal) and grant it FullAccess on the "
        "mailbox (Add-MailboxPermission)",
    ),
    (
        "please log in via your web browser",
        "auth_failed",
        "Google blocked the sign-in: sign in once in a browser from this network, then use "
        f"an App password ({GMAIL_APP_PASSWORDS})",
    ),
    (
        "imap access is disabled for your domain",
        "auth_failed",
        "a Google Workspace admin must enable IMAP for the domain (Admin console > Gmail > "
        "End user access)",
    ),
    (
        "temporary authentication failure",
        "auth_failed",
        "the server could not check the credentials just now (its password or token backend "
        "is down); try again later",
    ),
)


def hint(code: str, check: Check) -> str:
    where = f"{check.host}:{check.port}"
    if code == "dns":
        return f"'{check.host}' does not resolve from here; check the server name and DNS"
    if code == "refused":
        return f"nothing accepts connections on {where}; check the port and the protocol"
    if code == "timeout":
        return (
            f"{where} did not answer in time; a firewall may drop the traffic, the server may "
            "be overloaded, or the port may expect TLS from the first byte"
        )
    if code == "wrong_protocol":
        if check.implicit_tls:
            return (
                f"{where} speaks plain text, not TLS; use the protocol without -ssl "
                "(with STARTTLS) or the TLS port"
            )
        return f"{where} expects TLS from the first byte; use the -ssl protocol (or security: ssl)"
    if code == "tls_handshake":
        return (
            "the TLS handshake failed; the server may only support TLS versions or ciphers "
            "that are no longer considered safe (TLS 1.2 is the minimum)"
        )
    if code == "cert_untrusted":
        from channelsync.probe.tls import trust_of
        from channelsync.trust import untrusted_hint

        return untrusted_hint(trust_of(check))
    if code == "cert_hostname":
        return f"the certificate is not valid for '{check.host}'; use the host name it names"
    if code == "cert_expired":
        return "the server's certificate has expired; the mail provider must renew it"
    if code == "starttls_unavailable":
        return (
            "the server does not offer STARTTLS on this port; use security: ssl (port 465) or "
            "ask the provider to enable STARTTLS"
        )
    if code == "insecure_auth_refused":
        return (
            f"the password would be sent in clear text; use {check.protocol}-ssl, or set "
            "incoming.allow_insecure_auth: true to accept the risk"
        )
    if code == "auth_failed":
        if check.oauth is not None:
            return (
                "the server refused the token: check that the app has IMAP.AccessAsApp / "
                "POP.AccessAsApp with admin consent and that incoming.user is the mailbox"
            )
        return "check the user name and the password the secret reference points to"
    if code == "oauth_token":
        return "check tenant_id, client_id and the client secret of the app registration"
    if code == "mailbox":
        return "logged in, but the mailbox cannot be opened; check the account's mailbox rights"
    if code == "secret_unavailable":
        return "set the environment variable or create the file where channelsync runs"
    return f"the server at {where} did not answer as {_a(family(check.protocol))} server should"


def family(protocol: str) -> str:
    """imap-ssl -> IMAP, pop3 -> POP3, smtp-starttls -> SMTP."""
    return protocol.split("-")[0].upper()


def _a(name: str) -> str:
    return f"an {name}" if name[:1] in "AEIOU" else f"a {name}"


# what a server says first, by protocol; HTTP and TLS only answer, so they show up as replies
_GREETINGS = (
    (re.compile(r"\* (OK|PREAUTH|BYE)\b", re.I), "IMAP"),
    (re.compile(r"(\+OK|-ERR)\b", re.I), "POP3"),
    (re.compile(r"\d{3}([ -]|$)"), "SMTP"),
    (re.compile(r"HTTP/\d"), "HTTP"),
    (re.compile(r"\x16\x03"), "TLS"),
)
_PORTS = {
    "IMAP": "IMAP uses 143, or 993 with imap-ssl",
    "POP3": "POP3 uses 110, or 995 with pop3-ssl",
    "SMTP": "SMTP uses 587 with security: starttls, or 465 with security: ssl",
}


def speaks(greeting: str) -> str | None:
    """The protocol a server's first words belong to, when they are recognisable."""
    return next((name for pattern, name in _GREETINGS if pattern.match(greeting)), None)


def _other_protocol(greeting: str, check: Check) -> tuple[str, str, str | None] | None:
    found, wanted = speaks(greeting), family(check.protocol)
    if found is None or found == wanted:
        return None
    return (
        "wrong_protocol",
        f"{check.host}:{check.port} answered as {_a(found)} server: {greeting}",
        f"this port speaks {found}, not {wanted}; check the port ({_PORTS[wanted]})",
    )


def _greeting_of(exc: BaseException) -> str:
    """The server's first line from imaplib's, poplib's or our own greeting error."""
    import ast

    raw: Any = exc.reply if isinstance(exc, ServerRefusal) else (exc.args[0] if exc.args else "")
    prefix = "unexpected response: "  # imaplib quotes the line it did not understand
    if isinstance(raw, str) and raw.startswith(prefix):
        with contextlib.suppress(ValueError, SyntaxError):
            raw = ast.literal_eval(raw[len(prefix) :])
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return words(str(raw))[:200]


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` without any secret, in any form a server might echo it back.

    Two passes close the class rather than a list of cases. First every known form of each
    secret is cut out wherever it stands, ignoring case (servers upper-case what they echo):
    plain, escaped as an IMAP quoted string or a JSON string, URL- and percent-encoded,
    ``\\u``-escaped, hex, and base64/base64url at each of the three byte alignments, so that a
    secret inside a longer blob (``\\0user\\0password``) is found too. Then every
    whitespace-separated token that still decodes (base64 at any offset, hex, percent, escapes;
    nested a few levels) to a string containing a secret is replaced whole, and so are the
    words of base64 wrapped over lines. What is left is bounded to ``_MAX_SHOWN`` characters.
    """
    needles = [secret for secret in secrets if secret]
    if not needles:
        return _bounded(text)
    plain: set[str] = set()
    encoded: set[str] = set()
    for secret in needles:
        plain |= _forms(secret)
        encoded |= _encoded_forms(secret)
    long = {form for form in encoded if len(form) >= _MIN_ENCODED}
    if long:
        text = _cut_blobs(text, _alternatives(long))
    text = _bounded(_alternatives(plain).sub("***", text))
    # a short secret's encoded forms only count inside a token, never as a part of a word
    folded = [form.casefold() for form in {*needles, *encoded} if len(form) >= _MIN_SHORT]
    folded += [secret.casefold() for secret in needles if len(secret) < _MIN_SHORT]
    pieces = re.split(r"(\s+)", text)  # words at the even places, spaces between
    words = ["***" if word and _reveals(word, folded) else word for word in pieces[0::2]]
    pieces[0::2] = _join_wrapped(words, folded)
    return "".join(pieces)


# Once the credentials are sent (the auth stage and after) the server holds them and may echo
# any part of them, in any encoding, over any number of lines. Its reply is then shown only as
# the words that neither contain nor decode to PART_OF_SECRET consecutive characters of a
# secret (the whole secret when it is shorter), alone or joined with the words next to them
# (a secret split over words or continuation lines). 5 characters: a partial echo (all but the
# last few) is caught, while few ordinary reply words hold 5 characters of a password.
PART_OF_SECRET = 5
_AFTER_LOGIN = frozenset({"auth", "mailbox", "send", "search", "cleanup"})
# continuation prefixes and status codes ("*", "+", "535-", "535", "5.7.8"): kept, and skipped
# when words are joined, so that a secret split over two reply lines is seen whole
_MARKER = re.compile(r"[*+]|\d{3}-?|(\d{3}[- ])?[245]\.\d{1,3}\.\d{1,3}")
_JOIN_WORDS = PART_OF_SECRET  # one encoded character a word (hex bytes, entities) is found too
_JOIN_CHARS = 96


def _parts(secret: str) -> set[str]:
    folded = secret.casefold()
    size = min(len(folded), PART_OF_SECRET)
    return {folded[i : i + size] for i in range(len(folded) - size + 1)}


def _spanned(words: list[str], content: list[int], parts: list[str]) -> set[int]:
    """The words that share in a part of a secret written out over several words."""
    folded = [words[i].casefold() for i in content]
    joined = "".join(folded)
    starts = [0]
    for word in folded:
        starts.append(starts[-1] + len(word))
    found: set[int] = set()
    for part in parts:
        at = joined.find(part)
        while at >= 0:
            end = at + len(part)
            found.update(
                content[n] for n in range(len(folded)) if starts[n] < end and starts[n + 1] > at
            )
            at = joined.find(part, at + 1)
    return found


def without_secret_parts(text: str, secrets: list[str]) -> str:
    """``text`` (a server's reply after login) with every word cut that holds, or decodes to,
    a part of a secret, alone or joined with its neighbours; status codes stay."""
    parts = sorted({part for secret in secrets if secret for part in _parts(secret)})
    if not parts:
        return text
    pieces = re.split(r"(\s+)", _bounded(text))  # words at the even places, spaces between
    words = pieces[0::2]
    content = [i for i, word in enumerate(words) if word and not _MARKER.fullmatch(word)]
    alone = {i: _revealed(words[i], parts) for i in content}
    cut = {i for i, found in alone.items() if found} | _spanned(words, content, parts)

    def together(low: int, high: int) -> set[str]:
        """The parts that only words ``low..high`` (of content) joined hold."""
        span = content[low : high + 1]
        joined = "".join(words[k] for k in span)
        if len(joined) > _JOIN_CHARS:
            return set()
        return _revealed(joined, parts) - set().union(*(alone[k] for k in span))

    for start in range(len(content)):
        for end in range(start + 1, min(start + _JOIN_WORDS, len(content))):
            if together(start, end):
                low = start  # the fewest words that still hold it
                while low < end - 1 and together(low + 1, end):
                    low += 1
                cut.update(content[low : end + 1])
                break
    pieces[0::2] = ["***" if i in cut else word for i, word in enumerate(words)]
    return "".join(pieces)


def _join_wrapped(words: list[str], folded: list[str]) -> list[str]:
    """Base64 wrapped over lines (MIME wraps at 76) comes back as several words: each run of
    base64-only words is checked joined, and the words that make up a secret are cut."""
    words = list(words)
    start = 0
    while start < len(words):
        end = start
        while end < len(words) and _B64_WORD.fullmatch(words[end]):
            end += 1
        if end - start > 1 and _reveals("".join(words[start:end]), folded, limit=_MAX_SHOWN):
            low, high = start, end
            while high - low > 1 and _reveals("".join(words[low + 1 : high]), folded):
                low += 1
            while high - low > 1 and _reveals("".join(words[low : high - 1]), folded):
                high -= 1
            words[low:high] = ["***"] * (high - low)
        start = end + 1
    return words


def _bounded(text: str) -> str:
    """At most ``_MAX_SHOWN`` characters, cut between words so that no token is left half
    (a half blob would escape the token check); the cut is marked."""
    if len(text) <= _MAX_SHOWN:
        return text
    cut = max(text.rfind(" ", 0, _MAX_SHOWN + 1), 0)
    return f"{text[:cut]} [...]".lstrip()


def _alternatives(forms: set[str]) -> re.Pattern[str]:
    """One pattern for all ``forms``, ignoring case; the longest form wins where they overlap."""
    ordered = sorted(forms, key=len, reverse=True)
    return re.compile("|".join(re.escape(f) for f in ordered), re.IGNORECASE)


def _cut_blobs(text: str, pattern: re.Pattern[str]) -> str:
    """Each match replaced together with the rest of its base64/hex run: no leftover bits."""
    pieces: list[str] = []
    pos = 0
    while (found := pattern.search(text, pos)) is not None:
        start, end = found.span()
        while start > pos and text[start - 1] in _B64_CHARS:
            start -= 1
        while end < len(text) and (text[end] in _B64_CHARS or text[end] == "="):
            end += 1
        pieces += [text[pos:start], "***"]
        pos = end
    return "".join(pieces) + text[pos:]


_MIN_ENCODED = 6  # a shorter encoded form could match an ordinary word
_MIN_SHORT = 3
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{4,}")
_B64_WORD = re.compile(r"[A-Za-z0-9+/_-]+=*")
_MAX_SHOWN = 2000  # characters of a reply kept in a diagnosis
_MAX_TOKEN = 1024  # a longer token is not worth the decoding: it is cut whole
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{4,}")
_MAX_DECODED = 64  # candidates per token: decoding stays bounded on hostile replies
_MAX_RUNS = 3


def _forms(secret: str) -> set[str]:
    import json
    import urllib.parse

    forms = {
        secret,
        secret.replace("\\", "\\\\").replace('"', '\\"'),  # IMAP quoted string (RFC 3501)
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret, safe=""),
        "".join(f"%{byte:02x}" for byte in secret.encode()),
        "".join(f"\\u{ord(char):04x}" for char in secret),
    }
    return forms


def _encoded_forms(secret: str) -> set[str]:
    """Hex and base64 forms: each is cut with the rest of the blob around it."""
    raw = secret.encode()
    encoded = {raw.hex()}
    for shift in range(3):
        core = _base64_core(raw, shift)
        encoded |= {core, core.replace("+", "-").replace("/", "_")}
    return encoded


def _base64_core(raw: bytes, shift: int) -> str:
    """The base64 characters that depend only on ``raw`` when it starts ``shift`` bytes into a
    3-byte group: the same characters appear in any blob that holds ``raw`` at that offset."""
    encoded = base64.b64encode(bytes(shift) + raw).decode().rstrip("=")
    lead = (0, 2, 3)[shift]
    tail = 0 if (shift + len(raw)) % 3 == 0 else 1
    return encoded[lead : len(encoded) - tail]


def _reveals(token: str, folded: list[str], limit: int = _MAX_TOKEN) -> bool:
    """Whether ``token``, or something it decodes to, contains one of the (casefolded) secrets;
    a token longer than ``limit`` counts as one."""
    return bool(_revealed(token, folded, limit, first=True))


def _revealed(
    token: str, folded: list[str], limit: int = _MAX_TOKEN, *, first: bool = False
) -> set[str]:
    """Which of ``folded`` ``token`` or what it decodes to contains (``first``: stop at one)."""
    from collections import deque

    if len(token) > limit:
        return set(folded)
    found: set[str] = set()
    seen: set[str] = set()
    pending = deque([token])
    while pending and len(seen) < _MAX_DECODED:
        candidate = pending.popleft()
        if candidate in seen:
            continue
        seen.add(candidate)
        lowered = candidate.casefold()
        found.update(secret for secret in folded if secret in lowered)
        if first and found:
            return found
        pending.extend(_decodings(candidate))
    return found


def _decodings(text: str) -> list[str]:
    """What ``text`` may be an encoding of: unescaped first, then the longest base64/hex runs."""
    import binascii
    import html
    import urllib.parse

    decoded: list[str] = []
    if "\\" in text:
        decoded.append(_ESCAPE.sub(_unescape, text))
    if "%" in text or "+" in text:
        decoded.append(urllib.parse.unquote_plus(text))
    if "&" in text:
        decoded.append(html.unescape(text))
    if _SEPARATORS.search(text):  # 54:72:30, 54-72-30, 54,72,30
        decoded.append(_SEPARATORS.sub("", text))
    found: list[bytes] = []
    for run in sorted(_B32_RUN.findall(text.upper()), key=len, reverse=True)[:_MAX_RUNS]:
        for offset in range(8):
            chunk = run.rstrip("=")[offset:]
            chunk = chunk[: len(chunk) - len(chunk) % 8] if len(chunk) % 8 in (1, 3, 6) else chunk
            with contextlib.suppress(binascii.Error, ValueError):
                found.append(base64.b32decode(chunk + "=" * (-len(chunk) % 8)))
    for run in sorted(_B64_RUN.findall(text), key=len, reverse=True)[:_MAX_RUNS]:
        standard = run.replace("-", "+").replace("_", "/")
        for offset in range(4):
            chunk = standard[offset:]
            chunk = chunk[: len(chunk) - 1] if len(chunk) % 4 == 1 else chunk
            chunk += "=" * (-len(chunk) % 4)  # a run ends where its padding was cut off
            if chunk:
                with contextlib.suppress(binascii.Error, ValueError):
                    found.append(base64.b64decode(chunk))
    for run in sorted(_HEX_RUN.findall(text), key=len, reverse=True)[:_MAX_RUNS]:
        for offset in range(2):
            chunk = run[offset:]
            found.append(bytes.fromhex(chunk[: len(chunk) - len(chunk) % 2]))
    decoded += [raw.decode("utf-8", "replace") for raw in found]
    decoded += [raw.decode("latin-1") for raw in found if not raw.isascii()]
    for raw in (raw for raw in found if b"\0" in raw):  # UTF-16, either byte order
        decoded.append(raw.replace(b"\0", b"").decode("utf-8", "replace"))
        decoded += [raw[i:].decode(f"utf-16-{e}", "replace") for i in (0, 1) for e in ("le", "be")]
    return [item for item in decoded if item and item != text]


_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|x([0-9A-Fa-f]{2})|([0-7]{1,3})|(.))", re.S)
_SEPARATORS = re.compile(r"[:,-]")
_B32_RUN = re.compile(r"[A-Z2-7]{8,}=*")


def _unescape(found: re.Match[str]) -> str:
    """JSON, Python (also octal) and IMAP-quoted backslash escapes, any case."""
    code = found.group(1) or found.group(2)
    if code:
        return chr(int(code, 16))
    return chr(int(found.group(3), 8)) if found.group(3) else found.group(4)


def words(raw: Any) -> str:
    """A server reply or library error as one readable line."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, list | tuple):
        raw = " ".join(words(part) for part in raw)
    text = str(raw).replace("\r", "")
    return " ".join(line.strip() for line in text.split("\n") if line.strip())


def diagnose(exc: BaseException, attempt: Attempt) -> Diagnosis:
    code, message, given_hint = _classify(exc, attempt)
    check = attempt.check
    text = scrub(message, attempt.secrets)
    return Diagnosis(code, text, scrub(given_hint or hint(code, check), attempt.secrets))


def _classify(exc: BaseException, attempt: Attempt) -> tuple[str, str, str | None]:
    import smtplib

    if isinstance(exc, ProbeFailure):
        return exc.code, exc.message, exc.hint
    check = attempt.check
    exc = _underlying(exc)
    if isinstance(exc, socket.gaierror):
        return "dns", f"cannot resolve '{check.host}': {exc.strerror}", None
    if isinstance(exc, ConnectionRefusedError):
        return "refused", f"connection to {check.host}:{check.port} refused", None
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate(exc)
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").lower()
        text = exc.reason or words(exc.strerror or exc)
        if attempt.stage == "tls" and ("wrong_version" in reason or "record_layer" in reason):
            return "wrong_protocol", f"TLS handshake got a plain-text answer ({text})", None
        return "tls_handshake", f"TLS handshake failed ({text})", None
    if isinstance(exc, TimeoutError | socket.timeout):
        return _timeout(attempt)
    if isinstance(exc, ConnectionError | EOFError | smtplib.SMTPServerDisconnected):
        if attempt.stage == "tls":
            return "tls_handshake", "the server closed the connection during the handshake", None
        return "protocol_error", f"the server closed the connection ({attempt.stage})", None
    if isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException):
        return "protocol_error", f"network error: {exc.strerror or exc}", None
    if attempt.stage == "greeting":
        other = _other_protocol(_greeting_of(exc), check)
        if other is not None:
            return other
    said = _reply_of(exc)  # matched as the server said it, shown without the secret's parts
    reply = without_secret_parts(said, attempt.secrets) if attempt.stage in _AFTER_LOGIN else said
    from channelsync.notices import for_failed_check

    notice = for_failed_check(said, check)
    if notice is not None:
        return notice.code, reply, notice.quote()
    for fragment, code, vendor_hint in _VENDOR_REPLIES:
        if fragment in said.lower():
            return code, reply, vendor_hint
    import imaplib

    if isinstance(exc, imaplib.IMAP4.abort):  # the server broke the protocol, or a read bound
        return "protocol_error", reply or type(exc).__name__, None
    if attempt.stage == "auth":
        return "auth_failed", reply, None
    if attempt.stage == "mailbox":
        return "mailbox", reply, None
    if attempt.stage == "starttls":
        return "starttls_unavailable", reply, None
    return "protocol_error", reply or type(exc).__name__, None


def _underlying(exc: BaseException) -> BaseException:
    """The network error that imaplib and smtplib wrap in their own exceptions."""
    import imaplib
    import smtplib

    wrapped = isinstance(exc, imaplib.IMAP4.abort | smtplib.SMTPServerDisconnected)
    if wrapped and isinstance(exc.__context__, OSError):
        return exc.__context__
    return exc


def _certificate(exc: ssl.SSLCertVerificationError) -> tuple[str, str, str | None]:
    detail = exc.verify_message or exc.reason or "certificate verify failed"
    if exc.verify_code in _EXPIRED or "expired" in detail:
        return "cert_expired", f"certificate verify failed: {detail}", None
    if exc.verify_code in _HOSTNAME or "hostname" in detail.lower():
        return "cert_hostname", f"certificate verify failed: {detail}", None
    return "cert_untrusted", f"certificate verify failed: {detail}", None


def _timeout(attempt: Attempt) -> tuple[str, str, str | None]:
    check = attempt.check
    after = {
        "dns": "resolving the name",
        "connect": "connecting",
        "tls": "the TLS handshake",
        "greeting": "waiting for the greeting",
    }.get(attempt.stage, f"during {attempt.stage}")
    message = f"no answer within {attempt.timeout:g} s ({after})"
    wanted = IMPLICIT_TLS_PORTS.get(check.port)
    if attempt.stage == "greeting" and not check.implicit_tls and wanted:
        return (
            "wrong_protocol",
            message,
            f"port {check.port} usually expects TLS from the first byte; use {wanted}",
        )
    return "timeout", message, None


def _reply_of(exc: BaseException) -> str:
    import smtplib

    if isinstance(exc, ServerRefusal):
        return words(exc.reply)
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {words(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return words([f"{code} {words(text)}" for code, text in exc.recipients.values()])
    if exc.args:
        return words(exc.args[0] if len(exc.args) == 1 else list(exc.args))
    return type(exc).__name__
