"""``channelsync init``, the packaged templates and their copies in this repository."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from channelsync.gitops import scaffold
from tests.gitops import lint
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
        "schemas/Agent.schema.json",
        "schemas/EmailChannel.schema.json",
        "schemas/EmailScript.schema.json",
        "schemas/SmtpServer.schema.json",
        "schemas/channelsync-project.schema.json",
        "schemas/channelsync.schema.json",
    ]
    assert ".channelsync/" in (root / ".gitignore").read_text().splitlines()
    requirements = (root / ".github/channelsync/requirements.txt").read_text()
    assert requirements == scaffold.requirements()
    if scaffold.TODO_REQUIREMENT in requirements:  # this checkout has no remote a runner reaches
        assert result.err == (
            f"WARNING: {root / '.github/channelsync/requirements.txt'} has a TODO line: this "
            "channelsync was installed from a folder a runner cannot reach; pin a released "
            "version or a pushed commit there\n"
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
    # the base branch's copy of the workflow runs, never the pull request's (issue 9)
    assert set(plan["on"]) == {"pull_request_target"}
    assert "channels.d/**" in plan["on"]["pull_request_target"]["paths"]
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


def test_pre_commit_hooks_run_validate_and_fmt_on_channel_files() -> None:
    hook, fmt = YAML(typ="safe").load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "channelsync-validate"
    assert hook["entry"] == "channelsync validate"
    assert hook["pass_filenames"] is False
    assert hook["files"] == r"^channels\.d/"
    assert (fmt["id"], fmt["entry"], fmt["pass_filenames"]) == (
        "channelsync-fmt",
        "channelsync fmt",
        True,
    )
    assert fmt["files"] == r"^channels\.d/.*\.ya?ml$"


def test_workflow_linters_pass_on_this_repository_and_a_scaffolded_one(tmp_path: Path) -> None:
    assert channelsync("init", str(tmp_path)).code == 0
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    for root in (REPO, tmp_path):
        files = sorted((root / ".github" / "workflows").glob("*.yml"))
        assert lint.lint(files, cwd=root) == []
    assert len(files) == 3


@pytest.mark.parametrize(
    ("tool", "step", "expected"),
    [
        (
            "check-jsonschema",
            "      - rnu: echo hi\n",
            "is not valid under any of the given schemas",
        ),
        ("shellcheck", "      - run: cd $DIR\n", "SC2086"),
        (
            "zizmor",
            "      - run: echo ${{ github.event.pull_request.title }}\n",
            "template-injection",
        ),
    ],
)
def test_each_workflow_linter_catches_what_it_is_for(
    tmp_path: Path, tool: str, step: str, expected: str
) -> None:
    """So that a passing run above means the linters really looked."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: pull_request\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n" + step
    )
    found = {f.tool: f.text for f in lint.lint([bad], cwd=tmp_path)}
    assert expected in found[tool], found


def test_init_example_points_at_a_schema_the_editor_can_load(tmp_path: Path) -> None:
    import json

    from jsonschema import Draft202012Validator

    assert channelsync("init", str(tmp_path)).code == 0
    example = tmp_path / "channels.d" / "example.yaml"
    first = example.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/channelsync.schema.json"
    schema_file = (example.parent / first.split("$schema=", 1)[1]).resolve()
    schema = json.loads(schema_file.read_text())
    Draft202012Validator.check_schema(schema)
    document = YAML(typ="safe").load(example.read_text())
    assert list(Draft202012Validator(schema).iter_errors(document)) == []
    # the generated files, all of them and current
    checked = channelsync("schema", "--check", "--out", "schemas", cwd=tmp_path)
    assert checked.code == 0, checked.err


