"""Dated provider notices: `validate` warns before and after each date, the tests quote them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from channelsync import notices
from channelsync.probe.check import Attempt, Check, ServerRefusal
from channelsync.probe.diagnose import CODES, diagnose

EXCHANGE_OAUTH = {
    "auth": "microsoft-exchange",
    "oauth": {
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "7c1e5a92-3d48-4b0f-a6e7-51f9c2d8b340",
        "client_secret": "${env:S}",
    },
}


def _channel(server: str, **incoming: Any) -> dict[str, Any]:
    return {
        "kind": "EmailChannel",
        "name": f"On {server}",
        "email": "help@contoso.example",
        "incoming": {
            "server": server,
            "protocol": "imap-ssl",
            "user": "help@contoso.example",
            **(incoming or {"password": "${env:P}"}),
        },
    }


SMTP_OFFICE365 = {
    "kind": "SmtpServer",
    "name": "Office 365",
    "host": "smtp.office365.com",
    "user": "help@contoso.example",
    "password": "${env:P}",
}
# a resource each notice applies to
RESOURCES = {
    "exchange-online-smtp-auth-basic": SMTP_OFFICE365,
    "exchange-online-pop-imap-legacy-tls": _channel("outlook.office365.com", **EXCHANGE_OAUTH),
    "exchange-online-pop-imap-basic": _channel("outlook.office365.com"),
    "google-app-passwords-only": _channel("imap.gmail.com"),
}


def _validate(workdir: Path, cli: Any, doc: dict[str, Any], *args: str) -> list[str]:
    (workdir / "channels.d" / "c.yaml").write_text(json.dumps(doc), encoding="utf-8")
    result = cli("validate", *args)
    assert result.code == 0, result.out + result.err
    return [line for line in result.out.splitlines() if ": warning: " in line]


def test_every_notice_has_its_fields_a_known_code_and_a_resource_in_these_tests() -> None:
    loaded = notices.load()
    assert {n.id for n in loaded} == set(RESOURCES)
    for notice in loaded:
        assert notice.code in CODES
        assert notice.source.startswith("https://")
        assert notice.check in ("incoming", "outgoing", "any")
        assert notice.auth in ("password", "oauth", "any")


@pytest.mark.parametrize("notice", notices.load(), ids=lambda n: n.id)
def test_notice_is_announced_before_its_date_and_in_force_from_it(
    notice: notices.Notice, workdir: Path, cli: Any
) -> None:
    doc = RESOURCES[notice.id]
    day = notice.effective.isoformat()
    before = notice.effective - dt.timedelta(days=30)
    mine = f"{notice.provider}, "
    ahead = _validate(workdir, cli, doc, "--as-of", before.isoformat())
    assert [w for w in ahead if f"from {day} (in 30 days): {notice.change};" in w]
    assert not [w for w in ahead if f"{mine}since {day}:" in w]
    on_the_day = _validate(workdir, cli, doc, "--as-of", day)
    assert [w for w in on_the_day if f"{mine}since {day}: {notice.change};" in w]


def test_smtp_basic_auth_notice_exact_words_before_and_after_the_end_of_2026(
    workdir: Path, cli: Any
) -> None:
    change = (
        "Basic authentication (a password) for SMTP AUTH client submission is off by default "
        "for existing tenants and unavailable for new ones; admins can re-enable it, and the "
        "final removal date is to be announced in the second half of 2027; the contact centre "
        "cannot send with OAuth2: send through another SMTP server, or have the Exchange admin "
        "re-enable SMTP AUTH basic authentication for the tenant until the final removal "
        "(servers answer '550 5.7.30 Basic authentication is not supported for Client "
        "Submission.'; https://admin.microsoft.com/AdminPortal/home#/MessageCenter/:/messages/"
        "MC786329)"
    )
    assert _validate(workdir, cli, SMTP_OFFICE365, "--as-of", "2026-12-01") == [
        "channels.d/c.yaml:1:54: warning: Exchange Online, from 2026-12-31 (in 30 days): " + change
    ]
    assert _validate(workdir, cli, SMTP_OFFICE365, "--as-of", "2027-01-01") == [
        "channels.d/c.yaml:1:54: warning: Exchange Online, since 2026-12-31: " + change
    ]
    assert _validate(workdir, cli, SMTP_OFFICE365, "--as-of", "2026-12-30")[0].startswith(
        "channels.d/c.yaml:1:54: warning: Exchange Online, from 2026-12-31 (in 1 day): "
    )


def test_a_channel_overriding_an_office365_server_is_warned_too(workdir: Path, cli: Any) -> None:
    doc = _channel("imap.example.test")
    doc["outgoing"] = {"server": "Office 365", "override": True, "password": "${env:Q}"}
    folder = workdir / "channels.d"
    (folder / "s.yaml").write_text(json.dumps(SMTP_OFFICE365), encoding="utf-8")
    warnings = _validate(workdir, cli, doc, "--as-of", "2027-01-01")
    assert [w.split(": warning: ")[0] for w in warnings] == [
        "channels.d/c.yaml:1:239",
        "channels.d/s.yaml:1:54",
    ]


def test_notices_need_the_matching_sign_in(workdir: Path, cli: Any) -> None:
    without_password = {k: v for k, v in SMTP_OFFICE365.items() if k not in ("user", "password")}
    assert _validate(workdir, cli, without_password) == []
    oauth = _validate(workdir, cli, _channel("outlook.office365.com", **EXCHANGE_OAUTH))
    assert ["TLS 1.0 and 1.1" in w for w in oauth] == [True]


def test_as_of_that_is_not_a_date_is_a_usage_error(workdir: Path, cli: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("validate", "--as-of", "next week")
    assert exited.value.code == 1


def _attempt(host: str, check: str, **fields: Any) -> Attempt:
    return Attempt(
        Check(
            kind="SmtpServer",
            name="x",
            check=check,  # type: ignore[arg-type]
            host=host,
            port=587,
            protocol="smtp-starttls",
            base_dir=Path("."),
            user="u",
            **fields,
        ),
        timeout=5,
    )


def test_diagnosis_maps_the_notices_error_string_to_its_code_and_quotes_it() -> None:
    reply = "550 5.7.30 Basic authentication is not supported for Client Submission."
    attempt = _attempt("smtp.office365.com", "outgoing", password="${env:P}")
    attempt.stage = "auth"
    diagnosis = diagnose(ServerRefusal(reply), attempt)
    assert diagnosis.code == "basic_auth_disabled"
    assert diagnosis.message == reply
    notice = next(n for n in notices.load() if n.code == "basic_auth_disabled")
    assert diagnosis.hint == notice.quote(dt.date.today())
    assert diagnosis.hint.startswith(
        f"Exchange Online, {notice.when(dt.date.today())}: Basic authentication (a password) "
        "for SMTP AUTH "
    )
    assert diagnosis.hint.endswith(
        "(https://admin.microsoft.com/AdminPortal/home#/MessageCenter/:/messages/MC786329)"
    )


def test_diagnosis_quotes_a_notice_only_for_the_hosts_it_names() -> None:
    attempt = _attempt("smtp.example.test", "outgoing", password="${env:P}")
    attempt.stage = "auth"
    reply = "550 5.7.30 Basic authentication is not supported for Client Submission."
    assert diagnose(ServerRefusal(reply), attempt).code == "auth_failed"


def test_exchange_imap_login_failed_with_a_password_is_basic_auth_disabled() -> None:
    attempt = _attempt("outlook.office365.com", "incoming", password="${env:P}")
    attempt.stage = "auth"
    diagnosis = diagnose(ServerRefusal(b"LOGIN failed."), attempt)
    assert diagnosis.code == "basic_auth_disabled"
    assert "POP and IMAP is switched off; use auth: microsoft-exchange" in diagnosis.hint


def test_a_quoted_notice_says_from_when_before_its_date_and_since_when_after() -> None:
    notice = next(n for n in notices.load() if n.effective == dt.date(2026, 12, 31))
    assert notice.quote(dt.date(2026, 12, 1)).startswith(
        "Exchange Online, from 2026-12-31 (in 30 days): "
    )
    assert notice.quote(dt.date(2027, 1, 1)).startswith("Exchange Online, since 2026-12-31: ")


def test_an_agent_overriding_an_office365_server_is_warned_too(workdir: Path, cli: Any) -> None:
    agent = {
        "kind": "Agent",
        "name": "Dana Agent",
        "email": "dana@contoso.example",
        "outgoing": {"server": "Office 365", "override": True},
    }
    (workdir / "channels.d" / "s.yaml").write_text(json.dumps(SMTP_OFFICE365), encoding="utf-8")
    warnings = _validate(workdir, cli, agent, "--as-of", "2027-01-01")
    assert [w.split(": warning: ")[0] for w in warnings] == [
        "channels.d/c.yaml:1:97",
        "channels.d/s.yaml:1:54",
    ]
    assert warnings[0].split(": warning: ")[1].startswith("Exchange Online, since 2026-12-31: ")
