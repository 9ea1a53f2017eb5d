"""Issue 16's "done when" for environments: staging and prod, planned, applied and drifted
each against its own tenant; plan --all-envs; compare shows exactly the variable-driven and
patched differences.

The two tenants are ``envrepo.TARGETS`` (two embedded tenants); two tenants of one
``channelsync serve`` with a token scoped to each: tests/http/test_environments_serve.py.
"""

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


def _apply(cli: Any, env: str) -> None:
    result = cli("apply", "--env", env, "--auto-approve", "--skip-connection-tests")
    assert result.code == 0, result.err


COMPARE = """\
Compare staging -> prod

  - EmailScript "Smoke Test Script" (only in staging)

  ~ EmailScript "Support Script"
      ~ queues: ["Support"] -> ["Support", "Escalations"]

  ~ EmailChannel "Support"
      ~ enabled: false -> true
      ~ incoming.port: 1993 -> 993
      ~ incoming.server: "imap.staging.acme.example" -> "imap.acme.example"
      ~ incoming.user: "support@imap.staging.acme.example" -> "support@imap.acme.example"

3 resource(s) differ: 2 changed, 1 only in staging, 0 only in prod; 0 the same.
"""


def test_compare_shows_exactly_the_variable_driven_and_patched_differences(
    repo: Path, cli: Any
) -> None:
    result = cli("compare", "staging", "prod")
    assert (result.code, result.out) == (2, COMPARE)
    data = json.loads(cli("compare", "staging", "prod", "--format", "json").out)
    assert data["summary"] == {"changed": 2, "only_in_from": 1, "only_in_to": 0, "same": 0}
    script = next(d for d in data["differences"] if d["name"] == "Support Script")
    assert script["fields"] == [
        {"path": "queues", "from": ["Support"], "to": ["Support", "Escalations"]}
    ]
    same = cli("compare", "prod", "prod")
    assert (same.code, same.out.splitlines()[-1]) == (
        0,
        "No differences: prod and prod define the same 2 resource(s).",
    )
    assert not (repo / "staging.db").exists()  # compare reads no tenant


def test_compare_of_an_unknown_environment_is_an_error(repo: Path, cli: Any) -> None:
    result = cli("compare", "staging", "prd")
    assert (result.code, result.err) == (
        1,
        "error: compare: prd: no such environment in channelsync.yaml (did you mean 'prod'?); "
        "known: staging, prod\n",
    )


def test_each_environment_plans_applies_and_drifts_against_its_own_tenant(
    repo: Path, cli: Any
) -> None:
    result = cli("plan", "--all-envs", "--format", "json", "--detailed-exitcode")
    assert result.code == 2, result.err
    data = json.loads(result.out)
    assert data["format_version"] == 1
    assert [
        (e["environment"], e["target"], e["summary"]["create"]) for e in data["environments"]
    ] == [
        ("staging", envrepo.TARGETS["staging"], 3),
        ("prod", envrepo.TARGETS["prod"], 2),
    ]
    _apply(cli, "staging")
    _apply(cli, "prod")
    assert (repo / "staging.db").exists() and (repo / "prod.db").exists()
    for env in ("staging", "prod"):
        assert cli("drift", "--env", env).code == 0
    result = cli("plan", "--all-envs", "--detailed-exitcode")
    assert result.code == 0, result.out
    assert result.out.count("No changes. The tenant matches the configuration") == 2
    live = json.loads(cli("list", "--env", "prod", "--live", "--format", "json").out)
    assert [(row["name"], row["enabled"]) for row in live] == [("Support", True)]

    # prod's port moves: prod drifts, staging does not
    text = (repo / "channelsync.yaml").read_text().replace("port: 993}", "port: 995}")
    (repo / "channelsync.yaml").write_text(text)
    drift = cli("drift", "--env", "prod")
    assert drift.code == 2
    assert "~ incoming.port: 993 -> 995" in drift.out
    assert cli("drift", "--env", "staging").code == 0
    plans = json.loads(cli("plan", "--all-envs", "--format", "json").out)["environments"]
    assert [e["summary"]["update"] for e in plans] == [0, 1]


def test_all_envs_markdown_is_one_comment_with_a_section_per_environment(
    repo: Path, cli: Any
) -> None:
    out = cli("plan", "--all-envs", "--format", "markdown").out
    assert out.startswith("<!-- channelsync:plan -->\n## Environment `staging`\n\n### channelsync")
    assert out.count("<!-- channelsync:plan -->") == 1
    assert out.index("## Environment `staging`") < out.index("## Environment `prod`")
    text = cli("plan", "--all-envs").out
    assert text.startswith("=== Environment staging ===\nTarget: sqlite:///staging.db\n")
    assert "=== Environment prod ===\nTarget: sqlite:///prod.db\n" in text
    assert cli("plan", "--all-envs", "--format", "runbook").out.startswith(
        "=== Environment staging (sqlite:///staging.db) ===\n"
    )


def test_all_envs_reports_a_failing_environment_and_plans_the_others(repo: Path, cli: Any) -> None:
    targets = {**envrepo.TARGETS, "staging": "nope://tenant"}
    envrepo.write(repo, targets)
    result = cli("plan", "--all-envs", "--format", "json")
    assert result.code == 1
    staging, prod = json.loads(result.out)["environments"]
    assert staging["environment"] == "staging"
    assert staging["error"]["code"] == "error" and staging["error"]["exit_code"] == 1
    assert "changes" not in staging
    assert prod["summary"]["create"] == 2


