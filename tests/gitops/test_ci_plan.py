"""ci.py's plan step hands the plan only the secrets the base branch's bindings name."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from channelsync.gitops import ci

SECRETS = {"EXAMPLE_IMAP_PASSWORD": "bound-value", "OTHER_SECRET": "unbound-value"}


def _plan_env(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, same_repo: bool
) -> dict[str, str]:
    """Run step_plan in ``repo`` for a pull request; the environment the plan got."""
    monkeypatch.chdir(repo)
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path / "temp"))
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.setenv("SECRETS_AVAILABLE", "true" if same_repo else "false")
    monkeypatch.setenv("BASE_REF", "main")
    monkeypatch.setenv("DEFAULT_BRANCH", "main")
    monkeypatch.setenv("CHANNELSYNC_SECRETS_JSON", json.dumps(SECRETS))
    seen: list[dict[str, str]] = []

    def fake(args: Sequence[str], env: dict[str, str] | None = None) -> ci.Result:
        seen.append(dict(env or {}))
        return ci.Result(0, "", "")

    monkeypatch.setattr(ci, "channelsync", fake)
    assert ci.step_plan() == 0
    (env,) = seen
    return env


def test_plan_step_passes_only_the_secrets_bound_on_the_base_branch(
    scratch_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # init's channelsync.secrets.yaml, committed on main, binds EXAMPLE_IMAP_PASSWORD only
    env = _plan_env(scratch_repo, tmp_path, monkeypatch, same_repo=True)
    assert env.get("EXAMPLE_IMAP_PASSWORD") == "bound-value"
    assert "OTHER_SECRET" not in env and "CHANNELSYNC_SECRETS_JSON" not in env


def test_plan_step_passes_no_channel_secret_to_a_fork(
    scratch_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _plan_env(scratch_repo, tmp_path, monkeypatch, same_repo=False)
    assert not set(SECRETS) & set(env)