PIN_HEADER = "# The channelsync the workflows install (python -m pip install -r this file).\n"
TODO_LINES = (
    "# Replace the next line with, e.g., channelsync==VERSION (a released version) or\n"
    "# channelsync @ git+https://github.com/OWNER/REPO@COMMIT; until then pip fails here.\n"
    "TODO: replace this line with where the runner installs channelsync from (see above)\n"
)


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        (None, "# channelsync 1.4.2, installed here from an index.\nchannelsync==1.4.2\n"),
        (
            {
                "url": "https://x-access-token:ghs_SECRET@github.com/acme/channelsync",
                "vcs_info": {"vcs": "git", "commit_id": "0123abcd" * 5, "requested_revision": "v1"},
            },
            f"# channelsync as installed here: https://github.com/acme/channelsync at commit "
            f"{'0123abcd' * 5}.\n"
            f"channelsync @ git+https://github.com/acme/channelsync@{'0123abcd' * 5}\n",
        ),
        (
            {
                "url": "ssh://git@git.example.com/tools/mono.git",
                "vcs_info": {"vcs": "git", "commit_id": "feed"},
                "subdirectory": "channelsync",
            },
            "# channelsync as installed here: ssh://git@git.example.com/tools/mono.git at commit "
            "feed.\nchannelsync @ git+ssh://git@git.example.com/tools/mono.git@feed"
            "#subdirectory=channelsync\n",
        ),
        (
            {
                "url": "https://files.example.com/channelsync-1.4.2-py3-none-any.whl",
                "archive_info": {"hashes": {"sha256": "ab12"}},
            },
            "# channelsync as installed here, from "
            "https://files.example.com/channelsync-1.4.2-py3-none-any.whl.\n"
            "channelsync @ https://files.example.com/channelsync-1.4.2-py3-none-any.whl"
            "#sha256=ab12\n",
        ),
        (
            {"url": "file:///home/me/channelsync-1.4.2-py3-none-any.whl", "archive_info": {}},
            "# channelsync was installed here from file:///home/me/channelsync-1.4.2-py3-none-any.whl"
            ", which a runner cannot reach.\n" + TODO_LINES,
        ),
    ],
    ids=["index", "vcs-with-token", "vcs-ssh-subdirectory", "archive", "local-wheel"],
)
def test_requirements_pin_what_channelsync_was_installed_from(
    direct_url: dict[str, object] | None, expected: str
) -> None:
    assert scaffold.install_pin(direct_url, "1.4.2") == expected
    assert "SECRET" not in expected
    from packaging.requirements import Requirement  # pip's own parser (pytest depends on it)

    line = expected.splitlines()[-1]
    if not line.startswith("TODO"):
        assert Requirement(line).name == "channelsync"


def _checkout(folder: Path, remote: str | None) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    folder.mkdir()
    git("init", "-q")
    (folder / "pyproject.toml").write_text("[project]\nname = 'channelsync'\n")
    git("add", "pyproject.toml")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    if remote is not None:
        git("remote", "add", "origin", remote)
    return git("rev-parse", "HEAD")


def test_editable_install_from_a_git_checkout_pins_its_remote_and_commit(tmp_path: Path) -> None:
    folder = tmp_path / "channelsync"
    commit = _checkout(folder, "git@github.com:acme/channelsync.git")
    editable = {"url": folder.as_uri(), "dir_info": {"editable": True}}
    assert scaffold.install_pin(editable, "0.1.0") == (
        "# channelsync was installed here from an editable install of a local folder, which a "
        f"runner cannot reach:\n#   {folder}\n"
        "# This installs the commit checked out there from its git remote "
        "ssh://git@github.com/acme/channelsync.git.\n"
        "# WARNING: no remote branch known here holds that commit: push it first.\n"
        f"channelsync @ git+ssh://git@github.com/acme/channelsync.git@{commit}\n"
    )
    subprocess.run(
        ["git", "-C", str(folder), "update-ref", "refs/remotes/origin/main", "HEAD"], check=True
    )
    (folder / "pyproject.toml").write_text("changed\n")
    assert scaffold.install_pin(editable, "0.1.0").splitlines()[-2:] == [
        "# NOTE: uncommitted changes in that folder are not included.",
        f"channelsync @ git+ssh://git@github.com/acme/channelsync.git@{commit}",
    ]


@pytest.mark.parametrize("remote", [None, "/srv/git/channelsync.git"], ids=["none", "local"])
def test_editable_install_without_a_reachable_remote_is_a_todo_that_pip_refuses(
    remote: str | None, tmp_path: Path
) -> None:
    folder = tmp_path / "channelsync"
    _checkout(folder, remote)
    pin = scaffold.install_pin({"url": folder.as_uri(), "dir_info": {}}, "0.1.0")
    assert pin == (
        "# channelsync was installed here from a local folder, which a runner cannot reach:\n"
        f"#   {folder}\n"
        "# That folder has no git remote a runner could reach (none, or one on this machine).\n"
        + TODO_LINES
    )
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(PIN_HEADER + pin)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-index",
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "Invalid requirement: 'TODO: replace this line" in done.stderr
