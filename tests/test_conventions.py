"""Command-line conventions shared by every command: environment defaults, usage errors that
read as sentences and exit 1 (never argparse's exit 2, never uvicorn's 3), target URLs."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from channelsync import argtypes
from channelsync.cli import build_parser
from channelsync.cli import main as cli_main
from channelsync.commands import serve as server_command

# Every argument type any parser uses, with values it refuses and the exact sentence.
BAD_VALUES: dict[Callable[[str], object], list[tuple[str, str]]] = {
    argtypes.positive_int: [
        ("x", "'x' is not a whole number"),
        ("1.5", "'1.5' is not a whole number"),
        ("0", "'0' must be between 1 and 1024"),
        ("100000", "'100000' must be between 1 and 1024"),
    ],
    argtypes.byte_count: [
        ("x", "'x' is not a whole number of bytes"),
        ("0", "'0' must be between 1 and 1073741824 bytes"),
    ],
    argtypes.per_minute: [
        ("x", "'x' is not a whole number"),
        ("0", "'0' must be between 1 and 10000000"),
    ],
    argtypes.seconds: [
        ("x", "'x' is not a number of seconds"),
        ("nan", "'nan' is not a number of seconds"),
        ("-1", "'-1' must be between 0 and 86400 seconds"),
        ("1e9", "'1e9' must be between 0 and 86400 seconds"),
    ],
    argtypes.positive_seconds: [
        ("x", "'x' is not a number of seconds"),
        ("inf", "'inf' is not a number of seconds"),
        ("0", "'0' must be more than 0 and at most 86400 seconds"),
    ],
    argtypes.positive_minutes: [
        ("x", "'x' is not a number of minutes"),
        ("0", "'0' must be more than 0 and at most 1440 minutes"),
    ],
    argtypes.duration: [
        ("0s", "'0s' must be from 1s to 24h (e.g. 30s, 5m, 1h)"),
        ("5 minutes", "'5 minutes' is not a duration such as 30s, 5m or 1h"),
        ("2d", "'2d' is not a duration such as 30s, 5m or 1h"),
        ("25h", "'25h' must be from 1s to 24h (e.g. 30s, 5m, 1h)"),
    ],
    argtypes.date: [("2027-13-01", "'2027-13-01' is not a date (YYYY-MM-DD)")],
    argtypes.port: [
        ("x", "'x' is not a port number (1-65535)"),
        ("0", "port 0 is outside 1-65535"),
        ("70000", "port 70000 is outside 1-65535"),
    ],
    argtypes.host: [
        ("", "must not be empty; e.g. 127.0.0.1, or 0.0.0.0 for all"),
        ("a host", "'a host' is not a host name or IP address"),
    ],
    argtypes.path: [("", "must not be empty; give a path")],
    argtypes.web_url: [
        (
            "javascript:alert(1)",
            "'javascript:alert(1)' is not an http(s) URL; give a web address such as "
            "https://github.com/ORG/channels",
        )
    ],
    argtypes.email_address: [
        ("bob", "'bob' is not an email address; use name@domain"),
        ("a b@example.com", "'a b@example.com' is not an email address; use name@domain"),
    ],
    argtypes.target: [
        ("", "must not be empty; give a URL such as sqlite:///.channelsync/tenant.db"),
        (" ", "must not be empty; give a URL such as sqlite:///.channelsync/tenant.db"),
    ],
}

Entry = Callable[[list[str]], int]
ENTRIES: dict[str, tuple[Callable[[], argparse.ArgumentParser], Entry]] = {
    "channelsync": (build_parser, cli_main),
    "python -m channelsync.server": (lambda: _server_parser(), server_command.main),
}


def _server_parser() -> argparse.ArgumentParser:
    parser = argtypes.Parser(prog="channelsync")
    server_command.add_parsers(parser.add_subparsers())
    return parser


def _typed_arguments(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _typed_arguments(sub, (*path, name))
        elif action.type is not None:
            yield path, action


def _cases() -> Iterator[object]:
    for entry, (parser, _) in ENTRIES.items():
        for path, action in _typed_arguments(parser()):
            flag = action.option_strings[-1] if action.option_strings else None
            for value, message in BAD_VALUES.get(action.type, [("", "(no table row)")]):  # type: ignore[arg-type]
                argv = [*path, flag, value] if flag else [*path, value]
                name = f"{entry}:{' '.join(path)} {flag or action.dest}={value!r}"
                yield pytest.param(
                    entry, argv, flag or action.metavar or action.dest, message, id=name
                )


def test_every_argument_type_has_a_row_in_the_table() -> None:
    """A new type= must come with the sentences it refuses with (add it to BAD_VALUES)."""
    for entry, (parser, _) in ENTRIES.items():
        for path, action in _typed_arguments(parser()):
            assert action.type in BAD_VALUES, f"{entry} {' '.join(path)} {action.dest}"


@pytest.mark.parametrize(("entry", "argv", "argument", "message"), list(_cases()))
def test_bad_argument_value_is_a_sentence_and_exit_1(
    entry: str, argv: list[str], argument: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        ENTRIES[entry][1](argv)
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert err.splitlines()[-1].endswith(f": error: argument {argument}: {message}"), err
    assert "invalid" not in err


def test_server_module_usage_error_exits_1_not_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "channelsync.server", "serve", "--port", "x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "channelsync serve: error: argument --port: 'x' is not a port number (1-65535)"
    )
    unknown = subprocess.run(
        [sys.executable, "-m", "channelsync.server", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unknown.returncode == 1
    assert "invalid choice: 'nope'" in unknown.stderr


def test_test_command_reads_channelsync_dir(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHANNELSYNC_DIR", "elsewhere.d")
    assert cli_main(["test"]) == 1
    assert capsys.readouterr().err == (
        "elsewhere.d:1:1: error: config directory does not exist; create it or pass --dir\n"
        "error: the configuration has 1 error(s); run 'channelsync validate'\n"
    )
    monkeypatch.setenv("CHANNELSYNC_DIR", "")  # set but empty: the default, as for the target
    assert cli_main(["test"]) == 0
    assert capsys.readouterr().err == ""


def test_serve_reads_channelsync_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHANNELSYNC_TARGET", "https://channelsync.example.com")
    assert cli_main(["serve", "--tokens", str(tmp_path / "none.json")]) == 1
    assert capsys.readouterr().err == (
        "error: serve needs a sqlite:///PATH or postgresql://USER@HOST/DB store (e.g. "
        "sqlite:///.channelsync/tenant.db), not a 'https' URL\n"
    )
    monkeypatch.setenv("CHANNELSYNC_TARGET", "sqlite:")
    assert cli_main(["serve", "--tokens", str(tmp_path / "none.json")]) == 1
    assert capsys.readouterr().err == (
        "error: bad target URL 'sqlite:': use sqlite:///PATH (e.g. sqlite:///.channelsync/tenant.db)\n"
    )


def test_serve_host_that_cannot_be_bound_is_an_error_not_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = "a" * 64  # a DNS label over 63 characters: refused without asking any resolver
    assert cli_main(["serve", "--host", host, "--tokens", str(tmp_path / "t.json")]) == 1
    assert capsys.readouterr().err == (
        f"error: --host '{host}' cannot be bound: not a valid name; use an IP address of this "
        "machine (127.0.0.1, or 0.0.0.0 for all interfaces)\n"
    )


@pytest.mark.parametrize("scheme", ["SQLITE", "Sqlite"])
def test_sqlite_scheme_is_case_insensitive(
    scheme: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{scheme}:///{workdir / 'tenant.db'}"
    assert cli_main(["plan", "--target", url]) == 0
    out = capsys.readouterr().out
    # plan reads only: the URL is understood (the path is named) and nothing is created
    assert out.splitlines()[-1] == (
        f"warning: no tenant at {workdir / 'tenant.db'} yet: apply will create it"
    )
    assert not (workdir / "tenant.db").exists()


def test_empty_target_is_an_error_not_the_default(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main(["plan", "--target", ""])
    assert exited.value.code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "channelsync plan: error: argument --target: must not be empty; give a URL such as "
        "sqlite:///.channelsync/tenant.db"
    )
    assert not (workdir / ".channelsync").exists()


def _serve(tmp_path: Path, *args: str) -> list[str]:
    from channelsync.server import tokens

    if not (tmp_path / "tokens.json").exists():
        tokens.add(tmp_path / "tokens.json", "ci", "write")
    return ["serve", "--tokens", str(tmp_path / "tokens.json"), *args]


def test_serve_host_that_is_not_this_machines_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(_serve(tmp_path, "--host", "192.0.2.1")) == 1  # TEST-NET-1: never local
    assert capsys.readouterr().err == (
        "error: --host '192.0.2.1' cannot be bound: Cannot assign requested address; use an IP "
        "address of this machine (127.0.0.1, or 0.0.0.0 for all interfaces)\n"
    )


def test_serve_tls_files_that_do_not_load_are_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = Path(__file__).resolve().parent.parent / "channels.d" / "certs" / "fabrikam-ca.pem"
    assert cli_main(_serve(tmp_path, "--tls-cert", "nope.pem", "--tls-key", str(ca))) == 1
    assert capsys.readouterr().err == "error: --tls-cert nope.pem: no such file\n"
    assert cli_main(_serve(tmp_path, "--tls-cert", str(ca), "--tls-key", str(ca))) == 1
    assert capsys.readouterr().err == (
        f"error: --tls-cert {ca} and --tls-key {ca} do not load as a PEM certificate and the "
        "private key of that certificate\n"
    )


def test_serve_store_it_cannot_open_is_an_error_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    url = f"sqlite:///{blocker / 'tenant.db'}"
    assert cli_main(_serve(tmp_path, "--target", url)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: tenant database {blocker}"), err
    assert err.count("\n") == 1 and "Traceback" not in err
