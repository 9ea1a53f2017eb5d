"""Environments: channelsync.yaml, --env, ${var:NAME} and patch: true (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import envrepo


@pytest.fixture
def repo(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in envrepo.SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CHANNELSYNC_TARGET", raising=False)
    monkeypatch.delenv("CHANNELSYNC_ENV", raising=False)
    return envrepo.write(workdir)


def _plan(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("plan", "--format", "json", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)  # type: ignore[no-any-return]


def _fields(plan: dict[str, Any], name: str) -> dict[str, Any]:
    change = next(c for c in plan["changes"] if c["name"] == name)
    return {f["path"]: f["after"] for f in change["fields"]}


# ---- the project file and --env ---------------------------------------------------------------


def test_env_selects_the_dirs_target_and_variables_of_an_environment(repo: Path, cli: Any) -> None:
    prod = _plan(cli, "--env", "prod")
    assert prod["target"] == "sqlite:///prod.db"
    support = _fields(prod, "Support")
    assert support["incoming.server"] == "imap.acme.example"
    assert support["incoming.port"] == 993  # a whole-value reference keeps the YAML type
    assert support["enabled"] is True
    assert support["incoming.user"] == "support@imap.acme.example"  # inside text: text
    assert _fields(prod, "Support Script") == {"queues": ["Support", "Escalations"]}
    assert {c["name"] for c in prod["changes"]} == {"Support", "Support Script"}


def test_default_environment_and_channelsync_env_choose_when_env_is_not_given(
    repo: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _plan(cli)["target"] == "sqlite:///staging.db"
    monkeypatch.setenv("CHANNELSYNC_ENV", "prod")
    assert _plan(cli)["target"] == "sqlite:///prod.db"
    assert _plan(cli, "--env", "staging")["target"] == "sqlite:///staging.db"


def test_explicit_dir_and_target_win_over_the_environment(repo: Path, cli: Any) -> None:
    plan = _plan(cli, "--env", "prod", "--target", "sqlite:///other.db")
    assert plan["target"] == "sqlite:///other.db"
    plan = _plan(cli, "--env", "prod", "--dir", "channels.d/common")
    assert plan["target"] == "sqlite:///prod.db"
    assert _fields(plan, "Support Script") == {"queues": ["Support"]}  # no patch folder
    assert _fields(plan, "Support")["incoming.server"] == "imap.acme.example"  # its variables


def test_unknown_environment_lists_the_known_ones_with_a_guess(repo: Path, cli: Any) -> None:
    result = cli("validate", "--env", "prd")
    assert result.code == 1
    assert result.err == (
        "error: --env prd: no such environment in channelsync.yaml (did you mean 'prod'?); "
        "known: staging, prod\n"
    )


def test_env_without_a_project_file_is_an_error_and_nothing_else_changes(
    workdir: Path, cli: Any
) -> None:
    (workdir / "channels.d" / "s.yaml").write_text("kind: EmailScript\nname: S\n")
    assert cli("validate").code == 0
    result = cli("validate", "--env", "prod")
    assert result.code == 1
    assert result.err == (
        "error: --env prod: there is no channelsync.yaml in this folder; run channelsync from "
        "the folder that holds it, or drop the environment\n"
    )


def test_a_project_file_without_default_needs_env_or_dir(repo: Path, cli: Any) -> None:
    text = (repo / "channelsync.yaml").read_text().replace("default_environment: staging\n", "")
    (repo / "channelsync.yaml").write_text(text)
    result = cli("plan")
    assert result.code == 1
    assert result.err == (
        "error: channelsync.yaml defines the environments staging, prod and no "
        "default_environment: choose one with --env NAME (or $CHANNELSYNC_ENV), or pass --dir\n"
    )
    assert cli("validate", "--dir", "channels.d/staging").code == 0


def test_project_file_errors_are_positioned_like_channel_files(repo: Path, cli: Any) -> None:
    (repo / "channelsync.yaml").write_text(
        "environments:\n"
        "  staging:\n"
        "    dirs: [channels.d/common]\n"
        "    targt: sqlite:///x.db\n"
        "    variables: {host: [1], 9bad: 1}\n"
        "  bad name: {}\n"
    )
    result = cli("plan")  # validate lists them in its formats on stdout (test_json_errors)
    assert result.code == 1
    assert result.err.splitlines() == [
        "channelsync.yaml:4:5: error: unknown field 'targt' in environments.staging "
        "(did you mean 'target'?)",
        "channelsync.yaml:5:23: error: environments.staging.variables.host: expected text, "
        "a number or true/false, got a list",
        "channelsync.yaml:5:28: error: a variable name is letters, digits and '_', not "
        "starting with a digit, not '9bad'",
        "channelsync.yaml:6:3: error: an environment name is letters, digits, '_', '.' or '-' "
        "(GitHub's environment names), not 'bad name'",
        "error: channelsync.yaml has 4 error(s); fix it or remove it",
    ]


def test_default_environment_must_name_an_environment(repo: Path, cli: Any) -> None:
    text = (repo / "channelsync.yaml").read_text().replace("default_environment: staging", "")
    (repo / "channelsync.yaml").write_text(text + "default_environment: prd\n")
    result = cli("validate")  # in validate's own report, on stdout
    assert result.out.splitlines()[0] == (
        "channelsync.yaml:12:22: error: default_environment 'prd' is not one of the "
        "environments (did you mean 'prod'?); known: staging, prod"
    )


def test_the_project_schema_accepts_the_example_and_is_generated(repo: Path) -> None:
    from jsonschema import Draft202012Validator

    from channelsync.schema import PROJECT, all_schemas
    from channelsync.yamlsource import read_source

    shipped = Path(__file__).resolve().parent.parent / "schemas" / PROJECT
    schema = json.loads(shipped.read_text())
    assert schema == all_schemas()[PROJECT]
    data = read_source(str(repo / "channelsync.yaml"), "x").documents[0].data
    assert list(Draft202012Validator(schema).iter_errors(data)) == []
    assert schema["properties"]["environments"]["description"]


# ---- ${var:NAME} ------------------------------------------------------------------------------


def _channel(repo: Path, **fields: str) -> None:
    body = envrepo.FILES["channels.d/common/support.yaml"]
    for key, value in fields.items():
        body = body.replace(key, value)
    (repo / "channels.d/common/support.yaml").write_text(body)


def test_undefined_variable_points_at_the_reference_and_names_the_environment(
    repo: Path, cli: Any
) -> None:
    _channel(repo, **{"server: ${var:imap_host}": "server: ${var:imap_hots}"})
    result = cli("validate", "--env", "prod")
    assert result.code == 1
    assert result.out.splitlines()[0] == (
        "channels.d/common/support.yaml:7:11: error: incoming.server: variable 'imap_hots' is "
        "not defined in environment 'prod' (channelsync.yaml) (did you mean 'imap_host'?); "
        "defined: imap_host, enabled, port"
    )


def test_a_reference_inside_text_is_pointed_at_where_it_is_written(repo: Path, cli: Any) -> None:
    _channel(repo, **{"support@${var:imap_host}": "support@${var:nope}"})
    result = cli("validate", "--env", "prod")
    assert result.out.splitlines()[0].startswith(
        "channels.d/common/support.yaml:10:17: error: incoming.user: variable 'nope' is not "
        "defined in environment 'prod'"
    )


def test_a_variable_is_checked_with_its_type(repo: Path, cli: Any) -> None:
    text = (repo / "channelsync.yaml").read_text().replace("port: 993", 'port: "993"')
    (repo / "channelsync.yaml").write_text(text)
    result = cli("validate", "--env", "prod")
    assert result.code == 1
    assert result.out.splitlines()[0] == (
        "channels.d/common/support.yaml:9:9: error: incoming.port: expected a whole number, "
        "got text (from ${var:port} of environment 'prod')"
    )
    assert cli("validate", "--env", "staging").code == 0


def test_a_defined_variable_that_nothing_uses_is_a_warning(repo: Path, cli: Any) -> None:
    text = (repo / "channelsync.yaml").read_text().replace("port: 993}", "port: 993, old: 1}")
    (repo / "channelsync.yaml").write_text(text)
    result = cli("validate", "--env", "prod")
    assert result.code == 0
    assert result.out.splitlines()[0] == (
        "channelsync.yaml:10:73: warning: variable 'old' of environment 'prod' is not used by "
        "any resource; remove it, or use it as ${var:old}"
    )


def test_a_variable_cannot_stand_for_a_secret_a_name_or_a_kind(repo: Path, cli: Any) -> None:
    _channel(
        repo,
        **{
            "password: ${env:SUPPORT_IMAP_PASSWORD}": "password: ${var:imap_host}",
            "name: Support": "name: ${var:imap_host}",
        },
    )
    result = cli("validate", "--env", "prod")
    assert result.code == 1
    assert result.out.splitlines()[:2] == [
        "channels.d/common/support.yaml:2:7: error: name cannot be a variable: it identifies "
        "the resource in every environment; write it out (the other fields may use "
        "${var:NAME})",
        "channels.d/common/support.yaml:11:13: error: incoming.password: a secret cannot come "
        "from a variable (${var:imap_host}); secrets stay references like ${env:NAME} or "
        "${file:PATH}",
    ]


def test_a_reference_without_an_environment_says_how_to_choose_one(workdir: Path, cli: Any) -> None:
    (workdir / "channels.d" / "s.yaml").write_text(
        "kind: EmailScript\nname: S\nqueues:\n  - ${var:queue}\n"
    )
    result = cli("validate")
    assert result.out.splitlines()[0] == (
        "channels.d/s.yaml:4:5: error: queues[0]: ${var:queue} needs an environment: "
        "variables are defined per environment in channelsync.yaml (choose one with --env NAME)"
    )


# ---- patch: true ------------------------------------------------------------------------------


def test_patch_merges_mappings_replaces_lists_and_null_removes(repo: Path, cli: Any) -> None:
    (repo / "channels.d/prod/support.yaml").write_text(
        "kind: EmailChannel\n"
        "name: Support\n"
        "patch: true\n"
        "incoming:\n"
        "  port: null\n"  # back to the protocol's default
        "  protocol: pop3-ssl\n"
        "  server: pop.acme.example\n"
    )
    support = _fields(_plan(cli, "--env", "prod"), "Support")
    assert support["incoming.protocol"] == "pop3-ssl"
    assert support["incoming.port"] == 995  # the default of the patched protocol
    assert support["incoming.server"] == "pop.acme.example"
    assert support["incoming.user"] == "support@imap.acme.example"  # kept from the base
    assert support["enabled"] is True


def test_errors_in_a_merged_resource_point_at_the_file_that_set_the_value(
    repo: Path, cli: Any
) -> None:
    (repo / "channels.d/prod/support.yaml").write_text(
        "kind: EmailChannel\nname: Support\npatch: true\nincoming:\n  port: 0\n"
    )
    result = cli("validate", "--env", "prod")
    assert result.code == 1
    assert result.out.splitlines()[0] == (
        "channels.d/prod/support.yaml:5:9: error: incoming.port: port 0 is outside 1-65535"
    )
    (repo / "channels.d/prod/support.yaml").write_text(
        "kind: EmailChannel\nname: Support\npatch: true\noutgoing:\n  server: Relay\n"
    )
    result = cli("validate", "--env", "prod")  # a rule's error, at the value the patch set
    assert result.out.splitlines()[0].startswith(
        "channels.d/prod/support.yaml:5:11: error: SMTP server 'Relay' is not defined"
    )


def test_a_patch_without_a_base_is_an_error(repo: Path, cli: Any) -> None:
    (repo / "channels.d/prod/new.yaml").write_text("kind: EmailScript\nname: New\npatch: true\n")
    result = cli("validate", "--env", "prod")
    assert result.code == 1
    assert result.out.splitlines()[0] == (
        "channels.d/prod/new.yaml:2:7: error: patch of EmailScript 'New' has no base: no "
        "earlier folder of environment 'prod' defines it (earlier: channels.d/common); define "
        "it there, or remove 'patch: true'"
    )


def test_two_definitions_without_patch_stay_a_duplicate_name(repo: Path, cli: Any) -> None:
    text = envrepo.FILES["channels.d/prod/script.yaml"].replace("patch: true\n", "")
    (repo / "channels.d/prod/script.yaml").write_text(text)
    result = cli("validate", "--env", "prod")
    assert result.code == 1
    assert result.out.splitlines()[0] == (
        "channels.d/prod/script.yaml:2:7: error: duplicate EmailScript name 'Support Script' "
        "(first defined at channels.d/common/script.yaml:2:7)"
    )


def test_patch_must_be_true_or_false(repo: Path, cli: Any) -> None:
    (repo / "channels.d/prod/script.yaml").write_text(
        "kind: EmailScript\nname: Support Script\npatch: yes please\n"
    )
    result = cli("validate", "--env", "prod")
    assert result.out.splitlines()[0] == (
        "channels.d/prod/script.yaml:3:8: error: patch: expected true or false, got text"
    )


def test_export_refuses_an_environment_of_several_folders(repo: Path, cli: Any) -> None:
    result = cli("export", "--env", "prod")
    assert result.code == 1
    assert result.err == (
        "error: export edits the files of one folder, and environment 'prod' has several "
        "folders, whose values it would write over the references; pass --dir FOLDER and "
        "--target URL instead of --env\n"
    )


def test_every_command_with_dir_takes_env() -> None:
    import argparse

    from channelsync.cli import build_parser

    def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        found = {}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found.update(action.choices)
        return found

    with_dir = {
        name: sub
        for name, sub in commands(build_parser()).items()
        if any("--dir" in a.option_strings for a in sub._actions)
    }
    assert {"validate", "plan", "apply", "drift", "export", "list", "test"} <= set(with_dir)
    for name, sub in with_dir.items():
        assert any("--env" in a.option_strings for a in sub._actions), name


def test_numbers_and_booleans_inside_text_are_spelt_as_yaml_spells_them(
    repo: Path, cli: Any
) -> None:
    _channel(repo, **{"support@${var:imap_host}": "support-${var:enabled}-${var:port}"})
    support = _fields(_plan(cli, "--env", "staging"), "Support")
    assert support["incoming.user"] == "support-false-1993"


def test_two_patches_of_one_resource_apply_in_order(repo: Path, cli: Any) -> None:
    (repo / "channels.d/prod/zz.yaml").write_text(
        "kind: EmailScript\nname: Support Script\npatch: true\nqueues: [Only]\n"
    )
    assert _fields(_plan(cli, "--env", "prod"), "Support Script") == {"queues": ["Only"]}


# ---- Agent documents ------------------------------------------------------------------------

AGENT = """\
kind: Agent
name: Dana Agent
email: dana@${var:imap_host}
outgoing:
  server: Relay
  override: ${var:enabled}
