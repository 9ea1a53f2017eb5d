"""The plan says in advance what apply would refuse or need, and apply does what it said."""

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

from tests.tenant_config import BASE, SECRETS, apply, plan_json, write

DB = Path(".channelsync") / "tenant.db"


def _scripts(tenant: Path, n: int, queues: str = "") -> None:
    extra = f"queues: [{queues}]\n" if queues else ""
    write(tenant, {f"s{i}.yaml": f"kind: EmailScript\nname: S{i}\n{extra}" for i in range(n)})


# --- deletes and the 30 % threshold ----------------------------------------------------


def test_plan_says_deletes_will_need_allow_delete_in_every_format(tenant: Path, cli: Any) -> None:
    apply(cli)
    (tenant / "channels.d" / "exchange.yaml").unlink()
    note = (
        "apply will need --allow-delete: the plan deletes 1 resource(s) (EmailChannel 'Exchange')"
    )
    text = cli("plan").out
    assert text.endswith(
        f"Plan: 0 to create, 0 to update, 0 to rename, 1 to delete, 3 unchanged.\nwarning: {note}\n"
    )
    markdown = cli("plan", "--format", "markdown").out
    escaped = note.replace("'", "&#x27;")
    assert f"> :warning: {escaped}\n" in markdown
    plan = plan_json(cli)
    assert plan["warnings"] == [note]
    assert plan["apply_needs"] == ["--allow-delete"]
    applied = apply(cli, "--allow-delete")
    assert applied.code == 0, applied.err
    assert "warning: apply will need" not in applied.out  # it has what it needs


def test_plan_says_changing_over_30_percent_will_need_force(tenant: Path, cli: Any) -> None:
    _scripts(tenant, 8)
    apply(cli)
    _scripts(tenant, 4, "Q")
    note = (
        "apply will need --force: the plan changes or deletes 4 of 12 existing resources "
        "(more than 30%)"
    )
    assert cli("plan").out.endswith(f"unchanged.\nwarning: {note}\n")
    assert plan_json(cli)["apply_needs"] == ["--force"]
    refused = apply(cli)
    assert refused.code == 1
    assert refused.err.endswith(
        "error: the plan changes or deletes 4 of 12 existing resources (more than 30%); "
        "nothing was changed. Review it and rerun with --force if it is intended\n"
    )
    assert apply(cli, "--force").code == 0


def test_drift_does_not_talk_about_apply_flags(tenant: Path, cli: Any) -> None:
    apply(cli)
    (tenant / "channels.d" / "exchange.yaml").unlink()
    drift = cli("drift")
    assert drift.code == 2
    assert "apply will need" not in drift.out


def test_channels_following_a_renamed_server_are_one_change_not_many(
    tenant: Path, cli: Any
) -> None:
    # 12 channels send through Relay: renaming it would have counted 13 of 15 changes
    write(
        tenant,
        {
            f"c{i:02d}.yaml": BASE["support.yaml"]
            .replace("name: Support", f"name: Team {i:02d}")
            .replace("support@", f"team{i:02d}@")
            for i in range(11)
        },
    )
    apply(cli)
    renamed = BASE["relay.yaml"].replace("name: Relay\n", "name: Main Relay\nrenamed_from: Relay\n")
    write(tenant, {"relay.yaml": renamed})
    for path in (tenant / "channels.d").glob("*.yaml"):
        path.write_text(path.read_text().replace("server: Relay", "server: Main Relay"))
    text = cli("plan").out
    assert text == (
        "Target: sqlite:///.channelsync/tenant.db\n"
        "\n"
        '  -> SmtpServer "Main Relay" (renamed from "Relay"; 12 channels follow it)\n'
        "\n"
        "Plan: 0 to create, 0 to update, 1 to rename, 0 to delete, 14 unchanged.\n"
    )
    runbook = cli("plan", "--format", "runbook").out
    assert "   c. The 12 channel(s) that use it follow the new name by themselves.\n" in runbook
    result = apply(cli)
    assert result.code == 0, result.err
    assert "Apply complete: 1 renamed." in result.out
    assert plan_json(cli)["summary"]["no_op"] == 15


# --- unset secrets -------------------------------------------------------------------


