"""The driver contract: the same scenarios against every driver (``driver`` fixture:
sqlite, http, the example driver). A new driver passes these before it is called one."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from channelsync import kinds
from channelsync.targets.api import (
    ConflictError,
    LiveResource,
    LockInfo,
    LockTimeout,
    Operation,
    Target,
    TargetError,
    get_path,
    secret_paths,
    set_path,
)
from tests.contract.conftest import Driver
from tests.tenant_config import SECRETS

# The real value behind every secret field of the shared config (tests/tenant_config.py).
SECRET_OF = {
    ("SmtpServer", "Relay", ("password",)): SECRETS["RELAY_PASSWORD"],
    ("EmailChannel", "Support", ("incoming", "password")): SECRETS["SUPPORT_IMAP_PASSWORD"],
    ("EmailChannel", "Support", ("outgoing", "password")): SECRETS["SUPPORT_SMTP_PASSWORD"],
    ("EmailChannel", "Exchange", ("incoming", "oauth", "client_secret")): SECRETS["OAUTH_SECRET"],
}


def _cli(cli: Any, driver: Driver, *args: str) -> Any:
    return cli(*args, "--target", driver.url)


def _apply(cli: Any, driver: Driver, *extra: str) -> Any:
    result = _cli(cli, driver, "apply", "--auto-approve", "--skip-connection-tests", *extra)
    assert result.code == 0, result.out + result.err
    return result


def _converged(cli: Any, driver: Driver) -> None:
    again = _cli(cli, driver, "plan", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err


def _live(driver: Driver) -> dict[tuple[str, str], LiveResource]:
    target = driver.open()
    try:
        return target.read()
    finally:
        target.close()


def _body(target: Target, live: LiveResource, **changes: Any) -> dict[str, Any]:
    """The live resource as a body to write: its fingerprints replaced by the real secrets."""
    body = copy.deepcopy(live.data)
    for path in secret_paths(live.kind):
        if get_path(body, path) is not None:
            set_path(body, path, SECRET_OF[(live.kind, live.name, path)])
    body.update(changes)
    return body


@pytest.fixture
def applied(driver: Driver, cli: Any) -> Driver:
    """The driver's tenant with the shared config applied."""
    _apply(cli, driver)
    return driver


def test_create_update_rename_delete_converge(driver: Driver, workdir: Path, cli: Any) -> None:
    assert "Apply complete: 4 created." in _apply(cli, driver).out
    _converged(cli, driver)  # an OAuth channel among them: its client secret compares too
    support = workdir / "channels.d" / "support.yaml"
    support.write_text(support.read_text().replace("enabled: true", "enabled: false"))
    _apply(cli, driver)
    _converged(cli, driver)
    assert _live(driver)[("EmailChannel", "Support")].data["enabled"] is False
    support.write_text(
        support.read_text().replace(
            "name: Support\n", "name: Support Desk\nrenamed_from: Support\n"
        )
    )
    _apply(cli, driver)
    _converged(cli, driver)
    (workdir / "channels.d" / "exchange.yaml").unlink()
    _apply(cli, driver, "--allow-delete")
    _converged(cli, driver)
    assert sorted(_live(driver)) == [
        ("EmailChannel", "Support Desk"),
        ("EmailScript", "Support Script"),
        ("SmtpServer", "Relay"),
    ]


def test_read_shows_every_secret_only_as_its_fingerprint(applied: Driver) -> None:
    target = applied.open()
    try:
        live = target.read()
        seen = set()
        for (kind, name), resource in live.items():
            for path in secret_paths(kind):
                shown = get_path(resource.data, path)
                if shown is not None:
                    assert shown == target.fingerprint(SECRET_OF[(kind, name, path)]), path
                    seen.add((kind, path))
    finally:
        target.close()
    # every secret field the public api names is exercised, so a driver cannot miss one
    assert seen == {(k.name, p) for k in kinds.all_kinds() for p in secret_paths(k.name)}
    text = json.dumps([r.data for r in live.values()]) + repr(live)
    assert not [value for value in SECRETS.values() if value in text]


