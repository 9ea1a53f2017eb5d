"""One errors module: every user-facing error class, its exit code, and the tree that draws them."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from channelsync import errors


def _error_classes() -> list[type[errors.ChannelsyncError]]:
    return [
        c
        for c in vars(errors).values()
        if inspect.isclass(c) and issubclass(c, errors.ChannelsyncError)
    ]


def test_the_errors_docstring_draws_every_class_with_its_exit_code() -> None:
    drawn = dict(re.findall(r"(\w+) \[(\d+)\]", errors.__doc__ or ""))
    for cls in _error_classes():
        assert drawn.get(cls.__name__) == str(cls.exit_code), cls.__name__


def test_the_drawn_tree_matches_the_class_tree() -> None:
    lines = (errors.__doc__ or "").split("::", 1)[1].splitlines()
    parents: dict[int, str] = {}
    for line in lines:
        found = re.search(r"(\w+) \[\d+\]", line)
        if not found:
            continue
        depth = found.start() // 4 - 1  # the block is indented by 4
        parents[depth] = found.group(1)
        cls = getattr(errors, found.group(1), None)
        if cls is None or depth == 0:
            continue
        assert cls.__bases__[0].__name__ == parents[depth - 1], found.group(1)


def test_a_stale_saved_plan_exits_3_and_every_other_error_1() -> None:
    codes = {c.__name__: c.exit_code for c in _error_classes()}
    assert codes.pop("StalePlan") == 3
    assert set(codes.values()) == {1}


def test_old_locations_re_export_the_same_classes() -> None:
    from channelsync import apply, discover, export, plan, secrets, trust
    from channelsync.gitops import scaffold
    from channelsync.targets import base

    assert plan.StalePlan is errors.StalePlan
    assert apply.SafetyError is errors.SafetyError
    assert secrets.SecretUnavailable is errors.SecretUnavailable
    assert trust.TrustUnavailable is errors.TrustUnavailable
    assert export.ExportRefused is errors.ExportRefused
    assert scaffold.ScaffoldError is errors.ScaffoldError
    assert discover.DiscoverError is errors.DiscoverError
    assert (base.TargetError, base.ConflictError, base.LockTimeout) == (
        errors.TargetError,
        errors.ConflictError,
        errors.LockTimeout,
    )


def test_readme_documents_the_stale_plan_exit_code() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    apply_row = next(
        line for line in readme.splitlines() if line.startswith("| `channelsync apply")
    )
    assert apply_row.endswith("| 0 done, 1 error, 3 stale saved plan (plan again) |")
    assert 'refuses with "stale plan" (exit\n  3, nothing changed)' in readme
