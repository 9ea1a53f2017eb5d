"""Config files are read only from the config repository, as ``${file:}`` secrets are (issue 9).

A link in ``channels.d/`` to a file elsewhere on the machine would otherwise be read, and its
content echoed in the errors (``unknown kind 'ghp_TOPSECRET456'``). There is no consent flag
for config files: a file that belongs to the config belongs in the repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Result

SECRET = "ghp_TOPSECRET456"
OUTSIDE = (
    "channels.d/b.yaml:1:1: error: is a link to a file outside the repository, which is not "
    "read; move the file into the repository or remove the link"
)


def _outside_file(workdir: Path, name: str) -> Path:
    """A file outside the repository (the folder above channels.d/; no git here)."""
    elsewhere = workdir.parent / f"{workdir.name}-elsewhere"
    elsewhere.mkdir()
    path = elsewhere / name
    path.write_text(f"kind: {SECRET}\nname: x\n", encoding="utf-8")
    return path


def _assert_refused(result: Result) -> None:
    assert OUTSIDE in (result.out + result.err).splitlines()
    assert SECRET not in result.out + result.err
    assert result.code == 1


def test_a_link_to_a_config_file_outside_the_repository_is_refused_unread(
    workdir: Path, cli: Any
) -> None:
    (workdir / "channels.d" / "b.yaml").symlink_to(_outside_file(workdir, "o2.yaml"))
    for command in ("validate", "plan"):
        _assert_refused(cli(command))


def test_a_chain_of_links_that_ends_outside_is_refused(workdir: Path, cli: Any) -> None:
    (workdir / "inner.yaml").symlink_to(_outside_file(workdir, "o2.yaml"))  # inside, then out
    (workdir / "channels.d" / "b.yaml").symlink_to("../inner.yaml")
    _assert_refused(cli("validate"))


def test_a_link_to_a_file_inside_a_git_repository_is_read(workdir: Path, cli: Any) -> None:
    (workdir / ".git").mkdir()  # the repository is the git work tree, not just channels.d/'s parent
    (workdir / "shared").mkdir()
    (workdir / "shared" / "s.yaml").write_text("kind: EmailScript\nname: S\nqueues: [Support]\n")
    (workdir / "channels.d" / "s.yaml").symlink_to("../shared/s.yaml")
    result = cli("validate")
    assert result.out == "1 file(s) checked: valid, 0 error(s), 0 warning(s)\n"
