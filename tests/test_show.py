"""``channelsync show PLANFILE``: a foreign, damaged, edited or newer file is refused clearly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def saved(tenant: Path, cli: Any) -> Path:
    assert cli("plan", "--out", "plan.json").code == 0
    return tenant / "plan.json"


def test_show_refuses_a_plan_edited_after_it_was_saved(saved: Path, cli: Any) -> None:
    plan = json.loads(saved.read_text())
    plan["changes"][0]["fields"][0]["after"] = "evil.example.com"
    saved.write_text(json.dumps(plan, indent=2))
    expected = (
        "error: plan.json was changed after it was saved (its digest does not match its "
        "contents): it cannot be trusted; make a new plan with 'channelsync plan --out'\n"
    )
    shown = cli("show", "plan.json")
    assert (shown.code, shown.out, shown.err) == (1, "", expected)
    applied = cli("apply", "plan.json", "--auto-approve", "--skip-connection-tests")
    assert (applied.code, applied.err) == (1, expected)


def test_show_refuses_a_plan_of_a_newer_format(saved: Path, cli: Any) -> None:
    plan = json.loads(saved.read_text())
    plan["format_version"] = 2
    saved.write_text(json.dumps(plan))
    shown = cli("show", "plan.json", "--format", "json")
    assert shown.code == 1
    assert shown.err == (
        "error: plan.json was saved by a newer channelsync (saved-plan format 2); this one "
        "reads format 1: upgrade channelsync, or plan again with this one\n"
    )


@pytest.mark.parametrize(
    "text",
    ['{"hello": "world"}', "kind: EmailScript\nname: x\n", "", '{"format_version": "1"}'],
    ids=["other-json", "yaml", "empty", "version-as-text"],
)
def test_show_refuses_a_file_that_is_not_a_plan(text: str, workdir: Path, cli: Any) -> None:
    (workdir / "other.json").write_text(text)
    shown = cli("show", "other.json")
    assert (shown.code, shown.out) == (1, "")
    assert shown.err == "error: other.json is not a channelsync plan file (format_version 1)\n"


def test_show_names_a_missing_plan_file(workdir: Path, cli: Any) -> None:
    shown = cli("show", "nowhere.json")
    assert (shown.code, shown.err) == (
        1,
        "error: cannot read plan file nowhere.json: No such file or directory\n",
    )


def test_show_reads_a_plan_saved_before_it_kept_warnings(saved: Path, cli: Any) -> None:
    """A version-1 file from before 'show' (no digest, warnings or refusals) still renders."""
    plan = json.loads(saved.read_text())
    for key in ("digest", "plan_warnings", "refusals"):
        del plan[key]
    saved.write_text(json.dumps(plan))
    shown = cli("show", "plan.json")
    assert shown.code == 0
    assert shown.out.startswith("Target: sqlite:///.channelsync/tenant.db\n")
