"""plan / apply / drift against the embedded SQLite tenant."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from channelsync.targets.sqlite import SqliteTarget
from tests.tenant_config import BASE, SECRETS, apply, edit_live, plan_json, write


def test_first_apply_creates_everything_then_nothing_to_do(tenant: Path, cli: Any) -> None:
    first = apply(cli)
    assert first.code == 0, first.err
    assert "Apply complete: 4 created." in first.out
    again = apply(cli)
    assert again.code == 0
    assert "No changes. The tenant matches the configuration (4 resource(s))." in again.out
    assert cli("plan", "--detailed-exitcode").code == 0


def test_plan_orders_scripts_and_servers_before_channels(tenant: Path, cli: Any) -> None:
    plan = plan_json(cli)
    assert plan["summary"] == {"create": 4, "update": 0, "rename": 0, "delete": 0, "no_op": 0}
    assert [c["kind"] for c in plan["changes"]] == [
        "EmailScript",
        "SmtpServer",
        "EmailChannel",
        "EmailChannel",
    ]
    assert cli("plan", "--detailed-exitcode").code == 2


def test_omitted_defaults_never_show_as_changes(tenant: Path, cli: Any) -> None:
    apply(cli)
    explicit = (
        BASE["support.yaml"]
        .replace("  protocol: imap-ssl\n", "  protocol: imap-ssl\n  port: 993\n  auth: normal\n")
        .replace("  override: true\n", "  override: true\n  user: support@example.com\n")
    )
    write(tenant, {"support.yaml": explicit})
    assert plan_json(cli)["summary"]["no_op"] == 4


def test_update_shows_field_level_before_and_after(tenant: Path, cli: Any) -> None:
    apply(cli)
    write(tenant, {"support.yaml": BASE["support.yaml"].replace("imap-ssl", "pop3-ssl")})
    result = cli("plan")
    assert '  ~ EmailChannel "Support"\n' in result.out
    assert '      ~ incoming.protocol: "imap-ssl" -> "pop3-ssl"\n' in result.out
    assert "      ~ incoming.port: 993 -> 995\n" in result.out
    assert "Plan: 0 to create, 1 to update, 0 to rename, 0 to delete, 3 unchanged." in result.out


def test_secret_rotation_is_seen_only_as_a_fingerprint_change(
    tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(cli)
    monkeypatch.setenv("SUPPORT_IMAP_PASSWORD", "rotated-Secret-9zz")
    text = cli("plan").out
    assert "      ~ incoming.password: (sensitive value changed)\n" in text
    change = plan_json(cli)["changes"][0]
    assert change["fields"] == [
        {
            "path": "incoming.password",
            "before": "(sensitive)",
            "after": "(sensitive)",
            "sensitive": True,
        }
    ]
    assert "rotated-Secret" not in text


def test_unresolvable_secret_is_a_warning_not_a_failure(
    tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(cli)
    monkeypatch.delenv("OAUTH_SECRET")
    plan = plan_json(cli)
    assert plan["summary"]["no_op"] == 4
    assert plan["warnings"] == [
        "channels.d/exchange.yaml:12:20: warning: environment variable OAUTH_SECRET is not "
        "set (1 reference): cannot compare it, so the plan cannot show a rotation"
    ]


def test_rename_keeps_the_identity(tenant: Path, cli: Any) -> None:
    apply(cli)
    renamed = BASE["relay.yaml"].replace("name: Relay\n", "name: Main Relay\nrenamed_from: Relay\n")
    support = BASE["support.yaml"].replace("server: Relay", "server: Main Relay")
    write(tenant, {"relay.yaml": renamed, "support.yaml": support})
    plan = plan_json(cli)
    assert [(c["action"], c["name"], c["previous_name"]) for c in plan["changes"]] == [
        ("rename", "Main Relay", "Relay"),
    ]
    assert plan["changes"][0]["followers"] == ["Support"]
    assert '  -> SmtpServer "Main Relay" (renamed from "Relay"; 1 channel follows it)\n' in (
        cli("plan").out
    )
    assert apply(cli).code == 0
    assert plan_json(cli)["summary"]["no_op"] == 4


def test_deletes_need_allow_delete(tenant: Path, cli: Any) -> None:
    apply(cli)
    (tenant / "channels.d" / "exchange.yaml").unlink()
    refused = apply(cli)
    assert refused.code == 1
    assert "the plan deletes 1 resource(s) (EmailChannel 'Exchange'); nothing was changed." in (
        refused.err
    )
    assert plan_json(cli)["summary"]["delete"] == 1
    assert apply(cli, "--allow-delete").code == 0
    assert plan_json(cli)["summary"] == {
        "create": 0,
        "update": 0,
        "rename": 0,
        "delete": 0,
        "no_op": 3,
    }


def test_changing_more_than_30_percent_needs_force(tenant: Path, cli: Any) -> None:
    write(tenant, {f"s{i}.yaml": f"kind: EmailScript\nname: S{i}\n" for i in range(8)})
    apply(cli)
    write(tenant, {f"s{i}.yaml": f"kind: EmailScript\nname: S{i}\nqueues: [Q]\n" for i in range(4)})
    refused = apply(cli)
    assert refused.code == 1
    assert "changes or deletes 4 of 12 existing resources (more than 30%)" in refused.err
    assert apply(cli, "--force").code == 0


def test_apply_without_terminal_or_auto_approve_refuses(tenant: Path, cli: Any) -> None:
    result = cli("apply", "--skip-connection-tests")
    assert result.code == 1
    assert "refusing to apply without confirmation" in result.err
    assert plan_json(cli)["summary"]["create"] == 4


def test_skipping_connection_tests_says_so_loudly(tenant: Path, cli: Any) -> None:
    assert "WARNING: connection tests skipped" in apply(cli).err


def test_saved_plan_applies_exactly_and_refuses_when_stale(tenant: Path, cli: Any) -> None:
    assert cli("plan", "--out", "plan.json").code == 0
    saved = (tenant / "plan.json").read_text()
    for value in SECRETS.values():
        assert value not in saved
    assert cli("apply", "plan.json", "--skip-connection-tests").code == 0
    assert plan_json(cli)["summary"]["no_op"] == 4

    write(tenant, {"script.yaml": BASE["script.yaml"].replace("Billing", "Sales")})
    assert cli("plan", "--out", "plan.json").code == 0
    write(tenant, {"script.yaml": BASE["script.yaml"].replace("Billing", "Returns")})
    stale = cli("apply", "plan.json", "--skip-connection-tests")
    assert stale.code == 3
    assert "stale plan: the configuration changed since it was made" in stale.err


def test_saved_plan_refused_when_the_tenant_changed(tenant: Path, cli: Any) -> None:
    apply(cli)
    write(tenant, {"script.yaml": BASE["script.yaml"].replace("Billing", "Sales")})
    assert cli("plan", "--out", "plan.json").code == 0
    db = sqlite3.connect(tenant / ".channelsync" / "tenant.db")
    db.execute("UPDATE resources SET etag = 'changed-elsewhere' WHERE name = 'Support Script'")
    db.commit()
    db.close()
    stale = cli("apply", "plan.json", "--skip-connection-tests")
    assert stale.code == 3
    assert "stale plan: the tenant changed since it was made (Support Script)" in stale.err


def test_partial_failure_reports_applied_failed_and_not_attempted(tenant: Path, cli: Any) -> None:
    apply(cli)
    # a new channel takes the address of one that is deleted, but --only leaves the delete
    # out: the tenant keeps addresses unique and refuses the create
    (tenant / "channels.d" / "exchange.yaml").unlink()
    write(
        tenant,
        {
            "desk.yaml": BASE["exchange.yaml"].replace("name: Exchange", "name: Desk"),
            "support.yaml": BASE["support.yaml"].replace("Support Script", "Sales"),
            "sales.yaml": "kind: EmailScript\nname: Sales\n",
        },
    )
    result = apply(cli, "--only", "Sales", "Desk", "Support")
    assert result.code == 1
    assert result.out.endswith(
        "Applied 1 change(s):\n"
        '  + EmailScript "Sales"\n'
        "Failed: + EmailChannel \"Desk\": channel 'Desk': email help@contoso.example "
        "is used by 'Exchange'\n"
        "Not attempted (1):\n"
        '  ~ EmailChannel "Support"\n'
        "Apply stopped at the first failure. Fix it and run apply again to converge.\n"
    )


def test_tenant_default_is_followed_by_channels_without_outgoing(tenant: Path, cli: Any) -> None:
    from channelsync.targets.sqlite import SqliteTarget

    apply(cli)
    write(
        tenant,
        {
            "relay.yaml": BASE["relay.yaml"].replace("default: true", "default: false"),
            "relay2.yaml": BASE["relay.yaml"].replace("name: Relay", "name: Relay 2"),
        },
    )
    assert apply(cli).code == 0
    target = SqliteTarget("sqlite:///.channelsync/tenant.db", readonly=True)
    live = target.read()
    assert live[("EmailChannel", "Exchange")].data.get("outgoing") is None
    assert target.effective_outgoing(live) == "Relay 2"
    assert plan_json(cli)["summary"]["no_op"] == 5


def test_no_secret_in_any_output_saved_plan_or_database(tenant: Path, cli: Any) -> None:
    outputs = [apply(cli)]
    write(tenant, {"support.yaml": BASE["support.yaml"].replace("imap-ssl", "imap")})
    for fmt in ("text", "json", "markdown", "runbook"):
        outputs.append(cli("plan", "--format", fmt, "--out", "p.json"))
    outputs.append(cli("drift", "--format", "json"))
    blobs = [r.out + r.err for r in outputs]
    blobs.append((tenant / "p.json").read_text())
    for path in (tenant / ".channelsync").iterdir():
        blobs.append(path.read_bytes().decode("latin-1"))
    for blob in blobs:
        for value in SECRETS.values():
            assert value not in blob


def test_key_file_is_private(tenant: Path, cli: Any) -> None:
    apply(cli)
    assert (tenant / ".channelsync" / "tenant.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content", [b"not a database\n", b"SQLite format 3\x00" + b"\0" * 84])
def test_a_file_that_is_not_a_tenant_database_says_so(
    tenant: Path, cli: Any, content: bytes
) -> None:
    (tenant / "bad.db").write_bytes(content)
    result = cli("plan", "--target", "sqlite:///bad.db")
    assert result.code == 1
    assert result.err == (
        "error: bad.db is not a tenant database (not one channelsync created); check --target: "
        "sqlite:///x is the path x relative to the current folder, sqlite:////x is /x\n"
    )
    assert not (tenant / "bad.key").exists()


def test_another_programs_database_is_not_a_tenant_database(tenant: Path, cli: Any) -> None:
    with sqlite3.connect(tenant / "other.db") as db:
        db.execute("CREATE TABLE notes (text)")
    db.close()
    result = cli("list", "--live", "--target", "sqlite:///other.db")
    assert result.code == 1
    assert result.err.startswith("error: other.db is not a tenant database")


def test_markdown_plan_stays_under_the_comment_limit(tenant: Path, cli: Any) -> None:
    _many(tenant, 400)
    out = cli("plan", "--format", "markdown").out
    assert len(out) < 60_000
    assert "_Plan cut to stay under the comment size limit:" in out
    assert out.startswith("<!-- channelsync:plan -->\n### channelsync Plan: 404 to create")


def test_runbook_uses_the_console_words(tenant: Path, cli: Any) -> None:
    out = cli("plan", "--format", "runbook").out
    assert '3. Add the email channel "Exchange".' in out
    assert '   b. Set Channel name to "Exchange".\n' in out
    assert (
        "   a. From the Configuration Menu, open Channels and go to the Email tab, and click "
        "Add new email channel.\n"
    ) in out
    assert '   f. Set Authentication type to "Microsoft Exchange".\n' in out
    assert "Click Test connection" in out
    assert out.rstrip().endswith("Click Save.")


# --- drift ---------------------------------------------------------------------------


def test_drift_exit_codes(tenant: Path, cli: Any) -> None:
    apply(cli)
    assert cli("drift").code == 0
    edit_live(tenant, "Support", lambda body: body["incoming"].update(port=1993))
    result = cli("drift")
    assert result.code == 2
    assert "      ~ incoming.port: 1993 -> 993\n" in result.out
    assert "Drift: 0 to create, 1 to update" in result.out


def test_drift_without_a_tenant_refuses_and_creates_nothing(tenant: Path, cli: Any) -> None:
    result = cli("drift")
    assert result.code == 1
    assert result.err == "error: no tenant at .channelsync/tenant.db yet: apply will create it\n"
    assert not (tenant / ".channelsync").exists()


def test_drift_ignore_rules_expire(tenant: Path, cli: Any) -> None:
    apply(cli)
    write(tenant, {"support.yaml": BASE["support.yaml"].replace("imap-ssl", "pop3-ssl")})
    (tenant / "ignore.yaml").write_text(
        "ignore:\n"
        "  - resource: EmailChannel/Supp*\n"
        "    field: incoming.*\n"
        "    expires: 2999-01-01\n"
        "    reason: moving to POP3 by hand\n"
    )
    assert cli("drift", "--ignore", "ignore.yaml").code == 0
    (tenant / "ignore.yaml").write_text(
        "ignore:\n"
        "  - resource: EmailChannel/Supp*\n"
        "    expires: 2020-01-01\n"
        "    reason: old exception\n"
    )
    result = cli("drift", "--ignore", "ignore.yaml")
    assert result.code == 2
    assert (
        "warning: ignore rule expired and no longer applies: EmailChannel/Supp* "
        "(expires 2020-01-01: old exception)"
    ) in result.out


def test_ignore_rules_that_can_never_match_are_warnings_at_their_line(
    tenant: Path, cli: Any
) -> None:
    apply(cli)
    (tenant / "ignore.yaml").write_text(
        "ignore:\n"
        "  - resource: EmailChanel/Support\n"
        "    expires: 2999-01-01\n"
        "    reason: typo in the kind\n"
        "  - resource: Support\n"
        "    expires: 2999-01-01\n"
        "    reason: no kind at all\n"
        "  - resource: EmailChannel/*\n"
        "    field: incoming.prot\n"
        "    expires: 2999-01-01\n"
        "    reason: typo in the field\n"
        "  - resource: '*/Relay'\n"
        "    field: host\n"
        "    expires: 2999-01-01\n"
        "    reason: fine\n"
    )
    result = cli("drift", "--ignore", "ignore.yaml")
    assert result.code == 0
    assert result.err.splitlines() == [
        "ignore.yaml:2:15: warning: ignore rule 'EmailChanel/Support' matches nothing: no kind "
        "'EmailChanel'; did you mean EmailChannel?",
        "ignore.yaml:5:15: warning: ignore rule 'Support' matches nothing: write Kind/name, "
        "e.g. EmailChannel/Support",
        "ignore.yaml:9:12: warning: ignore rule field 'incoming.prot' matches no field of "
        "EmailChannel",
    ]


def test_ignored_differences_are_counted_not_unchanged(tenant: Path, cli: Any) -> None:
    apply(cli)
    edit_live(tenant, "Support", lambda body: body["incoming"].update(port=1993))
    edit_live(tenant, "Exchange", lambda body: body["incoming"].update(port=1993))
    (tenant / "ignore.yaml").write_text(
        "ignore:\n"
        "  - resource: EmailChannel/*\n"
        "    field: incoming.port\n"
        "    expires: 2999-01-01\n"
        "    reason: ports move next week\n"
    )
    result = cli("drift", "--ignore", "ignore.yaml")
    assert result.code == 0
    assert result.err == ""
    assert (
        "No changes. The tenant matches the configuration (2 resource(s), 2 ignored).\n"
        in result.out
    )
    edit_live(tenant, "Relay", lambda body: body.update(host="smtp2.example.com"))
    result = cli("drift", "--ignore", "ignore.yaml")
    assert result.code == 2
    assert (
        "Drift: 0 to create, 1 to update, 0 to rename, 0 to delete, 1 unchanged, 2 ignored.\n"
        in (result.out)
    )
    document = json.loads(cli("drift", "--ignore", "ignore.yaml", "--format", "json").out)
    assert (document["drift"], document["ignored"], document["summary"]["no_op"]) == (True, 2, 1)


def test_drift_markdown_has_its_own_marker(tenant: Path, cli: Any) -> None:
    SqliteTarget("sqlite:///.channelsync/tenant.db").close()  # an empty tenant
    out = cli("drift", "--format", "markdown").out
    assert out.startswith("<!-- channelsync:drift -->\n### channelsync Drift: 4 to create")


def test_bad_ignore_file_is_reported_with_position(tenant: Path, cli: Any) -> None:
    (tenant / "ignore.yaml").write_text("ignore:\n  - resource: X\n    expires: soon\n")
    result = cli("drift", "--ignore", "ignore.yaml")
    assert result.code == 1
    assert "ignore.yaml:2:5: error: rule needs 'reason'" in result.err
    assert "ignore.yaml:3:14: error: expires must be a date like 2026-12-31" in result.err


# --- processes: locking, concurrency, SIGKILL ----------------------------------------


def _spawn(cwd: Path, *args: str, quiet: bool = False) -> subprocess.Popen[str]:
    """``quiet``: discard the output (a full pipe nobody reads would stall the child)."""
    env = {**os.environ, **SECRETS}
    return subprocess.Popen(
        [sys.executable, "-m", "channelsync", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL if quiet else subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _many(root: Path, n: int) -> None:
    write(
        root,
        {
            f"c{i:03d}.yaml": BASE["support.yaml"]
            .replace("name: Support", f"name: Channel {i:03d}")
            .replace("support@", f"c{i:03d}@")
            for i in range(n)
        },
    )


def test_concurrent_applies_serialise_without_lost_updates(tenant: Path, cli: Any) -> None:
    _many(tenant, 60)
    procs = [_spawn(tenant, "apply", "--auto-approve", "--skip-connection-tests") for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], results
    assert sum("Apply complete: 64 created." in out for out, _ in results) == 1
    assert plan_json(cli)["summary"]["no_op"] == 64
    db = sqlite3.connect(tenant / ".channelsync" / "tenant.db")
    integrity = db.execute("PRAGMA integrity_check").fetchone()
    creates = db.execute("SELECT count(*) FROM audit WHERE action = 'create'").fetchone()[0]
    db.close()
    assert integrity == ("ok",)
    assert creates == 64


def test_lock_timeout_names_the_holder(tenant: Path, cli: Any) -> None:
    from channelsync.targets.base import LockInfo
    from channelsync.targets.sqlite import SqliteTarget

    holder = SqliteTarget("sqlite:///.channelsync/tenant.db")
    info = LockInfo("other", "build-host-7", os.getpid(), "2026-11-27T10:00:00Z")
    with holder.lock(info, timeout=1):
        result = apply(cli, "--lock-timeout", "0.3")
    holder.close()
    assert result.code == 1
    assert (
        "the target is locked by another apply (host build-host-7, pid "
        f"{os.getpid()}, since 2026-11-27T10:00:00Z); waited 0.3 s"
    ) in result.err


def _count(root: Path) -> int:
    try:
        path = (root / ".channelsync" / "tenant.db").resolve()
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM resources").fetchone()[0])
        finally:
            db.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_killed_apply_leaves_no_blocking_lock_and_rerun_converges(tenant: Path, cli: Any) -> None:
    total = 604
    _many(tenant, total - 4)
    rng = random.Random(7)
    for _ in range(3):
        before = _count(tenant)
        proc = _spawn(tenant, "apply", "--auto-approve", "--skip-connection-tests", quiet=True)
        # kill it in the middle of its writes, at a different point each time
        target = before + rng.randint(1, (total - before) // 2)
        deadline = time.monotonic() + 60
        while _count(tenant) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert before < _count(tenant) < total  # it was stopped mid-apply
    final = apply(cli, "--lock-timeout", "5")
    assert final.code == 0, final.err
    assert plan_json(cli)["summary"]["no_op"] == total
    db = sqlite3.connect(tenant / ".channelsync" / "tenant.db")
    integrity = db.execute("PRAGMA integrity_check").fetchone()
    db.close()
    assert integrity == ("ok",)


def test_saved_plan_limited_with_only_applies_just_that(tenant: Path, cli: Any) -> None:
    assert cli("plan", "--only", "Support Script", "--out", "plan.json").code == 0
    result = cli("apply", "plan.json", "--skip-connection-tests")
    assert result.code == 0, result.err
    assert "Apply complete: 1 created." in result.out
    assert plan_json(cli)["summary"]["create"] == 3


def test_corrupt_tenant_database_is_one_clear_line(tenant: Path, cli: Any) -> None:
    (tenant / ".channelsync").mkdir()
    (tenant / ".channelsync" / "tenant.db").write_text("not a database")
    (tenant / ".channelsync" / "tenant.key").write_bytes(bytes(64))
    for command in ("plan", "drift"):
        result = cli(command)
        assert result.code == 1
        assert result.err.endswith(
            "error: tenant database .channelsync/tenant.db: file is not a database\n"
        )


def test_address_moves_from_a_deleted_channel_to_a_new_one(tenant: Path, cli: Any) -> None:
    apply(cli)
    (tenant / "channels.d" / "support.yaml").unlink()
    write(tenant, {"helpdesk.yaml": BASE["support.yaml"].replace("name: Support", "name: Desk")})
    plan = plan_json(cli)
    assert [(c["action"], c["name"]) for c in plan["changes"]] == [
        ("delete", "Support"),
        ("create", "Desk"),
    ]
    result = apply(cli, "--allow-delete")
    assert result.code == 0, result.out + result.err
    assert plan_json(cli)["summary"]["no_op"] == 4


def test_a_new_section_shows_its_fields_and_hides_only_secrets(
    tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(cli)
    monkeypatch.setenv("EX_SMTP", "ex-smtp-Secret-5")
    write(
        tenant,
        {
            "exchange.yaml": BASE["exchange.yaml"]
            + "outgoing:\n  server: Relay\n  override: true\n  password: ${env:EX_SMTP}\n"
        },
    )
    fields = plan_json(cli)["changes"][0]["fields"]
    assert fields == [
        {"path": "outgoing.server", "before": None, "after": "Relay", "sensitive": False},
        {"path": "outgoing.override", "before": None, "after": True, "sensitive": False},
        {
            "path": "outgoing.user",
            "before": None,
            "after": "help@contoso.example",
            "sensitive": False,
        },
        {"path": "outgoing.password", "before": None, "after": "(sensitive)", "sensitive": True},
    ]


def test_saved_plan_is_stale_when_a_planned_resources_secret_rotates(
    tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(cli)
    write(tenant, {"support.yaml": BASE["support.yaml"].replace("imap-ssl", "imap")})
    assert cli("plan", "--out", "plan.json").code == 0
    monkeypatch.setenv("SUPPORT_IMAP_PASSWORD", "rotated-after-review")
    result = cli("apply", "plan.json", "--skip-connection-tests")
    assert result.code == 3
    assert "stale plan: the tenant changed since it was made (Support)" in result.err


def test_missing_or_damaged_key_file_is_refused_not_replaced(tenant: Path, cli: Any) -> None:
    apply(cli)
    key = tenant / ".channelsync" / "tenant.key"
    original = key.read_bytes()
    key.unlink()
    result = cli("plan")
    assert result.code == 1
    assert "error: key file .channelsync/tenant.key is missing: the tenant's secrets" in result.err
    assert not key.exists()
    key.write_bytes(original[:10])
    result = cli("drift")
    assert result.code == 1
    assert "key file .channelsync/tenant.key is damaged (10 bytes, expected 64)" in result.err


def test_paths_with_uri_characters_work_read_only(tenant: Path, cli: Any) -> None:
    url = "sqlite:///odd#dir%20x/t?.db"
    assert apply(cli, "--target", url).code == 0
    assert cli("drift", "--target", url).code == 0
    assert cli("list", "--live", "--target", url).out.endswith("2 channel(s)\n")


def test_unwritable_target_folder_is_one_clear_line(tenant: Path, cli: Any) -> None:
    (tenant / "blocker").write_text("a file, not a folder")
    result = cli("plan", "--target", "sqlite:///blocker/tenant.db")
    assert result.code == 1
    assert result.err.startswith("error: tenant database blocker")


def test_expired_lock_is_taken_over_even_if_its_pid_exists(tenant: Path, cli: Any) -> None:
    apply(cli)
    db = sqlite3.connect(tenant / ".channelsync" / "tenant.db")
    with db:
        db.execute(
            "INSERT INTO apply_lock (tenant, holder, host, pid, since, expires)"
            " VALUES ('default', 'old', ?, 1, '2026-01-01T00:00:00Z', 0)",
            (os.uname().nodename,),
        )
    db.close()
    assert apply(cli, "--lock-timeout", "1").code == 0


def test_held_lock_lease_is_renewed_while_waiting(
    tenant: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channelsync.targets import sqlite as store
    from channelsync.targets.base import LockInfo

    monkeypatch.setattr(store, "LOCK_LEASE_SECONDS", 0.4)
    target = store.SqliteTarget("sqlite:///.channelsync/tenant.db")
    with target.lock(LockInfo.mine("me"), timeout=1):
        time.sleep(1.0)  # longer than the lease: only the heartbeat keeps it
        db = sqlite3.connect(tenant / ".channelsync" / "tenant.db")
        expires = db.execute("SELECT expires FROM apply_lock").fetchone()[0]
        db.close()
        assert expires > time.time()
    target.close()


def test_apply_without_a_secret_points_at_its_reference_and_changes_nothing(
    tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OAUTH_SECRET")
    result = apply(cli)
    assert result.code == 1
    assert (
        "channels.d/exchange.yaml:12:20: error: incoming.oauth.client_secret: "
        "environment variable OAUTH_SECRET is not set\n"
    ) in result.err
    assert result.err.endswith(
        "error: 1 secret(s) the plan needs cannot be read here; set them and apply again. "
        "Nothing was changed\n"
    )
    assert plan_json(cli)["summary"]["create"] == 4


def test_the_store_keeps_the_real_secret_for_the_tenant(tenant: Path, cli: Any) -> None:
    from channelsync.targets.sqlite import SqliteTarget

    apply(cli)
    target = SqliteTarget("sqlite:///.channelsync/tenant.db", readonly=True)
    values = target.secret_values("EmailChannel", "Support")
    target.close()
    assert values == {
        "incoming.password": SECRETS["SUPPORT_IMAP_PASSWORD"],
        "outgoing.password": SECRETS["SUPPORT_SMTP_PASSWORD"],
    }


def test_what_the_paused_collector_leaves_alive_is_frozen_not_walked_again() -> None:
    import gc

    from channelsync.perf import paused_gc

    before = gc.get_freeze_count()
    try:
        with paused_gc():
            kept = [[i] for i in range(1000)]  # lists: always tracked by the collector
            assert not gc.isenabled()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before + len(kept)
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/dev/zero", "is a device, not a regular file"),
        ("missing.yaml", "does not exist"),
        (".", "is a folder, not a regular file"),
    ],
)
def test_drift_ignore_path_that_is_not_a_file_says_what_it_is(
    path: str, reason: str, tenant: Path, cli: Any
) -> None:
    apply(cli)
    result = cli("drift", "--ignore", path)
    assert result.code == 1
    detail = "; only regular files are read" if "regular" in reason else ""
    assert result.err.splitlines() == [
        f"{path}:1:1: error: ignore file {reason}{detail}",
        f"error: the ignore file {reason}; fix the path",
    ]


def test_only_counts_the_changes_it_leaves_out_as_not_selected(tenant: Path, cli: Any) -> None:
    apply(cli)
    write(tenant, {"script.yaml": BASE["script.yaml"].replace("Billing", "Sales")})
    write(tenant, {"relay.yaml": BASE["relay.yaml"].replace("smtp.example", "mail.example")})
    result = cli("plan", "--only", "Support Script")
    assert result.code == 0
    assert result.out.splitlines()[-1] == (
        "Plan: 0 to create, 1 to update, 0 to rename, 0 to delete, 2 unchanged, 1 not selected."
    )
    plan = plan_json(cli, "--only", "Support Script")
    assert plan["summary"] == {
        "create": 0,
        "update": 1,
        "rename": 0,
        "delete": 0,
        "no_op": 2,
        "not_selected": 1,
    }
    markdown = cli("plan", "--only", "Support Script", "--format", "markdown").out
    assert markdown.splitlines()[1] == (
        "### channelsync Plan: 0 to create, 1 to update, 0 to rename, 0 to delete, "
        "2 unchanged, 1 not selected."
    )
    assert cli("plan", "--only", "Support Script", "--out", "plan.json").code == 0
    assert json.loads(Path("plan.json").read_text())["summary"]["not_selected"] == 1


def test_drift_counts_a_resource_with_an_ignored_difference_among_others(
    tenant: Path, cli: Any
) -> None:
    apply(cli)
    edit_live(tenant, "Support", lambda body: body.update(enabled=False, email="desk@example.com"))
    (tenant / "ignore.yaml").write_text(
        "ignore:\n"
        "  - resource: EmailChannel/*\n"
        "    field: enabled\n"
        "    expires: 2999-01-01\n"
        "    reason: toggled by the night shift\n"
    )
    result = cli("drift", "--ignore", "ignore.yaml")
    assert result.code == 2
    assert "enabled" not in result.out
    assert result.out.splitlines()[-1] == (
        "Drift: 0 to create, 1 to update, 0 to rename, 0 to delete, 3 unchanged, 1 ignored."
    )
    assert (
        json.loads(cli("drift", "--ignore", "ignore.yaml", "--format", "json").out)["ignored"] == 1
    )
