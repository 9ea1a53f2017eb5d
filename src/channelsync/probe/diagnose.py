"""Failures -> a stable code, the server's own words (scrubbed of secrets) and a hint.

The message is the product: an admin reading one line should know what broke and what to do.
Codes are part of the JSON output and must not change; ``CODES`` is the complete list.
"""

from __future__ import annotations

import base64
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
        return (
            "the certificate is not signed by a trusted CA; for a private CA set tls.ca_file "
            "(relative to the YAML file) or SSL_CERT_FILE"
        )
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
    return f"the server at {where} did not answer as a {check.protocol} server should"


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` without any secret, in any form a server might echo it back.

    Each secret is matched ignoring case (servers upper-case what they echo), plain, escaped
    as an IMAP quoted string, a JSON string or a URL, and in base64 (the SASL payloads are
    secrets of their own: ``Attempt.sasl``). The longest form wins where forms overlap.
    """
    forms = {form for secret in secrets if secret for form in _forms(secret)}
    if not forms:
        return text
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.sub(alternatives, "***", text, flags=re.IGNORECASE)


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
    }
    encoded = base64.b64encode(secret.encode()).decode().rstrip("=")
    if len(encoded) > 8:  # a short one could match any word
        forms.add(encoded)
    return forms


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
    reply = _reply_of(exc)
    from channelsync.notices import for_failed_check

    notice = for_failed_check(reply, check)
    if notice is not None:
        return notice.code, reply, notice.quote()
    for fragment, code, vendor_hint in _VENDOR_REPLIES:
        if fragment in reply.lower():
            return code, reply, vendor_hint
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
