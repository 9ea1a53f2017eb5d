"""`channelsync test`: which checks run, the table, the JSON, exit codes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from channelsync.loader import load_config
from channelsync.probe import command
from channelsync.probe.runner import checks_for
from tests.mailservers import free_port
from tests.probe.conftest import channel, smtp_server, write


def _run(config_dir: Path, *names: str, fmt: str = "text") -> int:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["test", *names, "--dir", str(config_dir), "--format", fmt])
    result: int = args.handler(args)
    return result


def test_checks_cover_incoming_overrides_and_servers_once(config_dir: Path) -> None:
    own = channel("imap-ssl", 993, ca=False, name="Own")
    own["outgoing"] = {"server": "Test Relay", "override": True, "password": "${env:X}"}
    shared = channel("pop3-ssl", 995, ca=False, name="Shared")
    shared["email"] = "shared@example.test"
    shared["outgoing"] = {"server": "Test Relay"}
    internal = channel("imap-ssl", 993, ca=False, name="Internal")
    internal["email"] = "internal@example.test"
    internal["outgoing"] = {"server": "VCC Internal"}
    write(config_dir, own, shared, internal, smtp_server("ssl", 465, ca=False))
    config = load_config(config_dir)
    assert not config.errors
    checks = checks_for(config.resources)
    assert [(c.name, c.check, c.protocol, c.user) for c in checks] == [
        ("Own", "incoming", "imap-ssl", "testuser@example.test"),
        ("Own", "outgoing", "smtp-ssl", "support@example.test"),
        ("Shared", "incoming", "pop3-ssl", "testuser@example.test"),
        ("Internal", "incoming", "imap-ssl", "testuser@example.test"),
        ("Test Relay", "outgoing", "smtp-ssl", "testuser@example.test"),
    ]
    assert checks[1].password == "${env:X}" and checks[1].host == "localhost"


def test_json_output_and_exit_code_on_failure(
    config_dir: Path, capsys: pytest.CaptureFixture[str], password: Callable[[str], str]
) -> None:
    port = free_port()
    write(config_dir, channel("imap-ssl", port, server="127.0.0.1", ca=False))
    assert _run(config_dir, fmt="json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["summary"] == {"passed": 0, "failed": 1}
    (result,) = document["results"]
    assert {k: result[k] for k in ("kind", "name", "check", "host", "port", "protocol", "ok")} == {
        "kind": "EmailChannel",
        "name": "Test Channel",
        "check": "incoming",
        "host": "127.0.0.1",
        "port": port,
        "protocol": "imap-ssl",
        "ok": False,
    }
    assert result["tls"] == {"version": None, "cert_expires_in_days": None}
    assert result["error"]["code"] == "refused"
    assert isinstance(result["elapsed_ms"], int)


def test_text_table_names_the_failure_and_the_hint(
    config_dir: Path, capsys: pytest.CaptureFixture[str], password: Callable[[str], str]
) -> None:
    port = free_port()
    write(config_dir, channel("imap-ssl", port, server="127.0.0.1", ca=False))
    assert _run(config_dir) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["RESOURCE", "CHECK", "ENDPOINT", "RESULT", "TIME", "HINT"]
    assert f"imap-ssl://127.0.0.1:{port}" in lines[1] and "FAIL refused" in lines[1]
    assert (
        f"error: EmailChannel 'Test Channel' (incoming): refused: connection to 127.0.0.1:{port} "
        f"refused; nothing accepts connections on 127.0.0.1:{port}; check the port and the "
        "protocol"
    ) in lines
    assert lines[-1] == "0 passed, 1 failed"


def test_config_errors_are_printed_and_nothing_is_tested(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (config_dir / "bad.yaml").write_text("kind: EmailChannel\nname: X\n")
    assert _run(config_dir) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "bad.yaml:1:1: error: missing required field" in captured.err


def test_unknown_name_is_an_error(config_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(config_dir, channel("imap-ssl", 993, ca=False))
    assert _run(config_dir, "Nope") == 1
    assert capsys.readouterr().err == "error: no channel or SMTP server named 'Nope'\n"


def test_names_select_resources(
    config_dir: Path, capsys: pytest.CaptureFixture[str], password: Callable[[str], str]
) -> None:
    write(config_dir, channel("imap-ssl", free_port(), server="127.0.0.1", ca=False))
    write(config_dir, smtp_server("ssl", free_port(), ca=False), name="relay.yaml")
    _run(config_dir, "Test Relay", fmt="json")
    results = json.loads(capsys.readouterr().out)["results"]
    assert [(r["kind"], r["name"]) for r in results] == [("SmtpServer", "Test Relay")]


def test_gate_tests_the_given_resources(config_dir: Path, password: Callable[[str], str]) -> None:
    from channelsync.probe import gate

    write(config_dir, channel("imap-ssl", free_port(), server="127.0.0.1", ca=False))
    results = gate(load_config(config_dir).resources, timeout=2)
    assert [(r.name, r.ok, r.error and r.error.code) for r in results] == [
        ("Test Channel", False, "refused")
    ]
