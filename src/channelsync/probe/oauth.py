"""App-only (client-credentials) tokens for Exchange Online, and the SASL XOAUTH2 string.

msal talks to ``{authority}/{tenant_id}``; instance discovery (a call to
login.microsoftonline.com) is off so that a private or loopback authority works too. The
token endpoint is trusted as every other connection of the check (``channelsync.trust``):
msal's requests session is ours, so that ``REQUESTS_CA_BUNDLE`` cannot override it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from channelsync.probe.check import Attempt, OAuthSettings, ProbeFailure
from channelsync.probe.tls import trust_of
from channelsync.trust import Trust, cert_error, untrusted_hint

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
    trust = trust_of(attempt.check)
    attempt.step("token")
    try:
        app = msal.ConfidentialClientApplication(
            settings.client_id,
            client_credential=secret,
            authority=authority,
            instance_discovery=False,
            http_client=_session(trust.path(), attempt.remaining()),
        )
        result: dict[str, Any] = app.acquire_token_for_client(scopes=[settings.scope])
    except ValueError as exc:  # msal's way of saying the authority's discovery failed
        raise _failure_from_text(f"{exc} {exc.__context__ or ''}", authority) from None
    except Exception as exc:
        raise _unreachable(exc, authority, trust) from None
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


def _unreachable(exc: Exception, authority: str, trust: Trust) -> ProbeFailure:
    untrusted = cert_error(exc)
    if untrusted is not None:
        detail = untrusted.verify_message or untrusted.reason or "certificate verify failed"
        return ProbeFailure(
            "cert_untrusted",
            f"certificate of the token endpoint {authority} not trusted ({detail})",
            untrusted_hint(trust),
        )
    detail = " ".join(str(exc).split())[:300]
    return ProbeFailure(
        "oauth_token",
        f"token endpoint at {authority} unreachable ({type(exc).__name__}: {detail})",
        f"check incoming.oauth.authority and the network path to it (trust: {trust.setting})",
    )


def _session(ca: str, timeout: float) -> Any:
    """A requests session for msal that verifies with ``ca`` whatever the environment says.

    requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a session's ``verify``;
    here the session's own value always wins (proxy settings still come from the
    environment). The adapter retries once, as msal's own session does.
    """
    import requests

    class Session(requests.Session):
        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            settings: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
            settings["verify"] = self.verify
            return settings

        def request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout)
            return super().request(*args, **kwargs)

    session = Session()
    session.verify = ca
    session.mount("https://", requests.adapters.HTTPAdapter(max_retries=1))
    return session
