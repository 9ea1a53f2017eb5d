"""export (live state -> YAML, edited in place) and list (the console's channel list)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.tenant_config import BASE, apply, edit_live, plan_json, write


def test_export_into_an_empty_dir_then_plan_is_a_no_op(tenant: Path, cli: Any) -> None:
    apply(cli)
    result = cli("export", "--dir", "exported")
    assert result.code == 0
    assert "wrote exported/emailchannel-support.yaml" in result.out
    assert "  SUPPORT_INCOMING_PASSWORD  (EmailChannel 'Support' incoming.password)" in result.out
    text = (tenant / "exported" / "emailchannel-support.yaml").read_text()
    assert "port:" not in text  # defaults are left out
    assert "password: ${env:SUPPORT_INCOMING_PASSWORD}" in text
    plan = plan_json(cli, "--dir", "exported")
    assert plan["summary"] == {"create": 0, "update": 0, "rename": 0, "delete": 0, "no_op": 4}


def test_export_updates_files_in_place_keeping_comments(tenant: Path, cli: Any) -> None:
    apply(cli)
    relay = tenant / "channels.d" / "relay.yaml"
    relay.write_text(relay.read_text().replace("host:", "# the relay host\nhost:"))

    def edit(body: dict[str, Any]) -> None:
        body["host"] = "smtp2.example.com"
        body["port"] = 2525

    edit_live(tenant, "Relay", edit)
    assert cli("export").code == 0
    assert relay.read_text() == (
        "# our relay\n"
        "kind: SmtpServer\n"
        "name: Relay\n"
        "# the relay host\n"
        "host: smtp2.example.com\n"
        "user: relay@example.com\n"
        "password: ${env:RELAY_PASSWORD}\n"
        "default: true\n"
        "port: 2525\n"
    )
    assert plan_json(cli)["summary"]["no_op"] == 4


def test_export_leaves_files_in_sync_untouched_byte_for_byte(tenant: Path, cli: Any) -> None:
    # spellings a ruamel.yaml round-trip would rewrite: only a file that differs is edited
    write(
        tenant,
        {"script.yaml": "kind:   EmailScript\nname: Support Script\nqueues:\n- Support\n- Sales\n"},
    )
    apply(cli)
    script = tenant / "channels.d" / "script.yaml"
    before = script.read_text(), script.stat().st_mtime_ns
    edit_live(tenant, "Relay", lambda body: body.update(port=2525))
    result = cli("export")
    assert result.code == 0
    assert result.out.splitlines() == ["wrote channels.d/relay.yaml"]
    assert (script.read_text(), script.stat().st_mtime_ns) == before


def test_export_keeps_explicit_fields_explicit_and_removes_gone_resources(
    tenant: Path, cli: Any
) -> None:
    apply(cli)
    write(tenant, {"extra.yaml": "kind: EmailScript\nname: Not Live\n"})
    edit_live(tenant, "Support", lambda body: body.update(enabled=False))
    result = cli("export", "--prune")
    assert "removed EmailScript 'Not Live' (not in the tenant)" in result.out
    assert not (tenant / "channels.d" / "extra.yaml").exists()
    assert "enabled: false\n" in (tenant / "channels.d" / "support.yaml").read_text()
    assert plan_json(cli)["summary"]["no_op"] == 4


def test_list_shows_the_effective_outgoing_server(tenant: Path, cli: Any) -> None:
    result = cli("list")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split("  ")[0] == "CHANNEL NAME"
    assert "Relay (tenant default)" in lines[1]
    assert "Relay (override)" in lines[2]
    assert lines[-1] == "2 channel(s)"


def test_list_filters_and_sorts(tenant: Path, cli: Any) -> None:
    rows = json.loads(cli("list", "--filter", "enabled=true", "--format", "json").out)
    assert [r["name"] for r in rows] == ["Support"]
    rows = json.loads(
        cli("list", "--filter", "outgoing=Relay", "--sort=-name", "--format", "json").out
    )
    assert [r["name"] for r in rows] == ["Support", "Exchange"]
    assert cli("list", "--filter", "outgoing=VCC Internal").out.endswith("0 channel(s)\n")


def test_list_live_reads_the_target(tenant: Path, cli: Any) -> None:
    apply(cli)
    assert cli("list", "--live").out.endswith("2 channel(s)\n")


def test_list_rejects_unknown_columns(tenant: Path, cli: Any) -> None:
    result = cli("list", "--filter", "colour=red")
    assert result.code == 1
    assert "bad filter 'colour=red': use COLUMN=VALUE with a column of name, email" in result.err


def test_export_keeps_flow_lists_flow(tenant: Path, cli: Any) -> None:
    apply(cli)
    edit_live(tenant, "Support Script", lambda body: body.update(queues=["Support", "Sales"]))
    assert cli("export").code == 0
    text = (tenant / "channels.d" / "script.yaml").read_text()
    assert "queues: [Support, Sales]\n" in text


def test_list_filter_values_are_checked(tenant: Path, cli: Any) -> None:
    assert cli("list", "--filter", "enabled=yes").out.endswith("1 channel(s)\n")
    result = cli("list", "--filter", "enabled=maybe")
    assert result.code == 1
    assert "bad filter 'enabled=maybe': enabled is true or false" in result.err


def _names(cli: Any, *args: str) -> list[str]:
    result = cli("list", "--format", "json", *args)
    assert result.code == 0, result.err
    return [r["name"] for r in json.loads(result.out)]


def test_list_filter_matches_the_value_as_shown_or_the_server_name(tenant: Path, cli: Any) -> None:
    assert _names(cli, "--filter", "outgoing=Relay (tenant default)") == ["Exchange"]
    assert _names(cli, "--filter", "outgoing=relay (override)") == ["Support"]
    assert _names(cli, "--filter", "outgoing=Relay") == ["Exchange", "Support"]
    assert _names(cli, "--filter", "enabled=no") == ["Exchange"]


def test_list_filter_takes_wildcards_like_ignore_rules(tenant: Path, cli: Any) -> None:
    assert _names(cli, "--filter", "outgoing=*default*") == ["Exchange"]
    assert _names(cli, "--filter", "email=*@example.com") == ["Support"]
    assert _names(cli, "--filter", "name=Ex?hange") == ["Exchange"]
    assert _names(cli, "--filter", "port=99*") == ["Exchange", "Support"]
    assert _names(cli, "--filter", "incoming=outlook.*", "--filter", "enabled=false") == [
        "Exchange"
    ]


def test_list_sorts_naturally(tenant: Path, cli: Any) -> None:
    for n in (10, 2, 1):
        write(
            tenant,
            {
                f"team{n}.yaml": BASE["support.yaml"]
                .replace("name: Support\n", f"name: Team {n}\n")
                .replace("email: support@", f"email: team{n}@")
            },
        )
    assert _names(cli, "--filter", "name=Team*") == ["Team 1", "Team 2", "Team 10"]
    assert _names(cli, "--filter", "name=team*", "--sort=-name") == ["Team 10", "Team 2", "Team 1"]


def test_list_json_has_the_server_and_its_mode_apart(tenant: Path, cli: Any) -> None:
    rows = json.loads(cli("list", "--format", "json").out)
    assert [
        {k: r[k] for k in ("name", "outgoing", "outgoing_server", "outgoing_mode")} for r in rows
    ] == [
        {
            "name": "Exchange",
            "outgoing": "Relay (tenant default)",
            "outgoing_server": "Relay",
            "outgoing_mode": "tenant default",
        },
        {
            "name": "Support",
            "outgoing": "Relay (override)",
            "outgoing_server": "Relay",
            "outgoing_mode": "override",
        },
    ]


def test_export_restores_a_deleted_file_that_others_refer_to(tenant: Path, cli: Any) -> None:
    apply(cli)
    (tenant / "channels.d" / "script.yaml").unlink()
    (tenant / "channels.d" / "relay.yaml").unlink()
    result = cli("export")
    assert result.code == 0, result.err
    assert result.err.splitlines()[-1] == (
        "note: exporting anyway: the tenant's resources are written back, which may resolve "
        "these 2 reference error(s); run 'channelsync validate' after"
    )
    assert "error: script 'Support Script' is not defined" in result.err
    assert "wrote channels.d/emailscript-support-script.yaml" in result.out.splitlines()
    assert cli("validate").code == 0
    assert plan_json(cli)["summary"]["no_op"] == 4


def test_export_still_refuses_other_config_errors(tenant: Path, cli: Any) -> None:
    (tenant / "channels.d" / "script.yaml").unlink()
    (tenant / "channels.d" / "broken.yaml").write_text("kind: EmailChannel\nname: X\n")
    result = cli("export")
    assert result.code == 1
    assert result.err.splitlines()[-1] == (
        "error: fix these first: export edits the config files in place and must know which "
        "resource each document defines"
    )


def test_export_binds_the_placeholders_it_writes_keeping_the_bindings_file(
    tenant: Path, cli: Any
) -> None:
    from channelsync.bindings import load

    apply(cli)
    bindings = tenant / "channelsync.secrets.yaml"
    bindings.write_text(
        "# reviewed bindings\nbindings:\n"
        "  - secret: ${env:SUPPORT_INCOMING_PASSWORD}  # set by hand\n"
        '    endpoints: ["imap2.example.com:993"]\n'
    )
    result = cli("export", "--dir", "exported", "--secret-bindings", "channelsync.secrets.yaml")
    assert result.code == 0, result.err
    assert "wrote channelsync.secrets.yaml" in result.out
    assert bindings.read_text() == (
        "# reviewed bindings\nbindings:\n"
        "  - secret: ${env:SUPPORT_INCOMING_PASSWORD}  # set by hand\n"
        '    endpoints: ["imap2.example.com:993", "imap.example.com:993"]\n'
        "  - secret: ${env:EXCHANGE_INCOMING_OAUTH_CLIENT_SECRET}\n"
        '    endpoints: ["https://login.microsoftonline.com", "outlook.office365.com:993"]\n'
        "  - secret: ${env:SUPPORT_OUTGOING_PASSWORD}\n"
        '    endpoints: ["smtp.example.com:587"]\n'
        "  - secret: ${env:RELAY_PASSWORD}\n"
        '    endpoints: ["smtp.example.com:587"]\n'
    )
    assert load(bindings, tenant).bindings  # a valid bindings file
    again = cli("export", "--dir", "exported", "--secret-bindings", "channelsync.secrets.yaml")
    assert "channelsync.secrets.yaml" not in again.out  # nothing new to bind


def test_export_refuses_a_broken_bindings_file_before_writing(tenant: Path, cli: Any) -> None:
    apply(cli)
    (tenant / "bad.yaml").write_text("bindings:\n  - secret: literal\n    endpoints: [h:1]\n")
    result = cli("export", "--dir", "exported", "--secret-bindings", "bad.yaml")
    assert result.code == 1
    assert result.err == (
        "bad.yaml:2:13: error: secret: secrets must be references like ${env:NAME} or "
        "${file:PATH}, not literal values; move the value into an environment variable or a "
        "file\nerror: fix bad.yaml first; nothing was exported\n"
    )
    assert not (tenant / "exported").exists()


def test_export_only_adopts_chosen_resources_and_names_what_they_need(
    tenant: Path, cli: Any
) -> None:
    apply(cli)
    folder = tenant / "channels.d"
    (folder / "support.yaml").unlink()
    (folder / "relay.yaml").unlink()
    # a file where the adopted resource would go: never overwritten
    taken = folder / "emailchannel-support.yaml"
    taken.write_text(BASE["exchange.yaml"])
    (folder / "exchange.yaml").unlink()
    before = {p.name: p.read_text() for p in folder.iterdir()}
    result = cli("export", "--only", "Support", "Support Script")
    assert result.code == 0, result.err
    assert result.out == (
        "wrote channels.d/emailchannel-support-2.yaml\n"
        "already in the config, left as it is: EmailScript 'Support Script' "
        "(channels.d/script.yaml)\n"
        "note: EmailChannel 'Support' needs SmtpServer 'Relay' (outgoing.server), which the "
        "config does not have: adopt it too with --only 'SmtpServer/Relay'\n"
        "\n"
        "Set these secrets before plan or apply (their values never leave the tenant):\n"
        "  SUPPORT_INCOMING_PASSWORD  (EmailChannel 'Support' incoming.password)\n"
        "  SUPPORT_OUTGOING_PASSWORD  (EmailChannel 'Support' outgoing.password)\n"
    )
    assert {p.name: p.read_text() for p in folder.iterdir() if p.name in before} == before
    assert cli("export", "--only", "SmtpServer/Relay").out.startswith(
        "wrote channels.d/smtpserver-relay.yaml\n"
    )
    plan = plan_json(cli)
    assert plan["summary"] == {"create": 0, "update": 0, "rename": 0, "delete": 0, "no_op": 4}


def test_export_only_refuses_an_unknown_name_with_the_nearest_one(tenant: Path, cli: Any) -> None:
    apply(cli)
    before = sorted(p.name for p in (tenant / "channels.d").iterdir())
    result = cli("export", "--only", "Suport", "SmtpServer/relay")
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "error: --only: 'Suport' matches no resource (did you mean 'Support'?); "
        "'SmtpServer/relay' matches no resource (did you mean 'SmtpServer/Relay'?). "
        "Give a resource name (or Kind/NAME) of the tenant\n"
    )
    assert sorted(p.name for p in (tenant / "channels.d").iterdir()) == before
    both = cli("export", "--only", "Support", "--prune")
    assert (both.code, both.err) == (
        1,
        "error: --only adopts chosen resources and touches nothing else; --prune cannot go "
        "with it\n",
    )
