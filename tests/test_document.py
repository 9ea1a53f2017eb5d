"""The fast path's normalised documents equal what the pydantic models make of them."""

from __future__ import annotations

from typing import Any

import pytest

from channelsync import document, kinds
from channelsync.defaults import apply_derived

CASES: list[dict[str, Any]] = [
    {
        "kind": "EmailChannel",
        "name": "Minimal",
        "email": "a@example.com",
        "incoming": {"server": "imap.example.com", "protocol": "imap-ssl", "user": "a"},
    },
    {
        "kind": "EmailChannel",
        "name": "Full",
        "email": "b@example.com",
        "script": "S",
        "enabled": True,
        "incoming": {
            "auth": "microsoft-exchange",
            "server": "outlook.office365.com",
            "protocol": "pop3",
            "port": 1110,
            "user": "b",
            "oauth": {"tenant_id": "t", "client_id": "c", "client_secret": "${env:X}"},
            "tls": {"ca_file": "ca.pem"},
        },
        "outgoing": {"server": "Relay", "override": True, "password": "${env:Y}"},
    },
    {"kind": "SmtpServer", "name": "Relay", "host": "smtp.example.com", "security": "ssl"},
    {"kind": "EmailScript", "name": "Script"},
    {"kind": "EmailScript", "name": "Script", "queues": ["A", "B"]},
]


@pytest.mark.parametrize("data", CASES, ids=lambda d: f"{d['kind']}-{d['name']}")
def test_normalize_matches_the_pydantic_model(data: dict[str, Any]) -> None:
    assert document.is_valid(data["kind"], data)
    model = kinds.get(data["kind"]).model_class().model_validate(data).model_dump(mode="json")
    apply_derived(data["kind"], model)
    assert document.normalize(data["kind"], data) == model


def test_normalize_fills_derived_defaults() -> None:
    doc = document.normalize("EmailChannel", CASES[1])
    assert doc["outgoing"]["user"] == "b@example.com"
    assert doc["incoming"]["port"] == 1110
    assert document.normalize("SmtpServer", CASES[2])["port"] == 465
    assert document.normalize("EmailChannel", CASES[0])["incoming"]["port"] == 993


def test_normalize_does_not_share_mutable_defaults() -> None:
    first = document.normalize("EmailScript", CASES[3])
    first["queues"].append("X")
    assert document.normalize("EmailScript", CASES[3])["queues"] == []
