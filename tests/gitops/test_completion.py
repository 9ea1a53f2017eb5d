"""Completion scripts generated from the argparse parser, exercised in a real bash."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from channelsync.cli import build_parser
from tests.gitops.conftest import channelsync

COMPLETE = r"""
source "$1"
read -ra COMP_WORDS <<< "$2"
[[ "$2" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_shtab_channelsync
printf '%s\n' "${COMPREPLY[@]}"
"""


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = channelsync("completion", "bash")
    assert result.code == 0, result.err
    path = tmp_path_factory.mktemp("completion") / "channelsync.bash"
    path.write_text(result.out)
    return path


def complete(script: Path, line: str) -> list[str]:
    done = subprocess.run(
        ["bash", "--norc", "-c", COMPLETE, "_", str(script), line],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def test_bash_completes_every_command_of_the_parser(bash_script: Path) -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sub.choices is not None
    assert complete(bash_script, "channelsync ") == list(sub.choices)
    assert {"init", "completion"} <= set(sub.choices)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("channelsync pl", ["plan"]),
        ("channelsync plan --fo", ["--format"]),
        ("channelsync plan --format ", ["text", "json", "markdown", "runbook"]),
        ("channelsync validate --format g", ["github"]),
        ("channelsync drift --format m", ["markdown"]),
        ("channelsync completion ", ["bash", "zsh", "fish"]),
        ("channelsync init --f", ["--force"]),
        ("channelsync apply --allow-d", ["--allow-delete"]),
        ("channelsync fm", ["fmt"]),
        ("channelsync fmt --ch", ["--check"]),
        ("channelsync sh", ["show"]),
        ("channelsync show x --format ", ["text", "json", "markdown", "runbook"]),
        ("channelsync export --on", ["--only"]),
        ("channelsync apply --format ", ["text", "json"]),
        ("channelsync drift --log-format ", ["text", "json"]),
        ("channelsync --verb", ["--verbose"]),
    ],
)
def test_bash_completes_options_and_choices(
    bash_script: Path, line: str, expected: list[str]
) -> None:
    assert complete(bash_script, line) == expected


def _shell(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{name} is not installed (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return found


def test_zsh_script_is_valid_and_registers_the_completion() -> None:
    zsh = _shell("zsh")
    result = channelsync("completion", "zsh")
    assert result.code == 0
    assert result.out.startswith("#compdef channelsync\n")
    for command in ("plan", "drift", "init", "completion"):
        assert f"_shtab_channelsync_{command}_options=(" in result.out
    check = subprocess.run(
        [
            zsh,
            "-f",
            "-c",
            'autoload -U compinit && compinit -u -D; eval "$1"; print -r -- $_comps[channelsync]',
            "_",
            result.out,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "_shtab_channelsync"
    # compinit -D: no dump file. "-d /dev/null" made compdump 'mv -f' a regular file over
    # /dev/null, which as root (CI runs the suite with sudo) replaces the device.
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("channelsync pl", ["plan"]),
        ("channelsync plan --fo", ["--format"]),
        ("channelsync plan --format ", ["text", "json", "markdown", "runbook"]),
        ("channelsync completion ", ["bash", "zsh", "fish"]),
        ("channelsync fm", ["fmt"]),
        ("channelsync show x --format ", ["text", "json", "markdown", "runbook"]),
    ],
)
def test_fish_completes_commands_options_and_choices(line: str, expected: list[str]) -> None:
    fish = _shell("fish")
    result = channelsync("completion", "fish")
    assert result.code == 0
    done = subprocess.run(
        [fish, "--no-config", "-c", 'eval "$argv[1]"; complete -C "$argv[2]"', result.out, line],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [row.split("\t")[0] for row in done.stdout.splitlines()] == expected


def test_cli_startup_does_not_import_the_gitops_machinery() -> None:
    """--help must stay fast: registering init/completion imports only argparse."""
    code = (
        "import sys; import channelsync.commands.init; "
        "print(sorted(m for m in sys.modules if m.startswith(('channelsync.gitops.', 'ruamel', "
        "'pydantic', 'channelsync.render'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
