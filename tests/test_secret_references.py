"""Which secret references are usable: reserved names, files inside the config repository
only (regular, at most 64 KiB, UTF-8), and never an empty value."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from channelsync.secrets import Resolver, SecretRef, SecretUnavailable, repository_root

CHANNEL = """\
kind: EmailChannel
name: A
email: a@example.com
incoming:
  server: imap.example.com
  protocol: imap-ssl
  user: a
  password: {ref}
"""


def channel(workdir: Path, ref: str) -> None:
    (workdir / "channels.d" / "a.yaml").write_text(CHANNEL.format(ref=ref), encoding="utf-8")


@pytest.mark.parametrize(
    ("ref", "prefix"),
    [
        ("${env:CHANNELSYNC_TOKEN}", "CHANNELSYNC_"),
        ("${env:GITHUB_TOKEN}", "GITHUB_"),
        ("${env:github_token}", "GITHUB_"),
        ("${env:ACTIONS_ID_TOKEN_REQUEST_TOKEN}", "ACTIONS_"),
        ("${env:RUNNER_TEMP}", "RUNNER_"),
    ],
)
def test_reserved_variable_names_are_a_validate_error_at_the_reference(
    workdir: Path, cli: Any, ref: str, prefix: str
) -> None:
    channel(workdir, ref)
    result = cli("validate")
    assert result.code == 1
    assert (
        f"channels.d/a.yaml:8:13: error: incoming.password: {ref} is reserved: {prefix}* "
        "variables belong to the CI system or to channelsync itself, never to a channel; "
        "store the secret under a name of its own"
    ) in result.out


@pytest.mark.parametrize("ref", ["${file:/proc/self/environ}", "${file:../environ-link}"])
def test_system_files_are_a_validate_error_at_the_reference(
    workdir: Path, cli: Any, ref: str
) -> None:
    (workdir / "environ-link").symlink_to("/proc/self/environ")
    channel(workdir, ref)
    result = cli("validate")
    assert result.code == 1
    assert f"channels.d/a.yaml:8:13: error: incoming.password: {ref} is a system file (/proc/" in (
        result.out
    )


def apply(cli: Any, *extra: str) -> Any:
    return cli("apply", "--auto-approve", "--skip-connection-tests", *extra)


def test_secret_file_outside_the_repository_is_refused(
    workdir: Path, cli: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "pw"
    elsewhere.write_text("outside-secret\n")
    (workdir / ".git").mkdir()
    (workdir / "link").symlink_to(elsewhere)
    for ref in (f"${{file:{elsewhere}}}", "${file:../link}"):
        channel(workdir, ref)
        result = apply(cli)
        assert result.code == 1
        assert (
            f"is outside the config repository {os.path.realpath(workdir)} (after following "
            "symlinks); move it inside, or pass --allow-secret-files-outside"
        ) in result.err
        assert "channels.d/a.yaml:8:13: error: incoming.password: secret file" in result.err
    allowed = apply(cli, "--allow-secret-files-outside")
    assert allowed.code == 0, allowed.err


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: os.mkfifo(p), "is a FIFO, not a regular file"),
        (lambda p: p.mkdir(), "is a folder, not a regular file"),
        (lambda p: p.write_bytes(b"x" * (64 * 1024 + 1)), "is 65,537 bytes; the limit is 64 KiB"),
        (lambda p: p.write_bytes(b"\xff\xfe pw"), "is not UTF-8 text"),
        (lambda p: p.write_text("\n"), "is empty"),
    ],
    ids=["fifo", "folder", "too-large", "not-utf8", "empty"],
)
def test_unusable_secret_files_are_refused_without_reading_them(
    workdir: Path, cli: Any, make: Any, expected: str
) -> None:
    make(workdir / "pw")
    channel(workdir, "${file:../pw}")
    result = apply(cli, "--allow-secret-files-outside")  # the checks hold even then
    assert result.code == 1
    assert "channels.d/a.yaml:8:13: error: incoming.password: secret file " in result.err
    assert expected in result.err
    assert "internal error" not in result.err


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/proc/self/environ", "is a system file \\(/proc/"),
        ("/sys/kernel/mm/transparent_hugepage/enabled", "is a system file \\(/sys/"),
        ("/dev/zero", "is a device, not a regular file"),
    ],
)
def test_system_files_are_never_read_even_when_validate_did_not_see_them(
    tmp_path: Path, target: str, expected: str
) -> None:
    link = tmp_path / "pw"
    link.symlink_to(target)  # e.g. made after validate ran
    with pytest.raises(SecretUnavailable, match=expected):
        Resolver().resolve(SecretRef("file", str(link)))


def test_empty_variable_is_an_error_at_its_reference(
    workdir: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("A_PASSWORD", "")
    channel(workdir, "${env:A_PASSWORD}")
    result = apply(cli)
    assert result.code == 1
    assert (
        "channels.d/a.yaml:8:13: error: incoming.password: environment variable A_PASSWORD is empty"
    ) in result.err
    tested = cli("test", "--format", "json")
    error = json.loads(tested.out)["results"][0]["error"]
    assert error["code"] == "secret_unavailable"
    assert "environment variable A_PASSWORD is empty" in error["message"]


def test_variable_that_is_not_utf8_is_a_clear_error(
    workdir: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("A_PASSWORD", "\udcff\udcfe")  # the bytes ff fe, as Python sees them
    channel(workdir, "${env:A_PASSWORD}")
    planned = cli("plan")
    assert planned.code == 0, planned.err
    tested = cli("test")
    assert "environment variable A_PASSWORD is not UTF-8 text" in tested.out
    result = apply(cli)
    assert result.code == 1
    assert "environment variable A_PASSWORD is not UTF-8 text" in result.err
    assert "internal error" not in planned.err + tested.err + result.err


def test_repository_root_is_the_git_work_tree_else_the_config_folders_parent(
    tmp_path: Path,
) -> None:
    config = tmp_path / "repo" / "deploy" / "channels.d"
    config.mkdir(parents=True)
    assert repository_root(config) == tmp_path / "repo" / "deploy"
    (tmp_path / "repo" / ".git").mkdir()
    assert repository_root(config) == tmp_path / "repo"


def test_confinement_is_the_resolvers(tmp_path: Path) -> None:
    (tmp_path / "inside").mkdir()
    secret = tmp_path / "pw"
    secret.write_text("value\n")
    ref = SecretRef("file", str(secret))
    with pytest.raises(SecretUnavailable):
        Resolver(confine_to=tmp_path / "inside").resolve(ref)
    assert Resolver().resolve(ref) == "value"
