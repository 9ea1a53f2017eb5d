"""The README's set-up on the shipped examples works with the secret-file rule (issue 9).

``${file:}`` secrets must be inside the config repository (without
``--allow-secret-files-outside``), so the examples reference only secrets that the rule allows:
the README's ``channelsync plan`` warns about nothing but unset secrets, and with every secret
set, apply succeeds without the flag.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest


def _references(examples: Path) -> tuple[set[str], set[Path]]:
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(examples.glob("*.yaml")))
    names = set(re.findall(r"\$\{env:([A-Za-z0-9_]+)\}", text))
    files = {Path(f) for f in re.findall(r"\$\{file:([^}]+)\}", text)}
    return names, files


def test_the_examples_secret_files_are_inside_the_repository(examples: Path, cli: Any) -> None:
    _names, files = _references(examples)
    assert files, "the examples show a ${file:} secret"
    assert all(not f.is_absolute() for f in files)
    result = cli("plan")
    assert "outside the config repository" not in result.out + result.err


def test_apply_of_the_examples_with_every_secret_set_needs_no_outside_flag(
    examples: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    names, files = _references(examples)
    for name in names:
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    for relative in files:
        path = examples / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("file-secret\n", encoding="utf-8")
    target = f"sqlite:///{examples.parent / 'tenant.db'}"
    result = cli("apply", "--auto-approve", "--skip-connection-tests", "--target", target)
    assert result.code == 0, result.err
    assert "warning" not in result.err
