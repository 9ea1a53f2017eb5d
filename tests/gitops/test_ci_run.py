""".ci/run, the CI entry point, in a sandbox: apt-get, sudo and the venv's python are stubs.

The policy-rc.d that keeps apt from starting the system's Dovecot/Postfix must exist during
the install only, and only if .ci/run created it (CHANNELSYNC_POLICY_RC_D moves it off
/usr/sbin for the test).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gitops.conftest import REPO

CHECKS = ["ruff check src tests", "ruff format --check src tests", "mypy --strict src"]
CHECK_TOOLS = ("ruff", "mypy")
TOOLS = ("bash", "sh", "id", "dirname", "tee", "chmod", "rm", "cat", "env")

STUB = """#!/bin/sh
echo "{name} $*" >> "$STUB_LOG"
{body}
"""
APT_GET = """\
if [ "$1" = install ]; then
  if [ -x "$CHANNELSYNC_POLICY_RC_D" ]; then
    "$CHANNELSYNC_POLICY_RC_D"; echo "policy-rc.d during install: exit $?" >> "$STUB_LOG"
  else
    echo "policy-rc.d during install: none" >> "$STUB_LOG"
  fi
  [ -z "$STUB_APT_FAIL" ] || exit 100
fi
exit 0
"""


@dataclass
class Sandbox:
    repo: Path
    policy: Path
    log: Path
    path: str

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        self.log.write_text("")
        return subprocess.run(
            ["bash", str(self.repo / ".ci" / "run")],
            env={
                "PATH": self.path,
                "HOME": str(self.repo.parent),
                "STUB_LOG": str(self.log),
                "CHANNELSYNC_POLICY_RC_D": str(self.policy),
                **env,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


def _stub(folder: Path, name: str, body: str = "exit 0") -> None:
    path = folder / name
    path.write_text(STUB.format(name=name, body=body))
    path.chmod(0o755)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "run", repo / ".ci" / "run")
    venv = repo / ".venv" / "bin"
    venv.mkdir(parents=True)
    _stub(venv, "python")
    _stub(venv, "pip")
    for tool in CHECK_TOOLS:
        _stub(venv, tool, f'[ -z "$STUB_{tool.upper()}_FAIL" ] || exit 1')
    (venv / "activate").write_text(f'PATH="{venv}:$PATH"; export PATH\n')
    # only these tools on PATH: no dovecot/postfix/zsh, so .ci/run takes the install branch
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found is not None, tool
        (bindir / tool).symlink_to(found)
    _stub(bindir, "apt-get", APT_GET)
    _stub(bindir, "debconf-set-selections", "cat >/dev/null")
    _stub(bindir, "sudo", 'exec "$@"')
    _stub(bindir, "python3")  # python3 -m venv .venv: the stub venv above is already there
    return Sandbox(repo, tmp_path / "policy-rc.d", tmp_path / "calls.log", str(bindir))


def test_policy_rc_d_it_creates_exists_during_the_install_only(sandbox: Sandbox) -> None:
    done = sandbox.run()
    assert done.returncode == 0, done.stderr
    calls = sandbox.calls()
    assert "policy-rc.d during install: exit 101" in calls
    assert not sandbox.policy.exists()
    assert calls[-6:] == [
        "python3 -m venv .venv",  # the README's set-up line ...
        "pip install -e .[dev]",
        "python -m pytest",  # ... its test command ...
        *CHECKS,  # ... and the habits after it
    ]

    again = sandbox.run()  # idempotent
    assert again.returncode == 0, again.stderr
    assert sandbox.calls() == calls
    assert not sandbox.policy.exists()


def test_an_existing_policy_rc_d_is_left_alone(sandbox: Sandbox) -> None:
    mine = "#!/bin/sh\n# the image's own\nexit 101\n"
    sandbox.policy.write_text(mine)
    sandbox.policy.chmod(0o700)
    done = sandbox.run()
    assert done.returncode == 0, done.stderr
    assert "policy-rc.d during install: exit 101" in sandbox.calls()
    assert sandbox.policy.read_text() == mine
    assert stat.S_IMODE(sandbox.policy.stat().st_mode) == 0o700


def test_policy_rc_d_is_removed_when_the_install_fails(sandbox: Sandbox) -> None:
    done = sandbox.run(STUB_APT_FAIL="1")
    assert done.returncode == 100
    assert "policy-rc.d during install: exit 101" in sandbox.calls()
    assert not sandbox.policy.exists()
    assert "python -m pytest" not in sandbox.calls()


def test_ci_run_fails_when_a_check_after_the_tests_fails(sandbox: Sandbox) -> None:
    done = sandbox.run(STUB_RUFF_FAIL="1")
    assert done.returncode == 1
    assert sandbox.calls()[-2:] == ["python -m pytest", "ruff check src tests"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root needs no sudo")
def test_without_root_the_install_goes_through_sudo(sandbox: Sandbox) -> None:
    done = sandbox.run()
    assert done.returncode == 0, done.stderr
    assert any(call.startswith("sudo env DEBIAN_FRONTEND=") for call in sandbox.calls())


def _code_block(markdown: str, heading: str) -> list[str]:
    """The commands of the first ```sh block under ``heading``, without their comments."""
    section = markdown.split(f"\n{heading}\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines() if line.strip()]


def test_ci_run_performs_the_readme_set_up_and_test_command_as_written() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    script = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    set_up = [c for c in _code_block(readme, "## Set up") if not c.startswith("channelsync ")]
    assert set_up == ["python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]'"]
    assert _code_block(readme, "## Test") == ["python -m pytest"]
    tests = len(script) - len(CHECKS) - 1
    assert script[tests:] == ["python -m pytest", *CHECKS]  # the one test command, then checks
    assert set_up[0] in script[:tests]
    assert "`. .venv/bin/activate`" in readme
