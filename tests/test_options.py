"""--dir, --target and --format mean the same on every command (one helper in argtypes)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from channelsync import argtypes
from channelsync.cli import build_parser
from channelsync.defaults import DEFAULT_TARGET
from channelsync.targets import target_url


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_every_dir_option_defaults_alike_and_an_empty_variable_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for value, expected in (("", "channels.d"), ("conf", "conf")):
        monkeypatch.setenv("CHANNELSYNC_DIR", value)
        found = [(p, _option(sub, "--dir")) for p, sub in _commands(build_parser())]
        with_dir = {p: a for p, a in found if a is not None}
        assert {"validate", "plan", "apply", "drift", "export", "list", "test"} <= {
            p[0] for p in with_dir
        }
        for command, action in with_dir.items():
            assert action.default == Path(expected), command
            assert action.help == "config directory (default: channels.d, or $CHANNELSYNC_DIR)"


def test_every_target_option_is_the_same_option(monkeypatch: pytest.MonkeyPatch) -> None:
    found = [(p, _option(sub, "--target")) for p, sub in _commands(build_parser())]
    with_target = {p: a for p, a in found if a is not None}
    assert {"plan", "apply", "drift", "export", "list", "serve"} <= {p[0] for p in with_target}
    for command, action in with_target.items():
        assert action.type is argtypes.target, command
        assert action.default is None, command
        assert action.help is not None
        assert action.help.endswith(f"(default: $CHANNELSYNC_TARGET or {DEFAULT_TARGET})")
    monkeypatch.setenv("CHANNELSYNC_TARGET", "")
    assert target_url(None) == DEFAULT_TARGET
    monkeypatch.setenv("CHANNELSYNC_TARGET", "https://tenant.example")
    assert target_url(None) == "https://tenant.example"
    assert target_url("sqlite:///x.db") == "sqlite:///x.db"


def test_every_format_option_defaults_to_its_first_choice() -> None:
    formats = {}
    for command, sub in _commands(build_parser()):
        action = _option(sub, "--format")
        if action is not None:
            assert action.choices is not None
            assert action.default == next(iter(action.choices)), command
            formats[command[0]] = action.default
    assert formats == {
        "validate": "text",
        "plan": "text",
        "show": "text",
        "apply": "text",
        "drift": "text",
        "list": "table",
        "test": "text",
        "compare": "text",
    }


def test_the_environment_rule_is_one_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANNELSYNC_X", "")
    assert argtypes.from_env("CHANNELSYNC_X") is None
    monkeypatch.setenv("CHANNELSYNC_X", "v")
    assert argtypes.from_env("CHANNELSYNC_X") == "v"


@pytest.mark.parametrize("argv", [["drift", "--bogus"], ["test", "--timeout", "5", "--bogus"]])
def test_unknown_option_shows_the_subcommands_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"usage: channelsync {argv[0]} [-h]")
    assert err[-1] == f"channelsync {argv[0]}: error: unrecognized arguments: --bogus"