def test_second_lock_waits_then_times_out_naming_the_holder(driver: Driver) -> None:
    first, second = driver.open(), driver.open()
    holder = LockInfo("apply-1", "ci-runner-7", os.getpid(), "2026-01-01T00:00:00Z")
    try:
        with (
            first.lock(holder, 1),
            pytest.raises(LockTimeout) as caught,
            second.lock(LockInfo.mine("apply-2"), 0.3),
        ):
            pass
        assert str(caught.value) == (
            f"the target is locked by another apply (host ci-runner-7, pid {os.getpid()}, "
            "since 2026-01-01T00:00:00Z); waited 0.3 s. Try again later, or raise --lock-timeout"
        )
        with second.lock(LockInfo.mine("apply-3"), 1):  # released when the first left
            pass
    finally:
        first.close()
        second.close()


def test_a_write_on_a_stale_etag_is_a_conflict_and_changes_nothing(applied: Driver) -> None:
    target = applied.open()
    try:
        script = target.read()[("EmailScript", "Support Script")]
        first = _body(target, script, queues=["Support"])
        target.apply(
            Operation("update", script.kind, script.name, body=first, expected_etag=script.etag)
        )
        late = _body(target, script, queues=["Billing"])
        with pytest.raises(ConflictError):
            target.apply(
                Operation("update", script.kind, script.name, body=late, expected_etag=script.etag)
            )
        with pytest.raises(ConflictError):
            target.apply(Operation("create", script.kind, script.name, body=late))
        now = target.read()[("EmailScript", "Support Script")]
    finally:
        target.close()
    assert now.data["queues"] == ["Support"]
    assert now.etag != script.etag


def test_a_resource_still_named_by_a_channel_is_not_deleted(applied: Driver) -> None:
    target = applied.open()
    try:
        live = target.read()
        for kind, name in (("SmtpServer", "Relay"), ("EmailScript", "Support Script")):
            resource = live[(kind, name)]
            with pytest.raises(TargetError) as caught:
                target.apply(Operation("delete", kind, name, expected_etag=resource.etag))
            assert not isinstance(caught.value, ConflictError)
            assert f"{kind} '{name}' is still used by channel(s) Support" in str(caught.value)
        assert set(target.read()) == set(live)
    finally:
        target.close()


def test_a_rename_carries_the_channels_that_name_it_along(applied: Driver) -> None:
    target = applied.open()
    try:
        live = target.read()
        for kind, old, new in (
            ("SmtpServer", "Relay", "Relay 2"),
            ("EmailScript", "Support Script", "Help Script"),
        ):
            resource = live[(kind, old)]
            body = _body(target, resource, name=new)
            target.apply(Operation("rename", kind, new, old, body, resource.etag))
        after = target.read()
    finally:
        target.close()
    assert ("SmtpServer", "Relay") not in after
    assert after[("SmtpServer", "Relay 2")].data["host"] == "smtp.example.com"
    support = after[("EmailChannel", "Support")].data
    assert (support["outgoing"]["server"], support["script"]) == ("Relay 2", "Help Script")


def test_the_tenant_keeps_one_default_server_and_unique_addresses(applied: Driver) -> None:
    target = applied.open()
    try:
        live = target.read()
        relay = live[("SmtpServer", "Relay")]
        backup = _body(target, relay, name="Backup")
        target.apply(Operation("create", "SmtpServer", "Backup", body=backup))
        servers = target.read()
        assert servers[("SmtpServer", "Backup")].data["default"] is True
        assert servers[("SmtpServer", "Relay")].data["default"] is False
        # the new default reset the channel's own server (issue 12: the rule read literally)
        assert servers[("EmailChannel", "Support")].data["outgoing"] is None
        support = live[("EmailChannel", "Support")]
        twin = _body(target, support, name="Support Twin")
        with pytest.raises(TargetError) as caught:
            target.apply(Operation("create", "EmailChannel", "Support Twin", body=twin))
        assert "email support@example.com is used by 'Support'" in str(caught.value)
    finally:
        target.close()


# --- a new default SMTP server resets every channel's and agent's outgoing server ----------

AGENTS = """\
kind: SmtpServer
name: AcmeJets SMTP Server
host: smtp.acmejets.example
---
kind: Agent
name: Dana Agent
email: dana@acmejets.example
outgoing:
  server: Relay
  override: true
---
kind: Agent
name: Eli Agent
email: eli@acmejets.example
"""
NEW_DEFAULT = (
    "note: setting AcmeJets SMTP Server as default resets the outgoing server of 2 agents and "
    "2 channels; 2 of them are configured otherwise and are set back in this apply"
)
OUTSIDE = (
    "(its outgoing server is the tenant's default, {}: setting a default SMTP server "
    "outside channelsync resets the outgoing server of every channel and agent)"
)