def test_unset_secret_is_one_warning_per_variable_with_its_count(
    tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tenant,
        {
            "desk.yaml": BASE["support.yaml"]
            .replace("name: Support", "name: Desk")
            .replace("support@", "desk@"),
        },
    )
    monkeypatch.delenv("SUPPORT_IMAP_PASSWORD")
    monkeypatch.delenv("OAUTH_SECRET")
    text = cli("plan").out
    assert text.endswith(
        "Plan: 5 to create, 0 to update, 0 to rename, 0 to delete, 0 unchanged.\n"
        "warning: no tenant at .channelsync/tenant.db yet: apply will create it\n"
        "channels.d/desk.yaml:10:13: warning: environment variable SUPPORT_IMAP_PASSWORD is "
        "not set (2 references): apply will fail: 2 resources to create or change need it\n"
        "channels.d/exchange.yaml:12:20: warning: environment variable OAUTH_SECRET is not set "
        "(1 reference): apply will fail: 1 resource to create or change needs it\n"
    )
    result = apply(cli)
    assert result.code == 1
    assert "3 secret(s) the plan needs cannot be read here" in result.err


def test_unset_secret_of_a_changed_resource_says_apply_will_fail(
    tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(cli)
    write(tenant, {"support.yaml": BASE["support.yaml"].replace("enabled: true", "enabled: false")})
    monkeypatch.delenv("SUPPORT_SMTP_PASSWORD")
    assert plan_json(cli)["warnings"] == [
        "channels.d/support.yaml:14:13: warning: environment variable SUPPORT_SMTP_PASSWORD is "
        "not set (1 reference): apply will fail: 1 resource to create or change needs it"
    ]


# --- deletes show what they remove ----------------------------------------------------


def test_a_delete_shows_the_attributes_it_removes_secrets_hidden(tenant: Path, cli: Any) -> None:
    apply(cli)
    (tenant / "channels.d" / "relay.yaml").unlink()
    write(tenant, {"support.yaml": BASE["support.yaml"].replace("server: Relay", "server: x")})
    (tenant / "channels.d" / "support.yaml").unlink()
    text = cli("plan").out
    assert (
        '  - SmtpServer "Relay"\n'
        '      - host = "smtp.example.com"\n'
        '      - security = "starttls"\n'
        "      - port = 587\n"
        '      - user = "relay@example.com"\n'
        "      - password = (sensitive value)\n"
        "      - default = true\n"
        "\n"
    ) in text
    fields = next(c for c in plan_json(cli)["changes"] if c["name"] == "Relay")["fields"]
    assert {"path": "password", "before": "(sensitive)", "after": None, "sensitive": True} in (
        fields
    )
    markdown = cli("plan", "--format", "markdown").out
    assert '```diff\n- host = "smtp.example.com"\n' in markdown
    outputs = text + markdown + json.dumps(plan_json(cli))
    for value in SECRETS.values():
        assert value not in outputs


# --- two channels that swap addresses -------------------------------------------------


def _swap(tenant: Path) -> None:
    write(
        tenant,
        {
            "support.yaml": BASE["support.yaml"].replace(
                "email: support@example.com", "email: help@contoso.example"
            ),
            "exchange.yaml": BASE["exchange.yaml"].replace(
                "email: help@contoso.example", "email: support@example.com"
            ),
        },
    )


TEMPORARY = "channelsync-temp-d60a318dd8a0@contoso.example"


def test_two_channels_that_swap_addresses_converge_in_one_apply(tenant: Path, cli: Any) -> None:
    apply(cli)
    _swap(tenant)
    text = cli("plan").out
    assert text == (
        "Target: sqlite:///.channelsync/tenant.db\n"
        "\n"
        '  ~ EmailChannel "Support"\n'
        '      ~ email: "support@example.com" -> "help@contoso.example"\n'
        '      ~ outgoing.user: "support@example.com" -> "help@contoso.example"\n'
        "\n"
        '  ~ EmailChannel "Exchange"\n'
        f"      (moves through the temporary address {TEMPORARY} first: another channel of "
        "this apply takes its address)\n"
        '      ~ email: "help@contoso.example" -> "support@example.com"\n'
        "\n"
        "Plan: 0 to create, 2 to update, 0 to rename, 0 to delete, 2 unchanged.\n"
    )
    assert [c["temporary_email"] for c in plan_json(cli)["changes"]] == [None, TEMPORARY]
    result = apply(cli)
    assert result.code == 0, result.err
    assert result.out.endswith(
        f"EmailChannel 'Exchange' moved through the temporary address {TEMPORARY} (another "
        "channel took its address)\n"
        "Apply complete: 2 updated.\n"
    )
    assert plan_json(cli)["summary"]["no_op"] == 4


def test_runbook_gives_a_swapping_channel_its_temporary_address_first(
    tenant: Path, cli: Any
) -> None:
    apply(cli)
    _swap(tenant)
    out = cli("plan", "--format", "runbook").out
    assert out.startswith(
        "Runbook for sqlite:///.channelsync/tenant.db: 2 change(s) in 3 steps, in this order.\n"
        "\n"
        '1. Give the email channel "Exchange" a temporary address (another channel takes its '
        "address below).\n"
        "   a. From the Configuration Menu, open Channels and go to the Email tab, and open "
        '"Exchange" in the list.\n'
        f'   b. Set Email Address to "{TEMPORARY}".\n'
        "   c. Click Save.\n"
        "\n"
        '2. Change the email channel "Support".\n'
    )
    assert '3. Change the email channel "Exchange".\n' in out
    assert '   b. Set Email Address to "support@example.com".\n' in out


def test_an_apply_stopped_between_the_swap_steps_converges(tenant: Path, cli: Any) -> None:
    from channelsync import apply as applying
    from channelsync.loader import load_config
    from channelsync.plan import make_plan
    from channelsync.targets import open_target

    apply(cli)
    _swap(tenant)
    # what a crash right after the first step leaves: Exchange holds the temporary address
    config = load_config(tenant / "channels.d")
    target = open_target("sqlite:///.channelsync/tenant.db")
    first = applying.operations(make_plan(config, target), config)[0]
    assert first[1].body is not None and first[1].body["email"] == TEMPORARY
    target.apply(first[1])
    target.close()
    plan = plan_json(cli)
    assert [(c["name"], c["temporary_email"]) for c in plan["changes"]] == [
        ("Support", None),
        ("Exchange", None),
    ]
    assert apply(cli).code == 0
    assert plan_json(cli)["summary"]["no_op"] == 4


def test_three_channels_whose_addresses_rotate_converge(tenant: Path, cli: Any) -> None:
    def channel(name: str, address: str) -> str:
        return (
            BASE["support.yaml"]
            .replace("name: Support", f"name: {name}")
            .replace("email: support@example.com", f"email: {address}")
        )

    write(tenant, {f"{n}.yaml": channel(n, f"{n}@example.com") for n in ("a", "b", "c")})
    apply(cli)
    rotated = {"a": "b", "b": "c", "c": "a"}
    write(tenant, {f"{n}.yaml": channel(n, f"{m}@example.com") for n, m in rotated.items()})
    plan = plan_json(cli)
    assert sum(c["temporary_email"] is not None for c in plan["changes"]) == 1
    assert apply(cli).code == 0
    assert plan_json(cli)["summary"]["no_op"] == 7


def _spawn(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "channelsync", *args],
        cwd=cwd,
        env={**os.environ, **SECRETS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _temporary_held(root: Path) -> int:
    db = sqlite3.connect(f"file:{(root / DB).resolve()}?mode=ro", uri=True, timeout=5)
    try:
        return int(
            db.execute(
                "SELECT count(*) FROM resources WHERE email LIKE 'channelsync-temp-%'"
            ).fetchone()[0]
        )
    finally:
        db.close()


def test_swaps_killed_between_their_steps_converge_on_the_next_apply(
    tenant: Path, cli: Any
) -> None:
    pairs = 150

    def pair(i: int, swapped: bool) -> dict[str, str]:
        first, second = (f"b{i}@example.com", f"a{i}@example.com")[:: -1 if not swapped else 1]
        return {
            f"a{i}.yaml": BASE["support.yaml"]
            .replace("name: Support", f"name: A{i:03d}")
            .replace("email: support@example.com", f"email: {first}"),
            f"b{i}.yaml": BASE["support.yaml"]
            .replace("name: Support", f"name: B{i:03d}")
            .replace("email: support@example.com", f"email: {second}"),
        }

    for i in range(pairs):
        write(tenant, pair(i, swapped=False))
    assert apply(cli, "--force").code == 0
    for i in range(pairs):
        write(tenant, pair(i, swapped=True))
    rng = random.Random(11)
    for round_ in range(2):
        proc = _spawn(tenant, "apply", "--auto-approve", "--skip-connection-tests", "--force")
        # kill it while some channels hold their temporary address
        wanted = rng.randint(1, pairs // 3)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if _temporary_held(tenant) >= wanted:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _temporary_held(tenant) > 0  # stopped between the two steps of a swap
        for i in range(pairs):  # swap back and forth: the next apply starts mid-way too
            write(tenant, pair(i, swapped=round_ % 2 == 0))
    final = apply(cli, "--force", "--lock-timeout", "5")
    assert final.code == 0, final.err
    assert plan_json(cli)["summary"]["no_op"] == 2 * pairs + 4
    assert _temporary_held(tenant) == 0


# --- --only ----------------------------------------------------------------------------


def test_only_with_an_unknown_name_is_an_error_with_the_nearest_name(
    tenant: Path, cli: Any
) -> None:
    result = cli("plan", "--only", "Suport", "Channel/Relay")
    assert result.code == 1
    assert result.out == ""
    assert result.err.endswith(
        "error: --only: 'Suport' matches no resource (did you mean 'Support'?); "
        "'Channel/Relay' matches no resource (did you mean 'SmtpServer/Relay'?). Give a "
        "resource name (or Kind/NAME) of the config or the tenant\n"
    )
    assert cli("apply", "--only", "nothing-like-it", "--auto-approve").code == 1


def test_only_accepts_kind_and_name(tenant: Path, cli: Any) -> None:
    plan = plan_json(cli, "--only", "EmailChannel/Support", "EmailScript/Support Script")
    assert [(c["kind"], c["name"]) for c in plan["changes"]] == [
        ("EmailScript", "Support Script"),
        ("EmailChannel", "Support"),
    ]
    assert (plan["summary"]["no_op"], plan["summary"]["not_selected"]) == (0, 2)


def test_apply_only_applies_just_those_resources(tenant: Path, cli: Any) -> None:
    result = apply(cli, "--only", "Support Script", "SmtpServer/Relay")
    assert result.code == 0, result.err
    assert "Apply complete: 2 created." in result.out
    assert [c["name"] for c in plan_json(cli)["changes"]] == ["Exchange", "Support"]
    assert cli("plan", "--out", "p.json").code == 0
    both = cli("apply", "p.json", "--only", "Support")
    assert both.code == 1
    assert "error: --only cannot be used with a saved plan" in both.err


# --- checks before the prompt ---------------------------------------------------------


def test_safety_refusal_comes_before_the_confirmation_prompt(tenant: Path, cli: Any) -> None:
    apply(cli)
    (tenant / "channels.d" / "exchange.yaml").unlink()
    result = cli("apply", "--skip-connection-tests")  # no --auto-approve: it would ask
    assert result.code == 1
    assert "the plan deletes 1 resource(s) (EmailChannel 'Exchange'); nothing was changed." in (
        result.err
    )
    assert "confirmation" not in result.err


def test_unreadable_secret_is_reported_before_the_confirmation_prompt(
    tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channelsync import apply as applying
    from channelsync.loader import load_config
    from channelsync.targets import open_target

    monkeypatch.delenv("OAUTH_SECRET")
    asked = []
    target = open_target("sqlite:///.channelsync/tenant.db")
    with pytest.raises(applying.ConfigError):
        applying.run(
            load_config(tenant / "channels.d"),
            target,
            saved=None,
            allow_delete=False,
            force=False,
            lock_timeout=1,
            show=lambda plan: None,
            confirm=lambda plan: asked.append(plan) or True,
            gate=lambda plan: True,
        )
    target.close()
    assert asked == []
