"""The embedded store gathers the changes of a large apply into fewer commits, each change
still all or nothing, and the partial-failure report still true."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from channelsync.apply import execute
from channelsync.plan import Action, Change
from channelsync.render.apply import report as render_report
from channelsync.targets import sqlite as store
from channelsync.targets.base import Operation


def _script(name: str) -> tuple[Change, Operation]:
    body = {"kind": "EmailScript", "name": name, "queues": ["Support"]}
    return Change("EmailScript", name, Action.CREATE), Operation(
        "create", "EmailScript", name, body=body
    )


def _rows(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [r[0] for r in db.execute("SELECT name FROM resources ORDER BY name")]
    finally:
        db.close()


def test_changes_after_the_first_ones_share_commits_and_a_failure_keeps_what_was_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "COMMITS_ALONE", 10)
    monkeypatch.setattr(store, "BATCH_SECONDS", 3600.0)
    target = store.SqliteTarget(f"sqlite:///{tmp_path}/tenant.db")
    statements: list[str] = []
    target.repo.connection.set_trace_callback(statements.append)
    ops = [_script(f"S{i:03d}") for i in range(40)]
    ops.insert(30, _script("S005"))  # already there by then: fails
    try:
        outcome = execute(ops, target)
    finally:
        target.close()
    assert [c.name for c in outcome.applied] == [f"S{i:03d}" for i in range(30)]
    assert outcome.failed is not None and outcome.failed.name == "S005"
    assert outcome.error == "EmailScript 'S005' already exists in the tenant"
    assert len(outcome.not_attempted) == 10
    assert render_report(outcome).splitlines()[-2:] == [
        '  + EmailScript "S039"',
        "Apply stopped at the first failure. Fix it and run apply again to converge.",
    ]
    # ten alone, the twenty after them in one before the failure was reported, the batch's end
    assert statements.count("COMMIT") == 12
    assert _rows(tmp_path / "tenant.db") == [f"S{i:03d}" for i in range(30)]


def test_a_change_that_fails_after_writing_is_undone_alone_inside_a_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "COMMITS_ALONE", 0)
    monkeypatch.setattr(store, "BATCH_SECONDS", 3600.0)
    target = store.SqliteTarget(f"sqlite:///{tmp_path}/tenant.db")
    # the rename is written before the body's script is found missing
    body = {"kind": "EmailScript", "name": "T", "queues": ["Support"]}
    channel = {"kind": "EmailChannel", "name": "New", "email": "c@example.com", "script": "Nope"}
    rename = Operation("rename", "EmailChannel", "New", "Old", channel)
    created = {**channel, "name": "Old", "script": "T"}
    ops = [
        (
            Change("EmailScript", "T", Action.CREATE),
            Operation("create", "EmailScript", "T", body=body),
        ),
        (
            Change("EmailChannel", "Old", Action.CREATE),
            Operation("create", "EmailChannel", "Old", body=created),
        ),
        (Change("EmailChannel", "New", Action.RENAME, "Old"), rename),
    ]
    try:
        outcome = execute(ops, target)
    finally:
        target.close()
    assert outcome.error == "channel 'New': email script 'Nope' does not exist"
    assert [c.name for c in outcome.applied] == ["T", "Old"]
    assert _rows(tmp_path / "tenant.db") == ["Old", "T"]
