"""ci.py's apply step branches on apply's exit code (3: stale saved plan), not on its words."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from channelsync.gitops import ci


def _step_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: ci.Result
) -> list[list[str]]:
    """Run step_apply with a reviewed plan present; the channelsync calls it made."""
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.chdir(tmp_path)
    reviewed = ci.work_dir() / "reviewed" / "plan.json"
    reviewed.parent.mkdir()
    reviewed.write_text("{}")
    calls: list[list[str]] = []

    def fake(args: Sequence[str], env: dict[str, str] | None = None) -> ci.Result:
        calls.append(list(args))
        return first if len(calls) == 1 else ci.Result(0, "applied\n", "")

    monkeypatch.setattr(ci, "channelsync", fake)
    ci.step_apply()
    return calls


def test_apply_step_replans_when_the_saved_plan_exits_3_whatever_its_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _step_apply(tmp_path, monkeypatch, ci.Result(3, "", "error: plan again\n"))
    assert [c[1] if len(c) > 1 else "" for c in calls] == [
        str(tmp_path / "channelsync-ci" / "reviewed" / "plan.json"),
        "--auto-approve",
    ]


def test_apply_step_does_not_replan_an_error_that_only_mentions_a_stale_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = ci.Result(1, "", "error: EmailChannel 'stale plan': connection refused\n")
    calls = _step_apply(tmp_path, monkeypatch, failed)
    assert len(calls) == 1


def test_an_environments_apply_uses_its_write_token_and_plan_its_read_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """apply runs in the GitHub environment, whose CHANNELSYNC_TOKEN is a write token; the
    repository's CHANNELSYNC_TOKEN_PROD (a read token, for plan and drift) must not replace
    it, nor reach channelsync, which reads an environment's own variable first."""
    monkeypatch.setenv("CHANNELSYNC_ENV", "prod")
    monkeypatch.setenv("CHANNELSYNC_TOKEN", "cst_write")
    monkeypatch.setenv("CHANNELSYNC_SECRETS_JSON", '{"CHANNELSYNC_TOKEN_PROD": "cst_read"}')
    applying = ci.secrets_env(environment_token=False)
    assert applying["CHANNELSYNC_TOKEN"] == "cst_write"
    assert "CHANNELSYNC_TOKEN_PROD" not in applying
    planning = ci.secrets_env(only=())
    assert planning["CHANNELSYNC_TOKEN"] == "cst_read"
    assert "CHANNELSYNC_TOKEN_PROD" not in planning
