"""The tenant's rules over a repository of no particular store (the example driver's)."""

from __future__ import annotations

import pytest

from channelsync.targets.api import Operation, TargetError
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