@pytest.fixture
def with_agents(driver: Driver, workdir: Path, cli: Any) -> Driver:
    """The shared config plus two agents (one on Relay with override, one on the default)
    and a second SMTP server, applied."""
    (workdir / "channels.d" / "agents.yaml").write_text(AGENTS)
    _apply(cli, driver)
    _converged(cli, driver)
    return driver


def _make_acmejets_the_default(workdir: Path) -> None:
    relay = workdir / "channels.d" / "relay.yaml"
    relay.write_text(relay.read_text().replace("default: true\n", ""))
    agents = workdir / "channels.d" / "agents.yaml"
    agents.write_text(
        agents.read_text().replace(
            "smtp.acmejets.example\n", "smtp.acmejets.example\ndefault: true\n"
        )
    )


def test_a_new_default_resets_agents_and_channels_and_one_apply_sets_them_back(
    with_agents: Driver, workdir: Path, cli: Any
) -> None:
    driver = with_agents
    _make_acmejets_the_default(workdir)
    plan = _cli(cli, driver, "plan")
    assert NEW_DEFAULT in plan.out.splitlines()
    shown = json.loads(_cli(cli, driver, "plan", "--format", "json").out)
    assert [(c["kind"], c["name"], c.get("reset_by")) for c in shown["changes"]] == [
        ("SmtpServer", "Relay", None),
        ("SmtpServer", "AcmeJets SMTP Server", None),  # the default first, then what it resets
        ("EmailChannel", "Support", "AcmeJets SMTP Server"),
        ("Agent", "Dana Agent", "AcmeJets SMTP Server"),
    ]
    assert shown["default_reset"] == {
        "server": "AcmeJets SMTP Server",
        "resets": {"EmailChannel": 2, "Agent": 2},
        "set_back": 2,
        "message": NEW_DEFAULT.removeprefix("note: "),
    }
    # a saved plan keeps the reset: `show` renders it as plan did, in every format
    assert _cli(cli, driver, "plan", "--out", "reset-plan.json").code == 0
    for fmt in ("text", "json", "runbook"):
        made = _cli(cli, driver, "plan", "--format", fmt).out
        assert cli("show", "reset-plan.json", "--format", fmt).out in (made, plan.out), fmt
    assert "Apply complete: 4 updated." in _apply(cli, driver).out
    _converged(cli, driver)  # one apply: the set-backs went after the default change
    live = _live(driver)
    assert live[("SmtpServer", "AcmeJets SMTP Server")].data["default"] is True
    assert live[("Agent", "Dana Agent")].data["outgoing"] == {
        "server": "Relay",
        "override": True,
        "user": "dana@acmejets.example",
    }
    assert live[("EmailChannel", "Support")].data["outgoing"]["server"] == "Relay"
    assert live[("Agent", "Eli Agent")].data["outgoing"] is None  # follows the default


def test_the_runbook_lists_the_set_back_steps_in_the_console_s_words(
    with_agents: Driver, workdir: Path, cli: Any
) -> None:
    _make_acmejets_the_default(workdir)
    runbook = _cli(cli, with_agents, "plan", "--format", "runbook").out
    assert runbook.split("\n\n")[1] == (
        "Note: " + NEW_DEFAULT.removeprefix("note: ") + " (steps 3, 4); setting them back is "
        "harmless if the console kept them."
    )
    step = runbook.split("\n\n")[5]
    assert step.splitlines() == [
        '4. Set back the outgoing mail server of the agent "Dana Agent" (setting AcmeJets SMTP '
        "Server as default resets it).",
        '   a. From the Configuration Menu, open Users, and open "Dana Agent" in the list.',
        '   b. Set Outgoing Mail Server to "Relay".',
        "   c. Select Override Server Configuration.",
        '   d. Set User to "dana@acmejets.example".',
        "   e. Click Test connection and check that the connection to the mail server succeeds.",
        "   f. Click Save.",
        '   g. Ask "Dana Agent" to enter the password of their own mail account in Agent '
        "Console > Profile (channelsync holds no agent password).",  # once the agent is saved
    ]
    markdown = _cli(cli, with_agents, "plan", "--format", "markdown").out
    assert "> :information_source: " + NEW_DEFAULT.removeprefix("note: ") in markdown.splitlines()
    assert runbook.split("\n\n")[4].splitlines()[0] == (
        '3. Set back the outgoing mail server of the email channel "Support" (setting AcmeJets '
        "SMTP Server as default resets it)."
    )


