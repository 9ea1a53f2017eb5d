"""``channelsync init``: a new config repository from the packaged templates.

The workflow templates under ``templates/workflows/`` are the single source of truth: this
repository's own ``.github/workflows/channels-*.yml`` are byte-identical copies (a test checks),
so what the project runs and what ``init`` hands out cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from channelsync import __version__

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
    for name in WORKFLOWS:
        out[Path(".github/workflows") / name] = template("workflows", name)
    out[Path(".github/channelsync/requirements.txt")] = requirements()
    return out


@dataclass
class Scaffold:
    written: list[Path] = field(default_factory=list)
    conflicts: list[Path] = field(default_factory=list)
    gitignore: str = ""  # "created", "updated" or "" (already ignores .channelsync/)


def init(root: Path, *, force: bool = False) -> Scaffold:
    """Write the files; with any existing one and no ``force``, write nothing."""
    result = Scaffold()
    planned = files()
    result.conflicts = [p for p in planned if (root / p).exists()]
    if result.conflicts and not force:
        return result
    for relative, text in planned.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        result.written.append(relative)
    result.gitignore = _merge_gitignore(root / ".gitignore")
    return result


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
