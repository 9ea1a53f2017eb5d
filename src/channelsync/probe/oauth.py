"""App-only (client-credentials) tokens for Exchange Online, and the SASL XOAUTH2 string.

msal talks to ``{authority}/{tenant_id}``; instance discovery (a call to
login.microsoftonline.com) is off so that a private or loopback authority works too. The
token endpoint is trusted through the system store, ``SSL_CERT_FILE`` or ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from channelsync.probe.check import Attempt, OAuthSettings, ProbeFailure

_OAUTH_HINTS = {
    "invalid_client": "the client secret is wrong or expired, or client_id is not this app's; "
    "create a new secret in the app registration (Certificates & secrets)",
    "unauthorized_client": "the app is not allowed this flow; check the app registration's "
    "platform settings and admin consent",
    "invalid_tenant": "tenant_id is not a known directory; copy the Directory (tenant) ID from "
    "Entra ID",
    "invalid_scope": "the scope is not valid for this app; use "
    "https://outlook.office365.com/.default",
    "invalid_request": "the identity provider rejected the request; check tenant_id and client_id",
}


def xoauth2(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (not yet base64)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def acquire_token(attempt: Attempt, settings: OAuthSettings, secret: str) -> str:
    """An access token, or ProbeFailure('oauth_token') with the identity provider's error."""
    import msal  # type: ignore[import-untyped]

    authority = f"{settings.authority.rstrip('/')}/{settings.tenant_id}"
    verify: bool | str = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE", "")
    attempt.step("token")
    try:
        app = msal.ConfidentialClientApplication(
            settings.client_id,
            client_credential=secret,
            authority=authority,
            instance_discovery=False,
            verify=verify or True,
            timeout=attempt.remaining(),
        )
        result: dict[str, Any] = app.acquire_token_for_client(scopes=[settings.scope])
    except ValueError as exc:  # msal's way of saying the authority's discovery failed
        raise _failure_from_text(f"{exc} {exc.__context__ or ''}", authority) from None
    except Exception as exc:
        raise _unreachable(exc, authority) from None
    token = result.get("access_token")
    if isinstance(token, str) and token:
        return attempt.secret(token)
    raise _failure(result.get("error"), result.get("error_description"), authority)


def _failure(error: Any, description: Any, authority: str) -> ProbeFailure:
    error = str(error or "unknown_error")
    detail = str(description or "").strip().splitlines()
    message = f"token request to {authority} refused: {error}"
    if detail:
        message += f" ({detail[0].strip()})"
    hint = _OAUTH_HINTS.get(error, "check tenant_id, client_id and the client secret")
    return ProbeFailure("oauth_token", message, hint)


def _failure_from_text(text: str, authority: str) -> ProbeFailure:
    """msal reports a failed tenant discovery as text that embeds the provider's JSON."""
    match = re.search(r"\{.*\}", text, re.S)
    if match:
        try:
            body = json.loads(match.group(0))
        except ValueError:
            body = None
        if isinstance(body, dict) and "error" in body:
            return _failure(body["error"], body.get("error_description"), authority)
    return ProbeFailure(
        "oauth_token",
        f"the identity provider at {authority} has no usable OpenID configuration",
        "check incoming.oauth.authority and tenant_id",
    )


def _unreachable(exc: Exception, authority: str) -> ProbeFailure:
    detail = " ".join(str(exc).split())[:300]
    return ProbeFailure(
        "oauth_token",
        f"token endpoint at {authority} unreachable ({type(exc).__name__}: {detail})",
        "check incoming.oauth.authority, the network path to it, and that its certificate "
        "is trusted (SSL_CERT_FILE)",
    )
