"""The plan split by job: typed plan data, one diff engine, the saved-plan file format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from channelsync.plan import Action, PlanWarning, Position, WarningCategory, saved
from channelsync.plan.diff import changed, changed_paths, leaves, walk
from tests.tenant_config import BASE, UNSET_SECRET, apply, write


def _plan(tenant: Path) -> Any:
    from channelsync.loader import load_config
    from channelsync.plan import make_plan
    from channelsync.targets import open_target

    target = open_target("sqlite:///.channelsync/tenant.db", readonly=True)
    try:
        return make_plan(load_config(tenant / "channels.d"), target)
    finally:
        target.close()


def test_plan_actions_are_an_enum_and_warnings_are_positioned_records(
    tenant: Path, cli: Any
) -> None:
    from channelsync.render.plan import warning_lines

    write(tenant, {"sales.yaml": UNSET_SECRET})
    plan = _plan(tenant)
    assert {c.action for c in plan.changes} == {Action.CREATE}
    assert plan.warnings == [
        PlanWarning(
            WarningCategory.SECRET_UNREADABLE,
            "environment variable SALES_PASSWORD_UNSET is not set (1 reference): apply will "
            "fail: 1 resource to create or change needs it",
            "EmailChannel",
            "Sales",
            Position("channels.d/sales.yaml", 8, 13),
        )
    ]
    assert warning_lines(plan) == [
        "channels.d/sales.yaml:8:13: warning: environment variable SALES_PASSWORD_UNSET is not "
        "set (1 reference): apply will fail: 1 resource to create or change needs it"
    ]


def test_a_missing_tenant_is_an_unpositioned_warning_worded_as_before(
    tenant: Path, cli: Any
) -> None:
    result = cli("plan", "--format", "json")
    assert result.code == 0, result.err
    warnings = json.loads(result.out)["warnings"]
    assert warnings[0].startswith("no tenant at ")
    assert "\nwarning: no tenant at " in cli("plan").out


def test_diff_reports_changed_fields_lists_whole_and_none_as_missing() -> None:
    before = {"a": 1, "inner": {"x": 1, "y": None, "z": [1, 2]}, "gone": {"k": 1}, "same": 2}
    after = {"a": 2, "inner": {"x": 1, "z": [1, 3]}, "new": {"k": 1}, "same": 2}
    assert changed_paths(before, after) == ["a", "gone", "inner.z", "new"]
    assert changed_paths(before, before) == []
    assert changed([(before, after), ({}, {"q": [1]})]) == [
        {("a",), ("gone",), ("inner", "z"), ("new",)},
        {("q",)},
    ]
    assert list(leaves({"a": {"b": 1}, "c": 2})) == [(("a", "b"), 1), (("c",), 2)]
    assert [p for p, _ in walk({"a": {"b": 1}, "c": 2})] == [("a",), ("a", "b"), ("c",)]


def test_the_hand_written_diffs_are_gone() -> None:
    import channelsync.export
    import channelsync.plan.build
    import channelsync.server.store

    assert not hasattr(channelsync.plan.build, "_differing")
    assert not hasattr(channelsync.server.store, "_changed_paths")
    assert not hasattr(channelsync.export, "_paths")


def test_plans_with_and_without_changes_never_import_deepdiff(tenant: Path, cli: Any) -> None:
    assert apply(cli).code == 0
    code = (
        "import sys\n"
        "from channelsync.cli import main\n"
        "code = main(['plan', '--detailed-exitcode'])\n"
        "print(code, 'deepdiff' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "0 False", out.stderr
    write(tenant, {"script.yaml": BASE["script.yaml"].replace("Billing", "Sales")})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "2 False", out.stderr


def _deepdiff_paths(before: dict[str, Any], after: dict[str, Any]) -> set[tuple[str, ...]]:
    """The paths deepdiff, the former engine, found (after the same ``==`` cut per level)."""
    from deepdiff import DeepDiff

    def cut(a: dict[str, Any], b: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        old: dict[str, Any] = {}
        new: dict[str, Any] = {}
        for key in a.keys() | b.keys():
            x, y = a.get(key), b.get(key)
            if x == y:
                continue
            if isinstance(x, dict) and isinstance(y, dict):
                old[key], new[key] = cut(x, y)
            else:
                old[key], new[key] = x, y
        return old, new

    paths: set[tuple[str, ...]] = set()
    diff = DeepDiff(*cut(before, after), view="tree", threshold_to_diff_deeper=0)
    for group in diff:
        for node in diff[group]:
            full = node.path(output_format="list")
            end = next((i for i, p in enumerate(full) if isinstance(p, int)), len(full))
            paths.add(tuple(str(p) for p in full[:end]))
    return paths


def test_the_field_diff_finds_the_paths_deepdiff_found() -> None:
    import random

    pytest.importorskip("deepdiff")
    rng = random.Random(14)
    values: list[Any] = [None, 0, 1, True, False, 1.5, "", "a", "b", [], ["A"], ["A", "B"], {}]

    def doc(depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in rng.sample("abcde", rng.randint(0, 4)):
            if depth and rng.random() < 0.3:
                out[key] = doc(depth - 1)
            elif rng.random() < 0.1:
                out[key] = [doc(0), rng.choice(values)]
            else:
                out[key] = rng.choice(values)
        return out

    pairs = [(doc(3), doc(3)) for _ in range(3000)]
    pairs += [(a, {**a, "b": {"x": None}}) for a, _ in pairs[:200]]
    found = changed(pairs)
    assert found == [_deepdiff_paths(a, b) for a, b in pairs]
    assert any(found) and not all(found)


def test_served_audit_lists_the_changed_paths_from_the_shared_diff(tmp_path: Path) -> None:
    from channelsync.server.store import Store
    from channelsync.targets.base import Operation

    store = Store(f"sqlite:///{tmp_path / 'tenant.db'}")
    try:
        body = {"name": "S", "queues": ["A"], "default": None}
        who = {"actor": "test", "key": None, "holder": None}
        store.write(Operation("create", "EmailScript", "S", body=body), **who)
        update = Operation("update", "EmailScript", "S", body={**body, "queues": ["A", "B"]})
        store.write(update, **who)
        rows = store.audit_after(0, 10)
    finally:
        store.close()
    assert [(r[5], json.loads(r[6])) for r in rows] == [
        ("create", ["name", "queues"]),
        ("update", ["queues"]),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # deeper than any parser's stack
        '{"format_version": 1, "target": "t", "changes": [{"kind": "EmailChannel", "name": "x",'
        ' "action": "explode", "fields": []}], "no_op": 0, "warnings": [],'
        ' "config_fingerprint": "sha256:0"}',
        '{"format_version": 1, "target": 5, "changes": [], "no_op": 0, "warnings": [],'
        ' "config_fingerprint": "sha256:0"}',
        b"\xff\xfe not utf-8",
    ],
    ids=["deep", "unknown-action", "target-not-text", "not-utf8"],
)
def test_a_hand_edited_or_hostile_plan_file_is_one_clear_line(
    text: str | bytes, workdir: Path, cli: Any
) -> None:
    path = workdir / "bad.plan"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    result = cli("apply", "bad.plan")
    assert result.code == 1
    if text.startswith("[" if isinstance(text, str) else b"["):  # positioned, as every file
        assert result.err == (
            "error: bad.plan:1:101: nesting deeper than 100 levels; it is not a channelsync "
            "plan file\n"
        )
    else:
        assert result.err == "error: bad.plan is not a channelsync plan file (format_version 1)\n"


def test_a_plan_file_larger_than_the_bound_is_refused_unread(
    workdir: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channelsync.plan import saved

    monkeypatch.setattr(saved, "MAX_PLAN_FILE_BYTES", 100)
    (workdir / "big.plan").write_text('{"format_version": 1, "pad": "' + "x" * 200 + '"}')
    result = cli("apply", "big.plan")
    assert result.code == 1
    assert result.err == (
        "error: cannot read plan file big.plan: file is 232 bytes; the limit is 100 bytes\n"
    )


def test_a_saved_plan_loads_back_to_the_same_changes(tenant: Path, cli: Any) -> None:

    write(tenant, {"sales.yaml": UNSET_SECRET})
    assert cli("plan", "--out", "saved.plan").code == 0
    loaded = saved.load(tenant / "saved.plan")
    made = _plan(tenant)
    assert loaded.changes == made.changes
    assert (loaded.target, loaded.no_op, loaded.only) == (made.target, made.no_op, [])