def test_drift_explains_a_reset_by_a_default_set_outside_channelsync(
    with_agents: Driver, cli: Any
) -> None:
    target = with_agents.open()
    try:  # as the console would: another server made the default
        acme = target.read()[("SmtpServer", "AcmeJets SMTP Server")]
        body = _body(target, acme, default=True)
        target.apply(Operation("update", acme.kind, acme.name, body=body, expected_etag=acme.etag))
    finally:
        target.close()
    live = _live(with_agents)
    assert live[("Agent", "Dana Agent")].data["outgoing"] is None
    assert live[("EmailChannel", "Support")].data["outgoing"] is None
    drift = _cli(cli, with_agents, "drift")
    assert drift.code == 2
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in drift.out.split("\n\n")[1:-1]}
    why = "      " + OUTSIDE.format("AcmeJets SMTP Server")
    assert blocks['  ~ Agent "Dana Agent"'][0] == why
    assert blocks['  ~ EmailChannel "Support"'][0] == why
    assert blocks['  ~ SmtpServer "AcmeJets SMTP Server"'] == ["      ~ default: true -> false"]
    _apply(cli, with_agents)  # sets Relay back as the default, then the two back on Relay
    _converged(cli, with_agents)


def test_list_kind_agent_shows_the_outgoing_server_with_its_mode(
    with_agents: Driver, cli: Any
) -> None:
    for live in ((), ("--live",)):
        result = _cli(cli, with_agents, "list", "--kind", "agent", *live)
        assert result.out.splitlines() == [
            "USER NAME   EMAIL ADDRESS          OUTGOING MAIL SERVER",
            "Dana Agent  dana@acmejets.example  Relay (override)",
            "Eli Agent   eli@acmejets.example   Relay (tenant default)",
            "2 agent(s)",
        ]
    rows = json.loads(_cli(cli, with_agents, "list", "--kind", "agent", "--format", "json").out)
    assert rows[1] == {
        "name": "Eli Agent",
        "email": "eli@acmejets.example",
        "outgoing": "Relay (tenant default)",
        "outgoing_server": "Relay",
        "outgoing_mode": "tenant default",
    }
    filtered = _cli(cli, with_agents, "list", "--kind", "agent", "--filter", "outgoing=*override*")
    assert filtered.out.splitlines()[1:] == [
        "Dana Agent  dana@acmejets.example  Relay (override)",
        "1 agent(s)",
    ]
    bad = _cli(cli, with_agents, "list", "--kind", "agent", "--filter", "script=x")
    assert bad.code == 1
    assert (
        "bad filter 'script=x': use COLUMN=VALUE with a column of name, email, outgoing" in bad.err
    )


