"""The tenant's rules over a repository of no particular store (the example driver's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from channelsync.targets.api import Operation, TargetError
from channelsync.targets.sqlite import SqliteTarget
from tests.http.example_driver import TENANTS, MemoryTarget


def test_a_kind_the_registry_does_not_know_is_refused_in_one_line() -> None:
    TENANTS.clear()
    target = MemoryTarget("memory://rules")
    with pytest.raises(TargetError) as caught:
        target.apply(Operation("create", "Queue", "Support", body={"name": "Support"}))
    assert str(caught.value) == (
        "unknown kind 'Queue' (known: EmailChannel, SmtpServer, EmailScript, Agent)"
    )
    assert target.read() == {}


def test_a_failed_write_leaves_neither_row_nor_audit_entry() -> None:
    TENANTS.clear()
    target = MemoryTarget("memory://rules")
    channel = {"kind": "EmailChannel", "name": "C", "email": "c@example.com", "script": "Nope"}
    with pytest.raises(TargetError, match="channel 'C': email script 'Nope' does not exist"):
        target.apply(Operation("create", "EmailChannel", "C", body=channel))
    state = TENANTS["memory://rules"]
    assert (state.rows, state.audit) == ({}, [])


def test_a_new_default_resets_every_outgoing_server_and_drops_its_secrets(
    tmp_path: Path,
) -> None:
    target = SqliteTarget(f"sqlite:///{tmp_path / 'tenant.db'}")
    try:
        servers = [("Relay", True), ("Backup", False)]
        for name, default in servers:
            body = {"kind": "SmtpServer", "name": name, "host": "smtp.example.com"}
            target.apply(Operation("create", "SmtpServer", name, body={**body, "default": default}))
        outgoing = {"server": "Backup", "override": True, "password": "smtp-Secret-9x"}
        incoming = {
            "server": "imap.example.com",
            "protocol": "imap",
            "user": "u",
            "password": "imap-Secret-8y",
        }
        channel = {
            "kind": "EmailChannel",
            "name": "C",
            "email": "c@example.com",
            "incoming": incoming,
        }
        target.apply(
            Operation("create", "EmailChannel", "C", body={**channel, "outgoing": outgoing})
        )
        target.apply(
            Operation(
                "create",
                "EmailChannel",
                "D",
                body={**channel, "name": "D", "email": "d@example.com"},
            )
        )
        agent = {"kind": "Agent", "name": "A", "email": "c@example.com"}  # a channel's address
        target.apply(
            Operation("create", "Agent", "A", body={**agent, "outgoing": {"server": "Relay"}})
        )
        untouched = target.read()[("EmailChannel", "D")].etag
        assert target.tenant.set_default("Backup", actor="console")
        live = target.read()
        assert live[("EmailChannel", "C")].data.get("outgoing") is None
        assert live[("Agent", "A")].data.get("outgoing") is None
        assert live[("EmailChannel", "D")].etag == untouched  # on the default already
        assert target.secret_values("EmailChannel", "C") == {"incoming.password": "imap-Secret-8y"}
        assert target.tenant.set_default("Backup", actor="console")  # the default already
        assert target.read()[("EmailChannel", "D")].etag == untouched
    finally:
        target.close()