---
kind: SmtpServer
name: Relay
host: smtp.example.com
user: relay@example.com
password: ${env:SUPPORT_IMAP_PASSWORD}
"""


def test_variables_and_patches_reach_agent_documents(repo: Path, cli: Any) -> None:
    (repo / "channels.d/common/agent.yaml").write_text(AGENT)
    prod = _fields(_plan(cli, "--env", "prod"), "Dana Agent")
    assert (prod["email"], prod["outgoing.override"]) == ("dana@imap.acme.example", True)
    staging = _fields(_plan(cli, "--env", "staging"), "Dana Agent")
    assert staging["outgoing.override"] is False
    (repo / "channels.d/prod/agent.yaml").write_text(
        "kind: Agent\nname: Dana Agent\npatch: true\noutgoing: null\n"
    )
    assert "outgoing.server" not in _fields(_plan(cli, "--env", "prod"), "Dana Agent")


def test_a_variable_of_the_wrong_type_in_an_agent_document_points_at_its_reference(
    repo: Path, cli: Any
) -> None:
    (repo / "channels.d/common/agent.yaml").write_text(
        AGENT.replace("override: ${var:enabled}", "override: ${var:imap_host}")
    )
    result = cli("validate", "--env", "prod")
    assert result.code == 1
    assert result.out.splitlines()[0] == (
        "channels.d/common/agent.yaml:6:13: error: outgoing.override: expected true or false, "
        "got text (from ${var:imap_host} of environment 'prod')"
    )


def test_two_environments_with_one_target_are_warned_about(repo: Path, cli: Any) -> None:
    """prod's target typed as staging's: applying one would undo the other."""
    project = repo / "channelsync.yaml"
    project.write_text(project.read_text().replace("sqlite:///prod.db", "sqlite:///staging.db"))
    result = cli("validate", "--env", "prod")
    assert result.code == 0
    assert result.out.splitlines()[0] == (
        "channelsync.yaml:8:13: warning: environment 'prod' has the same target as 'staging' "
        "(sqlite:///staging.db): applying one undoes the other; give each environment its own "
        "tenant"
    )
    plan = cli("plan", "--all-envs")
    assert "staging: channelsync.yaml:4:13: warning: environment 'staging' has the same" in (
        plan.err
    )
