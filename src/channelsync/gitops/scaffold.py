"""``channelsync init``: a new config repository from the packaged templates.

The workflow templates under ``templates/workflows/`` are the single source of truth: this
repository's own ``.github/workflows/channels-*.yml`` are byte-identical copies (a test checks),
so what the project runs and what ``init`` hands out cannot drift apart.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from channelsync import __version__
from channelsync.bindings import FILE_NAME as BINDINGS_FILE
from channelsync.errors import ChannelsyncError

WORKFLOWS = ("channels-plan.yml", "channels-apply.yml", "channels-drift.yml")
GITIGNORE_LINE = ".channelsync/"


def template(*parts: str) -> str:
    node = resources.files("channelsync.gitops").joinpath("templates", *parts)
    return node.read_text(encoding="utf-8")


def requirements() -> str:
    """Pinned, so that an upgrade is a reviewed pull request (Dependabot can propose it)."""
    return (
        "# The channelsync the workflows install (python -m pip install -r this file).\n"
        f"channelsync=={__version__}\n"
    )


def files() -> dict[Path, str]:
    """Every file ``init`` writes except ``.gitignore``, which it merges into instead."""
    out = {Path("channels.d/example.yaml"): template("channels.d", "example.yaml")}
    out[Path(BINDINGS_FILE)] = template(BINDINGS_FILE)
    for name in WORKFLOWS:
        out[Path(".github/workflows") / name] = template("workflows", name)
    out[Path(".github/channelsync/requirements.txt")] = requirements()
    return out


@dataclass
class Scaffold:
    written: list[Path] = field(default_factory=list)
    conflicts: list[Path] = field(default_factory=list)
    gitignore: str = ""  # "created", "updated" or "" (already ignores .channelsync/)


class ScaffoldError(ChannelsyncError):
    """The folder cannot be written: one line for the user, and what was written before."""

    def __init__(self, message: str, written: list[Path]) -> None:
        super().__init__(message)
        self.written = written


def init(root: Path, *, force: bool = False) -> Scaffold:
    """Write the files; with any existing one and no ``force``, write nothing.

    Any OSError (DIR is a file, a read-only or virtual file system, a folder where a file goes)
    becomes a ``ScaffoldError`` naming the path and the reason.
    """
    result = Scaffold()
    try:
        _write(root, result, force=force)
    except OSError as exc:
        raise ScaffoldError(_reason(exc, root), result.written) from None
    except UnicodeDecodeError:
        raise ScaffoldError(
            f"{root / '.gitignore'}: not UTF-8 text; add {GITIGNORE_LINE} to it yourself",
            result.written,
        ) from None
    return result


def _write(root: Path, result: Scaffold, *, force: bool) -> None:
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(root))
    planned = files()
    result.conflicts = [p for p in planned if (root / p).exists()]
    if result.conflicts and not force:
        return
    for relative, text in planned.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        result.written.append(relative)
    result.gitignore = _merge_gitignore(root / ".gitignore")


def _reason(exc: OSError, root: Path) -> str:
    """``PATH: reason`` on one line, whatever the OSError carries."""
    where = exc.filename if exc.filename is not None else root
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{where}: {reason}".replace("\n", " ")


def _merge_gitignore(path: Path) -> str:
    """Add ``.channelsync/`` to an existing ``.gitignore`` rather than replace the user's file."""
    if not path.exists():
        path.write_text(template("gitignore"), encoding="utf-8")
        return "created"
    text = path.read_text(encoding="utf-8")
    if any(line.strip() in (GITIGNORE_LINE, "/" + GITIGNORE_LINE) for line in text.splitlines()):
        return ""
    separator = "" if not text or text.endswith("\n") else "\n"
    path.write_text(text + separator + template("gitignore"), encoding="utf-8")
    return "updated"
