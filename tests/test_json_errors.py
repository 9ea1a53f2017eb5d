"""``--format json`` prints a JSON document on stdout even on error (README "JSON error
document"), so that CI never parses stderr; ``apply --format json`` prints the apply report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.tenant_config import BASE, apply, write

BAD_CHANNEL = "kind: EmailChannel\nname: X\nemail: x@example.com\nincoming:\n  port: 70000\n"
POSITIONED = {"file", "line", "column", "severity", "message"}


def _error(result: Any) -> dict[str, Any]:
    document = json.loads(result.out)
    error: dict[str, Any] = document["error"]
    assert set(error) == {"message", "code", "exit_code", "diagnostics"}
    assert error["exit_code"] == result.code == 1
    for diagnostic in error["diagnostics"]:
        assert set(diagnostic) == POSITIONED
    return error


@pytest.mark.parametrize(
    "args",
    [
        ("validate",),
        ("plan",),
        ("drift",),
        ("list",),
        ("test",),
        ("apply", "--auto-approve"),
    ],
)
def test_a_config_error_is_a_positioned_json_error(
    args: tuple[str, ...], workdir: Path, cli: Any
) -> None:
    (workdir / "channels.d" / "bad.yaml").write_text(BAD_CHANNEL)
    error = _error(cli(*args, "--format", "json"))
    assert (error["code"], error["message"]) == (
        "config_error",
        "the configuration has 4 error(s); run 'channelsync validate'",
    )
    first = error["diagnostics"][0]
    assert (first["file"], first["line"], first["severity"]) == ("channels.d/bad.yaml", 4, "error")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("show", "nowhere.json"),
            "error",
            "cannot read plan file nowhere.json: No such file or directory",
        ),
        (
            ("apply",),
            "usage_error",
            "apply --format json cannot ask for confirmation: add --auto-approve, or apply a "
            "saved plan",
        ),
        (
            ("drift", "--target", "sqlite:///nowhere.db"),
            "target_error",
            None,
        ),
        (
            ("list", "--filter", "enabled=maybe"),
            "usage_error",
            "bad filter 'enabled=maybe': enabled is true or false",
        ),
        (("test", "Nope"), "usage_error", "no channel, SMTP server or agent named 'Nope'"),
        (
            ("plan", "--only", "Suport"),
            "error",
            "--only: 'Suport' matches no resource (did you mean 'Support'?). Give a resource "
            "name (or Kind/NAME) of the config or the tenant",
        ),
    ],
    ids=["show", "apply", "drift", "list", "test", "plan"],
)
def test_every_command_with_format_json_fails_with_a_json_error(
    args: tuple[str, ...], code: str, message: str | None, tenant: Path, cli: Any
) -> None:
    error = _error(cli(*args, "--format", "json"))
    assert error["code"] == code
    if message is not None:
        assert error["message"] == message
    if args != ("apply",):  # (as text, apply asks on the terminal)
        assert f"error: {error['message']}" in cli(*args).err  # the same words as text


def test_a_usage_error_with_format_json_is_a_json_error_too(workdir: Path, cli: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("plan", "--format", "json", "--bogus")
    assert exited.value.code == 1


def test_usage_error_document(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from channelsync.cli import main

    for words in (["plan", "--format", "json", "--bogus"], ["drift", "--bogus", "--format=json"]):
        with pytest.raises(SystemExit):
            main(words)
        out = json.loads(capsys.readouterr().out)
        assert out["error"]["code"] == "usage_error"
        assert out["error"]["message"].endswith("unrecognized arguments: --bogus")
    with pytest.raises(SystemExit):
        main(["plan", "--bogus"])
    assert capsys.readouterr().out == ""  # text: stderr only, as before


def test_apply_format_json_reports_applied_failed_and_not_attempted(tenant: Path, cli: Any) -> None:
    first = apply(cli, "--format", "json")
    assert first.code == 0, first.err
    report = json.loads(first.out)
    assert (report["ok"], report["failed"], report["not_attempted"]) == (True, None, [])
    assert [c["action"] for c in report["applied"]] == ["create"] * 4
    assert report["plan"]["summary"]["create"] == 4
    assert "error" not in report
    (tenant / "channels.d" / "exchange.yaml").unlink()
    write(
        tenant,
        {
            "desk.yaml": BASE["exchange.yaml"].replace("name: Exchange", "name: Desk"),
            "support.yaml": BASE["support.yaml"].replace("Support Script", "Sales"),
            "sales.yaml": "kind: EmailScript\nname: Sales\n",
        },
    )
    result = apply(cli, "--only", "Sales", "Desk", "Support", "--format", "json")
    assert result.code == 1
    report = json.loads(result.out)
    assert report["ok"] is False
    assert report["applied"] == [
        {"kind": "EmailScript", "name": "Sales", "action": "create", "previous_name": None}
    ]
    assert report["failed"] == {
        "kind": "EmailChannel",
        "name": "Desk",
        "action": "create",
        "previous_name": None,
        "error": "channel 'Desk': email help@contoso.example is used by 'Exchange'",
    }
    assert report["not_attempted"] == [
        {"kind": "EmailChannel", "name": "Support", "action": "update", "previous_name": None}
    ]
    assert report["error"]["code"] == "apply_failed"
    assert report["error"]["message"] == (
        "+ EmailChannel \"Desk\": channel 'Desk': email help@contoso.example is used by 'Exchange'"
    )