def test_agents_export_and_plan_again_without_changes(
    with_agents: Driver, workdir: Path, cli: Any
) -> None:
    result = _cli(cli, with_agents, "export", "--dir", "exported")
    assert result.code == 0, result.err
    dana = (workdir / "exported" / "agent-dana-agent.yaml").read_text().splitlines()
    assert dana == [
        f"# exported by channelsync from {with_agents.url}",
        "kind: Agent",
        "name: Dana Agent",
        "email: dana@acmejets.example",
        "outgoing:",
        "  server: Relay",
        "  override: true",  # the user is the agent's address, the default: left out
    ]
    eli = (workdir / "exported" / "agent-eli-agent.yaml").read_text().splitlines()
    assert eli[1:] == ["kind: Agent", "name: Eli Agent", "email: eli@acmejets.example"]
    again = _cli(cli, with_agents, "plan", "--dir", "exported", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err


def _rename_relay(workdir: Path) -> None:
    """Relay (the default) renamed to Relay 2, and the channel and the agent that use it."""
    folder = workdir / "channels.d"
    for name, old, new in (
        ("relay.yaml", "name: Relay\n", "name: Relay 2\nrenamed_from: Relay\n"),
        ("support.yaml", "server: Relay\n", "server: Relay 2\n"),
        ("agents.yaml", "server: Relay\n", "server: Relay 2\n"),
    ):
        (folder / name).write_text((folder / name).read_text().replace(old, new))


def test_renaming_the_default_server_resets_nothing_and_its_agents_follow_it(
    with_agents: Driver, workdir: Path, cli: Any
) -> None:
    _rename_relay(workdir)
    plan = _cli(cli, with_agents, "plan").out
    assert plan.splitlines()[2] == (
        '  -> SmtpServer "Relay 2" (renamed from "Relay"; 1 agent and 1 channel follow it)'
    )
    assert "note:" not in plan  # a renamed default is no new default
    runbook = _cli(cli, with_agents, "plan", "--format", "runbook").out
    assert (
        "   c. The 1 agent(s) and 1 channel(s) that use it follow the new name by themselves."
        in (runbook.splitlines())
    )
    _apply(cli, with_agents)
    _converged(cli, with_agents)
    assert _live(with_agents)[("Agent", "Dana Agent")].data["outgoing"]["server"] == "Relay 2"


def test_a_new_default_and_a_rename_in_one_apply_set_back_the_followers_too(
    with_agents: Driver, workdir: Path, cli: Any
) -> None:
    _rename_relay(workdir)
    _make_acmejets_the_default(workdir)
    shown = json.loads(_cli(cli, with_agents, "plan", "--format", "json").out)
    assert shown["summary"] == {"create": 0, "update": 3, "rename": 1, "delete": 0, "no_op": 3}
    assert [(c["name"], c["action"], c.get("reset_by")) for c in shown["changes"]] == [
        ("Relay 2", "rename", None),
        ("AcmeJets SMTP Server", "update", None),
        ("Support", "update", "AcmeJets SMTP Server"),
        ("Dana Agent", "update", "AcmeJets SMTP Server"),
    ]
    _apply(cli, with_agents)
    _converged(cli, with_agents)
    assert _live(with_agents)[("Agent", "Dana Agent")].data["outgoing"]["server"] == "Relay 2"


def test_no_default_left_makes_vcc_internal_the_default_and_one_apply_sets_them_back(
    with_agents: Driver, workdir: Path, cli: Any
) -> None:
    relay = workdir / "channels.d" / "relay.yaml"
    relay.write_text(relay.read_text().replace("default: true\n", ""))
    plan = _cli(cli, with_agents, "plan").out
    assert (
        "note: setting VCC Internal as default resets the outgoing server of 2 agents and 2 "
        "channels; 2 of them are configured otherwise and are set back in this apply"
    ) in plan.splitlines()
    _apply(cli, with_agents)
    _converged(cli, with_agents)


def test_deleting_the_default_server_sets_back_after_the_delete(
    with_agents: Driver, workdir: Path, cli: Any
) -> None:
    folder = workdir / "channels.d"
    _make_acmejets_the_default(workdir)
    _apply(cli, with_agents)
    for name in ("support.yaml", "agents.yaml"):  # everyone on Relay, and AcmeJets goes
        path = folder / name
        path.write_text(path.read_text().replace("server: AcmeJets SMTP Server", "server: Relay"))
    agents = folder / "agents.yaml"
    agents.write_text(agents.read_text().split("---\n", 1)[1])
    shown = json.loads(_cli(cli, with_agents, "plan", "--format", "json").out)
    assert [(c["name"], c["action"]) for c in shown["changes"]] == [
        ("AcmeJets SMTP Server", "delete"),
        ("Support", "update"),
        ("Dana Agent", "update"),
    ]
    assert shown["default_reset"]["server"] == "VCC Internal"
    _apply(cli, with_agents, "--allow-delete")
    _converged(cli, with_agents)


def test_a_server_renamed_as_it_becomes_the_default_sets_back_its_own_agents(
    with_agents: Driver, workdir: Path, cli: Any
) -> None:
    """Dana on AcmeJets; AcmeJets renamed to AcmeJets 2 and made the default in one apply:
    the rename carries Dana along, the new default resets her, the set-back names the new
    name; one apply converges."""
    agents = workdir / "channels.d" / "agents.yaml"
    agents.write_text(
        agents.read_text().replace("  server: Relay\n", "  server: AcmeJets SMTP Server\n")
    )
    _apply(cli, with_agents)
    _make_acmejets_the_default(workdir)
    agents.write_text(
        agents.read_text()
        .replace(
            "name: AcmeJets SMTP Server\n",
            "name: AcmeJets 2\nrenamed_from: AcmeJets SMTP Server\n",
        )
        .replace("  server: AcmeJets SMTP Server\n", "  server: AcmeJets 2\n")
    )
    shown = json.loads(_cli(cli, with_agents, "plan", "--format", "json").out)
    assert shown["default_reset"]["server"] == "AcmeJets 2"
    assert [(c["name"], c["action"], c.get("reset_by")) for c in shown["changes"]] == [
        ("Relay", "update", None),
        ("AcmeJets 2", "rename", None),
        ("Support", "update", "AcmeJets 2"),
        ("Dana Agent", "update", "AcmeJets 2"),
    ]
    assert [c.get("set_back_only") for c in shown["changes"]][2:] == [True, True]
    _apply(cli, with_agents)
    _converged(cli, with_agents)
    live = _live(with_agents)
    assert live[("Agent", "Dana Agent")].data["outgoing"]["server"] == "AcmeJets 2"
    assert live[("SmtpServer", "AcmeJets 2")].data["default"] is True


def test_agents_that_swap_addresses_or_take_a_deleted_one_s_converge_in_one_apply(
    with_agents: Driver, workdir: Path, cli: Any
) -> None:
    """The tenant keeps agents' addresses unique as it does channels': Dana and Eli swap
    theirs (one moves through a temporary address), Gus takes the address of Fay, who goes
    (her delete first)."""
    agents = workdir / "channels.d" / "agents.yaml"
    fay = "---\nkind: Agent\nname: Fay Agent\nemail: fay@acmejets.example\n"
    agents.write_text(agents.read_text() + fay)
    _apply(cli, with_agents)
    swapped = (
        agents.read_text()
        .replace("dana@acmejets.example", "SWAP")
        .replace("eli@acmejets.example", "dana@acmejets.example")
        .replace("SWAP", "eli@acmejets.example")
        .replace("name: Fay Agent\n", "name: Gus Agent\n")
    )
    agents.write_text(swapped)
    shown = json.loads(_cli(cli, with_agents, "plan", "--format", "json").out)
    order = [(c["name"], c["action"], c["temporary_email"] is not None) for c in shown["changes"]]
    assert order[0] == ("Fay Agent", "delete", False)  # her address is free before Gus's create
    assert sorted(order[1:]) == [
        ("Dana Agent", "update", True),
        ("Eli Agent", "update", False),
        ("Gus Agent", "create", False),
    ]
    applied = _apply(cli, with_agents, "--allow-delete")
    assert "(another agent took its address)" in applied.out
    _converged(cli, with_agents)
    live = _live(with_agents)
    assert live[("Agent", "Dana Agent")].data["email"] == "eli@acmejets.example"
    assert live[("Agent", "Gus Agent")].data["email"] == "fay@acmejets.example"


def test_a_channel_and_an_agent_moving_off_a_deleted_server_converge_in_one_apply(
    with_agents: Driver, workdir: Path, cli: Any
) -> None:
    """The creates and updates of channels and agents go before the deletes: the server they
    move off is deleted once nothing uses it (apply stopped at 'still used by')."""
    folder = workdir / "channels.d"
    support, agents = folder / "support.yaml", folder / "agents.yaml"
    agents.write_text(
        agents.read_text().replace("  server: Relay\n", "  server: AcmeJets SMTP Server\n")
    )
    support.write_text(
        support.read_text().replace("server: Relay\n", "server: AcmeJets SMTP Server\n")
    )
    _apply(cli, with_agents)
    for path in (support, agents):
        path.write_text(
            path.read_text().replace("server: AcmeJets SMTP Server\n", "server: Relay\n")
        )
    agents.write_text(agents.read_text().split("---\n", 1)[1])  # AcmeJets goes
    shown = json.loads(_cli(cli, with_agents, "plan", "--format", "json").out)
    assert [(c["name"], c["action"]) for c in shown["changes"]] == [
        ("Support", "update"),
        ("Dana Agent", "update"),
        ("AcmeJets SMTP Server", "delete"),
    ]
    _apply(cli, with_agents, "--allow-delete")
    _converged(cli, with_agents)
