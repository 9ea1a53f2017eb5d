"""`channelsync test`: which checks run, the table, the JSON, exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from channelsync.cli import main as cli_main
from channelsync.loader import load_config
from channelsync.probe.check import Diagnosis, Result
from channelsync.probe.runner import checks_for
from channelsync.render import checks as render
from tests.mailservers import free_port
from tests.probe.conftest import channel, smtp_server, write


def _run(config_dir: Path, *names: str, fmt: str = "text") -> int:
    """Through the CLI's main, which maps the command's errors to messages and exit codes."""
    return cli_main(["test", *names, "--dir", str(config_dir), "--format", fmt])


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
    assert "  nothing accepts" in lines[1] and lines[1].endswith("...")
    assert lines[3:] == [
        f"error: EmailChannel 'Test Channel' (incoming): refused: connection to 127.0.0.1:{port} "
        "refused",
        f"  hint: nothing accepts connections on 127.0.0.1:{port}; check the port and the protocol",
        "",
        "0 passed, 1 failed",
    ]


def _result(name: str, error: Diagnosis | None = None, **fields: Any) -> Result:
    base: dict[str, Any] = {
        "kind": "EmailChannel",
        "name": name,
        "check": "incoming",
        "host": "imap.example.com",
        "port": 993,
        "protocol": "imap-ssl",
        "ok": error is None,
        "elapsed_ms": 12,
        "error": error,
    }
    return Result(**{**base, **fields})


REFUSED = Diagnosis(
    "refused",
    "connection to imap.example.com:993 refused",
    "nothing accepts connections on imap.example.com:993; check the port and the protocol",
)


def test_table_fits_100_columns_and_each_failure_is_printed_once() -> None:
    long_name = "AcmeJets Customer Support Email Channel for Europe"
    results = [_result(long_name, REFUSED), _result("Sales", messages=3)]
    assert render.text(results) == (
        "RESOURCE              CHECK     ENDPOINT                         RESULT           TIME   "
        "HINT\n"
        "AcmeJets Customer...  incoming  imap-ssl://imap.example.com:993  FAIL refused     12 ms  "
        "nothing...\n"
        "Sales                 incoming  imap-ssl://imap.example.com:993  ok (3 messages)  12 ms\n"
        "\n"
        f"error: EmailChannel '{long_name}' (incoming): refused: connection to "
        "imap.example.com:993 refused\n"
        "  hint: nothing accepts connections on imap.example.com:993; check the port and the "
        "protocol\n"
        "\n"
        "1 passed, 1 failed\n"
    )
    table = render.text(results).split("\n\n")[0].splitlines()
    assert max(len(line) for line in table) <= 100


def test_a_hint_that_fits_is_not_repeated_below_the_table() -> None:
    short = Diagnosis("auth_failed", "NO [AUTHENTICATIONFAILED] failed", "check the password")
    out = render.text([_result("Sales", short)])
    assert out.count("check the password") == 1
    assert (
        "error: EmailChannel 'Sales' (incoming): auth_failed: NO [AUTHENTICATIONFAILED] failed\n"
        in out
    )


def test_colour_marks_ok_and_fail() -> None:
    out = render.text([_result("A", REFUSED), _result("B")], colour=True)
    lines = out.splitlines()
    assert "  \x1b[31mFAIL\x1b[0m refused  " in lines[1]
    assert "  \x1b[32mok\x1b[0m  " in lines[2]


@pytest.mark.parametrize(
    ("tty", "no_color", "coloured"),
    [(True, None, True), (True, "1", False), (True, "", True), (False, None, False)],
)
def test_colour_only_on_a_terminal_and_never_with_no_color(
    config_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    password: Callable[[str], str],
    tty: bool,
    no_color: str | None,
    coloured: bool,
) -> None:
    write(config_dir, channel("imap-ssl", free_port(), server="127.0.0.1", ca=False))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    assert _run(config_dir) == 1
    assert ("\x1b[31mFAIL\x1b[0m" in capsys.readouterr().out) is coloured


def test_unset_secret_is_named_in_the_hint_not_its_value(
    config_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROBE_TEST_PASSWORD", raising=False)
    write(config_dir, channel("imap-ssl", free_port(), server="127.0.0.1", ca=False))
    assert _run(config_dir) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[3:5] == [
        "error: EmailChannel 'Test Channel' (incoming): secret_unavailable: "
        f"{config_dir / 'test.yaml'}:1:203: incoming.password "
        "${env:PROBE_TEST_PASSWORD}: environment variable PROBE_TEST_PASSWORD is not set; nothing "
        "was sent to the server",
        "  hint: set the environment variable PROBE_TEST_PASSWORD where channelsync runs",
    ]


@pytest.mark.parametrize(
    "address", ["bob", "bob@", "@example.com", "a b@example.com", "x@y.com,z@w.com", "bob@example"]
)
def test_send_test_message_needs_one_plain_address(
    config_dir: Path, capsys: pytest.CaptureFixture[str], address: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli_main(["test", "--dir", str(config_dir), "--send-test-message", address])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"channelsync test: error: argument --send-test-message: '{address}' is not an email "
        "address; use name@domain"
    )


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
    assert capsys.readouterr().err == "error: no channel, SMTP server or agent named 'Nope'\n"


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
