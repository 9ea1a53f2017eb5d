"""Adding a kind is a model class and a registry row (tests/queue_kind.py): nothing else
changes, and the kind validates, plans, applies, exports, renders and is protected."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from channelsync import document, kinds
from channelsync.targets.base import Operation, TargetError
from channelsync.targets.sqlite import SqliteTarget
from tests.queue_kind import queue_kind
from tests.tenant_config import apply, plan_json, write

__all__ = ["queue_kind"]  # the fixture

SCRIPT = "kind: EmailScript\nname: Sales Script\nqueues: [Sales]\n"
QUEUE = "kind: EmailQueue\nname: Sales\nscript: Sales Script\nmax_wait_minutes: 10\n"


@pytest.fixture
def sales(workdir: Path, queue_kind: kinds.Kind, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CHANNELSYNC_TARGET", raising=False)
    write(workdir, {"script.yaml": SCRIPT, "queue.yaml": QUEUE})
    return workdir


def test_a_registered_kind_validates_with_positions(
    workdir: Path, queue_kind: Any, cli: Any
) -> None:
    write(workdir, {"queue.yaml": "kind: EmailQueue\nname: Sales\nmax_wait_minutes: 0\n"})
    result = cli("validate", "--dir", "channels.d")
    assert result.code == 1
    assert result.out.splitlines()[0] == (
        "channels.d/queue.yaml:3:19: error: max_wait_minutes: 0 is less than the minimum of 1"
    )


def test_a_registered_kind_s_references_are_checked(
    workdir: Path, queue_kind: Any, cli: Any
) -> None:
    write(workdir, {"queue.yaml": "kind: EmailQueue\nname: Sales\nscript: Sales Scrpt\n"})
    write(workdir, {"script.yaml": SCRIPT})
    result = cli("validate", "--dir", "channels.d")
    assert result.code == 1
    assert result.out.splitlines()[0] == (
        "channels.d/queue.yaml:3:9: error: script 'Sales Scrpt' is not defined (did you mean "
        "'Sales Script'?): add an EmailScript with that name, or omit 'script' for the "
        "'Default Email Script'"
    )


def test_a_kind_unknown_without_its_row(workdir: Path, cli: Any) -> None:
    write(workdir, {"queue.yaml": QUEUE})
    result = cli("validate", "--dir", "channels.d")
    assert result.code == 1
    assert "unknown kind 'EmailQueue'" in result.out


def test_a_registered_kind_plans_and_applies_after_what_it_refers_to(sales: Path, cli: Any) -> None:
    plan = plan_json(cli)
    assert [(c["kind"], c["action"]) for c in plan["changes"]] == [
        ("EmailScript", "create"),
        ("EmailQueue", "create"),
    ]
    first = apply(cli)
    assert first.code == 0, first.err
    assert "Apply complete: 2 created." in first.out
    assert cli("plan", "--detailed-exitcode").code == 0
    live = SqliteTarget("sqlite:///.channelsync/tenant.db", readonly=True).read()
    assert live[("EmailQueue", "Sales")].data == {
        "kind": "EmailQueue",
        "name": "Sales",
        "script": "Sales Script",
        "max_wait_minutes": 10,
    }


def test_a_renamed_script_is_followed_by_its_queue(sales: Path, cli: Any) -> None:
    apply(cli)
    write(
        sales, {"script.yaml": SCRIPT.replace("Sales Script", "Deals\nrenamed_from: Sales Script")}
    )
    write(sales, {"queue.yaml": QUEUE.replace("Sales Script", "Deals")})
    assert apply(cli).code == 0
    assert cli("plan", "--detailed-exitcode").code == 0
    live = SqliteTarget("sqlite:///.channelsync/tenant.db", readonly=True).read()
    assert live[("EmailQueue", "Sales")].data["script"] == "Deals"


def test_a_registered_kind_exports_and_round_trips(sales: Path, cli: Any) -> None:
    apply(cli)
    result = cli("export", "--dir", "exported")
    assert result.code == 0, result.err
    assert "wrote exported/emailqueue-sales.yaml" in result.out
    text = (sales / "exported" / "emailqueue-sales.yaml").read_text()
    assert text == (
        "# exported by channelsync from sqlite:///.channelsync/tenant.db\n"
        "kind: EmailQueue\nname: Sales\nscript: Sales Script\nmax_wait_minutes: 10\n"
    )
    assert plan_json(cli, "--dir", "exported")["summary"]["no_op"] == 2


def test_a_registered_kind_s_runbook_step_uses_its_console_words(sales: Path, cli: Any) -> None:
    out = cli("plan", "--format", "runbook").out
    assert out.endswith(
        '2. Add the email queue "Sales".\n'
        "   a. From the Configuration Menu, open Queues and go to the email queues, "
        "and click Add new email queue.\n"
        '   b. Set Queue name to "Sales".\n'
        '   c. Set Email script to "Sales Script".\n'
        "   d. Set Maximum wait (minutes) to 10.\n"
        "   e. Click Save.\n"
    )  # not connection-tested: no Test connection step


def test_a_script_a_queue_uses_cannot_be_deleted(sales: Path, cli: Any) -> None:
    apply(cli)
    target = SqliteTarget("sqlite:///.channelsync/tenant.db")
    try:
        with pytest.raises(TargetError) as refused:
            target.apply(Operation("delete", "EmailScript", "Sales Script"))
    finally:
        target.close()
    assert str(refused.value) == "EmailScript 'Sales Script' is still used by queue(s) Sales"


def test_the_packaged_schema_serves_the_built_in_kinds_only(queue_kind: Any) -> None:
    assert "EmailQueue" in document.combined_schema()["$defs"]
    kinds.unregister("EmailQueue")
    assert kinds.as_shipped()
    assert "EmailQueue" not in document.combined_schema()["$defs"]


@pytest.fixture
def served(tmp_path: Path, queue_kind: Any) -> Iterator[tuple[str, str]]:
    """`channelsync serve`'s application in this process (so it sees the registered kind) on a
    free loopback port; yields its URL and a write token."""
    import uvicorn

    from channelsync.server import tokens
    from channelsync.server.app import create_app
    from tests.http.conftest import free_port

    store = tmp_path / "served"
    store.mkdir()
    token = tokens.add(store / "tokens.json", "ci-apply", "write")
    app = create_app(f"sqlite:///{store / 'tenant.db'}", store / "tokens.json")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_registered_kind_has_its_rest_collection(
    sales: Path, served: tuple[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, token = served
    monkeypatch.setenv("CHANNELSYNC_TOKEN", token)
    applied = cli("apply", "--target", url, "--auto-approve", "--skip-connection-tests")
    assert applied.code == 0, applied.err
    assert "Apply complete: 2 created." in applied.out
    assert cli("plan", "--target", url, "--detailed-exitcode").code == 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        queue = client.get("/v1/queues/Sales")
        assert queue.status_code == 200
        assert queue.json()["script"] == "Sales Script"
        refused = client.delete("/v1/scripts/Sales Script", headers={"If-Match": "*"})
    assert refused.json() == {"error": "EmailScript 'Sales Script' is still used by queue(s) Sales"}
