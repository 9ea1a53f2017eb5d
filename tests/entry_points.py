"""Installing a plug-in, for a test: one more entry point in a group, without a package."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest


def register(monkeypatch: pytest.MonkeyPatch, group: str, name: str, value: str) -> None:
    """What installing a package declaring ``name = "value"`` in the entry-point ``group``
    does, for the rest of the test."""
    real = importlib.metadata.entry_points
    ours = importlib.metadata.EntryPoint(name, value, group)

    def entry_points(**select: Any) -> Any:
        found = real(**select)
        if select.get("group") == group:
            return importlib.metadata.EntryPoints([*found, ours])
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
