from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


@dataclass
class Run:
    code: int
    out: str
    err: str


def channelsync(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """The installed CLI in a child process, as a user (or a workflow) runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "channelsync", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    """A config repository made by ``channelsync init``, committed on main."""
    repo = tmp_path / "config-repo"
    result = channelsync("init", str(repo))
    assert result.code == 0, result.err
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "channelsync init")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")  # as a checkout fetches it
    return repo


@dataclass
class FakeGitHub:
    """The stub ``gh`` on PATH and the fake repository it serves."""

    bindir: Path
    state_file: Path
    log_file: Path

    @property
    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.state_file.read_text(encoding="utf-8"))
        return data

    def update(self, **changes: Any) -> None:
        self.state_file.write_text(json.dumps({**self.state, **changes}), encoding="utf-8")

    def calls(self) -> list[list[str]]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]

    def env(self) -> dict[str, str]:
        return {"FAKE_GH_STATE": str(self.state_file), "FAKE_GH_LOG": str(self.log_file)}


@pytest.fixture
def fake_gh(tmp_path: Path) -> FakeGitHub:
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    stub = bindir / "gh"
    stub.write_text(f'#!/bin/sh\nexec {sys.executable} {HERE / "fake_gh.py"} "$@"\n')
    stub.chmod(0o755)
    fake = FakeGitHub(bindir, tmp_path / "github.json", tmp_path / "gh-calls.jsonl")
    fake.state_file.write_text(json.dumps({"repository": "acme/channels"}), encoding="utf-8")
    return fake


@pytest.fixture
def runner_env(fake_gh: FakeGitHub, tmp_path: Path) -> Callable[..., dict[str, str]]:
    """The environment a GitHub runner gives every step, with the stub gh first on PATH."""

    def make(**extra: str) -> dict[str, str]:
        env = {
            "PATH": f"{fake_gh.bindir}:{os.environ['PATH']}",
            "HOME": str(tmp_path / "home"),
            "LANG": "C.UTF-8",
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "acme/channels",
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_RUN_ID": "4242",
            "NO_COLOR": "1",
            **fake_gh.env(),
        }
        env.update(extra)
        return env

    return make
