"""``channelsync init``: a new config repository from the packaged templates.

The workflow templates under ``templates/workflows/`` are the single source of truth: this
repository's own ``.github/workflows/channels-*.yml`` are byte-identical copies (a test checks),
so what the project runs and what ``init`` hands out cannot drift apart.
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from channelsync import __version__
from channelsync.bindings import FILE_NAME as BINDINGS_FILE
from channelsync.errors import ScaffoldError as ScaffoldError
from channelsync.fsio import write_atomic

WORKFLOWS = ("channels-plan.yml", "channels-apply.yml", "channels-drift.yml")
GITIGNORE_LINE = ".channelsync/"
SCHEMAS_DIR = Path("schemas")
EXAMPLE = Path("channels.d/example.yaml")
REQUIREMENTS = Path(".github/channelsync/requirements.txt")
GIT_TIMEOUT = 10.0
# A line pip refuses ("Invalid requirement"), so that a repository nobody pinned fails loudly.
TODO_REQUIREMENT = (
    "TODO: replace this line with where the runner installs channelsync from (see above)"
)
_SCP_LIKE = re.compile(r"^(?P<user>[^@/:]+@)?(?P<host>[^/:]+):(?P<path>(?!//).+)$")


def template(*parts: str) -> str:
    node = resources.files("channelsync.gitops").joinpath("templates", *parts)
    return node.read_text(encoding="utf-8")


def requirements() -> str:
    """The channelsync running now, pinned to where it was installed from, so that the runner
    installs the same one and an upgrade is a reviewed pull request."""
    return (
        "# The channelsync the workflows install (python -m pip install -r this file).\n"
        + install_pin(installed_direct_url(), __version__)
    )


def installed_direct_url() -> dict[str, Any] | None:
    """PEP 610 ``direct_url.json`` of the installed channelsync; None when it came from an
    index. Running from a source tree that is not installed counts as a local folder."""
    from importlib import metadata

    try:
        text = metadata.distribution("channelsync").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return {"url": Path(__file__).resolve().parents[1].as_uri(), "dir_info": {}}
    if text is None:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def install_pin(direct_url: dict[str, Any] | None, version: str) -> str:
    """Requirement lines (comments first) that install what ``direct_url`` describes."""
    if direct_url is None:
        return f"# channelsync {version}, installed here from an index.\nchannelsync=={version}\n"
    url = str(direct_url.get("url", ""))
    subdirectory = direct_url.get("subdirectory")
    fragment = f"#subdirectory={subdirectory}" if subdirectory else ""
    vcs = direct_url.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("commit_id") and _reachable(url):
        kind, commit = vcs.get("vcs", "git"), vcs["commit_id"]
        clean = _without_credentials(url)
        return (
            f"# channelsync as installed here: {clean} at commit {commit}.\n"
            f"channelsync @ {kind}+{clean}@{commit}{fragment}\n"
        )
    archive = direct_url.get("archive_info")
    if isinstance(archive, dict) and urlsplit(url).scheme.lower() in ("https", "http"):
        hashes = archive.get("hashes")
        digest = (
            f"sha256={hashes['sha256']}"
            if isinstance(hashes, dict) and "sha256" in hashes
            else archive.get("hash")
        )
        clean = _without_credentials(url)
        return (
            f"# channelsync as installed here, from {clean}.\n"
            f"channelsync @ {clean}{'#' + digest if digest else ''}\n"
        )
    if url.startswith("file:") and isinstance(direct_url.get("dir_info"), dict):
        editable = bool(direct_url["dir_info"].get("editable"))
        return _from_folder(Path(unquote(urlsplit(url).path)), fragment, editable=editable)
    where = _without_credentials(url) or "an unknown place"
    return (
        f"# channelsync was installed here from {where}, which a runner cannot reach.\n" + _todo()
    )


def _from_folder(folder: Path, fragment: str, *, editable: bool) -> str:
    """A local (often editable) install: the commit checked out there, from its git remote."""
    lines = [
        f"# channelsync was installed here from {'an editable install of ' if editable else ''}"
        "a local folder, which a runner cannot reach:",
        f"#   {folder}",
    ]
    git = _git_checkout(folder)
    if git is None:
        lines.append(
            "# That folder has no git remote a runner could reach (none, or one on this machine)."
        )
        return "\n".join(lines) + "\n" + _todo()
    remote, commit, pushed, dirty = git
    lines.append(f"# This installs the commit checked out there from its git remote {remote}.")
    if not pushed:
        lines.append("# WARNING: no remote branch known here holds that commit: push it first.")
    if dirty:
        lines.append("# NOTE: uncommitted changes in that folder are not included.")
    lines.append(f"channelsync @ git+{remote}@{commit}{fragment}")
    return "\n".join(lines) + "\n"


def _todo() -> str:
    return (
        "# Replace the next line with, e.g., channelsync==VERSION (a released version) or\n"
        "# channelsync @ git+https://github.com/OWNER/REPO@COMMIT; until then pip fails here.\n"
        f"{TODO_REQUIREMENT}\n"
    )


def _reachable(url: str) -> bool:
    """A URL a fresh runner can fetch from: not a file on this machine."""
    scheme = urlsplit(url).scheme.lower()
    return scheme in ("https", "http", "ssh", "git")


def _without_credentials(url: str) -> str:
    """``url`` without a password or token (an ssh user name such as git@ stays)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    keep_user = parts.scheme.lower() == "ssh" and parts.password is None and parts.username
    netloc = f"{parts.username}@{host}" if keep_user else host
    return urlunsplit(parts._replace(netloc=netloc))


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _git_checkout(folder: Path) -> tuple[str, str, bool, bool] | None:
    """(remote URL for pip, HEAD commit, a remote branch holds it, uncommitted changes)."""
    commit = _git(folder, "rev-parse", "--verify", "HEAD")
    remotes = (_git(folder, "remote") or "").split()
    if not commit or not remotes:
        return None
    name = "origin" if "origin" in remotes else remotes[0]
    remote = _pip_git_url(_git(folder, "remote", "get-url", name) or "")
    if remote is None:
        return None
    pushed = bool(_git(folder, "branch", "-r", "--contains", commit))
    dirty = bool(_git(folder, "status", "--porcelain", "--untracked-files=no"))
    return remote, commit, pushed, dirty