def test_all_envs_refuses_the_options_of_one_environment(repo: Path, cli: Any) -> None:
    result = cli("plan", "--all-envs", "--env", "prod", "--out", "p.json")
    assert (result.code, result.err) == (
        1,
        "error: --all-envs plans every environment of channelsync.yaml as it is: drop --env, "
        "--out (plan one environment with --env NAME for those)\n",
    )


BOGUS = "channels.d/prod/script.yaml:5:1: error: unknown field 'bogus'; allowed: kind, name, "
BOGUS += "renamed_from, queues"


@pytest.mark.parametrize("form", ["text", "json", "markdown", "runbook"])
def test_all_envs_shows_a_failing_environment_s_diagnostics_in_every_format(
    repo: Path, cli: Any, form: str
) -> None:
    """A bad field in prod's patch: prod's section says where (JSON: the error document's
    member, with positioned diagnostics), staging is still planned, and the exit code is 1."""
    script = repo / "channels.d/prod/script.yaml"
    script.write_text(script.read_text() + "bogus: 1\n")
    result = cli("plan", "--all-envs", "--format", form)
    assert result.code == 1
    assert result.err == ""
    if form != "json":
        assert BOGUS in result.out
        assert "error: the configuration has 2 error(s); run 'channelsync validate'" in result.out
        assert "Support Script" in result.out.split("prod")[0]  # staging was planned
        return
    staging, prod = json.loads(result.out)["environments"]
    assert staging["summary"]["create"] == 3
    assert prod["target"] == "sqlite:///prod.db"
    error = prod["error"]
    assert error["message"] == "the configuration has 2 error(s); run 'channelsync validate'"
    assert (error["code"], error["exit_code"]) == ("config_error", 1)
    assert {
        "file": "channels.d/prod/script.yaml",
        "line": 5,
        "column": 1,
        "severity": "error",
        "message": "unknown field 'bogus'; allowed: kind, name, renamed_from, queues",
    } in error["diagnostics"]


def test_compare_shows_each_field_of_a_section_a_patch_removes(
    repo: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prod's patch sets ``outgoing: null`` (the channel follows the tenant's default
    server) and ``script: null`` (the default script): compare lists the fields staging
    sets and prod does not, one by one, as plan lists a created resource's."""
    monkeypatch.setenv("RELAY_PASSWORD", "relay-Secret-9")
    (repo / "channels.d/common/relay.yaml").write_text(
        "kind: SmtpServer\nname: Relay\nhost: smtp.acme.example\nuser: relay@acme.example\n"
        "password: ${env:RELAY_PASSWORD}\n"
    )
    support = repo / "channels.d/common/support.yaml"
    support.write_text(support.read_text() + "outgoing:\n  server: Relay\n  override: false\n")
    (repo / "channels.d/prod/support.yaml").write_text(
        "kind: EmailChannel\nname: Support\npatch: true\nscript: null\noutgoing: null\n"
    )
    result = cli("compare", "staging", "prod")
    assert result.code == 2, result.err
    channel = result.out.split('~ EmailChannel "Support"\n')[1].split("\n\n")[0]
    assert channel.splitlines()[-4:] == [
        '      - outgoing.server = "Relay"',
        "      - outgoing.override = false",
        "      - outgoing.allow_insecure_auth = false",
        '      ~ script: "Support Script" -> "Default Email Script"',
    ]
    data = json.loads(cli("compare", "staging", "prod", "--format", "json").out)
    fields = next(d for d in data["differences"] if d["name"] == "Support")["fields"]
    assert {"path": "outgoing.server", "from": "Relay", "to": None} in fields
    assert not any(f["path"] == "outgoing" for f in fields)
    assert cli("plan", "--env", "prod", "--detailed-exitcode").code == 2  # and it plans


def test_verbose_all_envs_names_the_environment_on_each_of_its_steps(repo: Path, cli: Any) -> None:
    """The environments are planned in parallel: each log line says which one it is about."""
    result = cli("-v", "--log-format", "json", "plan", "--all-envs")
    assert result.code == 0, result.err
    lines = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    steps = [(line["step"], line.get("environment")) for line in lines]
    for env in ("staging", "prod"):
        for step in ("load config", "open target", "read live state", "plan"):
            assert (step, env) in steps, (step, env)
    assert steps[-1] == ("command plan", None)


def test_a_plan_saved_for_prod_applied_without_env_names_the_environment(
    repo: Path, cli: Any
) -> None:
    """Not "stale" (exit 3: plan again) but a wrong environment (exit 1: which one); with
    --env prod the same file applies; show renders it (the conftest hook)."""
    assert cli("plan", "--env", "prod", "--out", "prod.json").code == 0
    wrong = cli("apply", "prod.json", "--auto-approve", "--skip-connection-tests")
    assert wrong.code == 1
    assert wrong.err.splitlines()[-1] == (
        "error: prod.json was planned for environment 'prod' (sqlite:///prod.db), and this "
        "apply is for 'staging' (sqlite:///staging.db): apply it with --env prod"
    )
    assert not (repo / "staging.db").exists()
    right = cli("apply", "prod.json", "--env", "prod", "--auto-approve", "--skip-connection-tests")
    assert right.code == 0, right.err
    assert "Apply complete: 2 created." in right.out