def _pip_git_url(remote: str) -> str | None:
    """The remote as pip's ``git+`` takes it; None for a remote on this machine."""
    if _reachable(remote):
        return _without_credentials(remote)
    m = _SCP_LIKE.match(remote)  # git@github.com:owner/repo.git
    if m is not None and "\\" not in remote:
        return f"ssh://{m['user'] or ''}{m['host']}/{m['path']}"
    return None


ENVIRONMENTS_DIR = "environments"  # templates/environments/: the workflows with a matrix
COMMON = Path("channels.d/common")


def project_file(environments: list[str]) -> str:
    """channelsync.yaml for ``init --env``: each environment reads the common folder, then
    its own; its own embedded tenant until the target is set."""
    lines = [
        "# yaml-language-server: $schema=schemas/channelsync-project.schema.json",
        '# The environments of this repository (docs/gitops.md, "Environments"): each plans',
        "# and applies channels.d/common, then its own folder, whose documents with",
        "# 'patch: true' change a common resource; ${var:NAME} in a channel file is the",
        "# environment's value. Set each target to its tenant's URL.",
        "environments:",
    ]
    for name in environments:
        lines += [
            f"  {name}:",
            f"    target: sqlite:///.channelsync/{name}.db",
            f"    dirs: [{COMMON}, channels.d/{name}]",
            "    variables: {enabled: false}",
        ]
    lines.append(f"default_environment: {environments[0]}")
    return "\n".join(lines) + "\n"


def environment_patch(name: str) -> str:
    return (
        "# yaml-language-server: $schema=../../schemas/channelsync.schema.json\n"
        f"# What {name} changes in channels.d/common: 'patch: true' merges these fields into\n"
        "# the resource of the same kind and name (mappings key by key, lists replaced, null\n"
        "# removes a field).\n"
        "kind: EmailChannel\n"
        "name: Example Support\n"
        "patch: true\n"
        "enabled: ${var:enabled}  # this environment's value in channelsync.yaml\n"
    )


def files(environments: list[str] | None = None) -> dict[Path, str]:
    """Every file ``init`` writes except ``.gitignore``, which it merges into instead; with
    ``environments``, the layout of a repository with environments."""
    from channelsync import schema
    from channelsync.defaults import PROJECT_FILE

    example = template("channels.d", "example.yaml")
    if environments:
        out = {COMMON / EXAMPLE.name: example.replace("../schemas/", "../../schemas/")}
        out[Path(PROJECT_FILE)] = project_file(environments)
        for name in environments:
            out[Path("channels.d") / name / EXAMPLE.name] = environment_patch(name)
    else:
        out = {EXAMPLE: example}
    out[Path(BINDINGS_FILE)] = template(BINDINGS_FILE)
    folder = ENVIRONMENTS_DIR if environments else "workflows"
    for name in WORKFLOWS:
        out[Path(".github/workflows") / name] = template(folder, name)
    out[REQUIREMENTS] = requirements()
    for name, generated in schema.all_schemas().items():
        out[SCHEMAS_DIR / name] = schema.render(generated)
    return out


@dataclass
class Scaffold:
    written: list[Path] = field(default_factory=list)
    conflicts: list[Path] = field(default_factory=list)
    gitignore: str = ""  # "created", "updated" or "" (already ignores .channelsync/)


def init(root: Path, *, force: bool = False, environments: list[str] | None = None) -> Scaffold:
    """Write the files; with any existing one and no ``force``, write nothing.

    Any OSError (DIR is a file, a read-only or virtual file system, a folder where a file goes)
    becomes a ``ScaffoldError`` naming the path and the reason.
    """
    result = Scaffold()
    try:
        _write(root, result, force=force, environments=environments)
    except OSError as exc:
        raise ScaffoldError(_reason(exc, root), result.written) from None
    except UnicodeDecodeError:
        raise ScaffoldError(
            f"{root / '.gitignore'}: not UTF-8 text; add {GITIGNORE_LINE} to it yourself",
            result.written,
        ) from None
    return result


def _write(root: Path, result: Scaffold, *, force: bool, environments: list[str] | None) -> None:
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(root))
    planned = files(environments)
    result.conflicts = [p for p in planned if (root / p).exists()]
    if result.conflicts and not force:
        return
    for relative, text in planned.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
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
        write_atomic(path, template("gitignore"))
        return "created"
    text = path.read_text(encoding="utf-8")
    if any(line.strip() in (GITIGNORE_LINE, "/" + GITIGNORE_LINE) for line in text.splitlines()):
        return ""
    separator = "" if not text or text.endswith("\n") else "\n"
    write_atomic(path, text + separator + template("gitignore"))
    return "updated"
