"""What keeps plans of large configs fast and small: shared secrets fingerprinted once, the
plan's text written change by change."""

from __future__ import annotations

from pathlib import Path

from channelsync.loader import load_config
from channelsync.plan import make_plan
from channelsync.render import plan as render
from channelsync.targets.sqlite import SqliteTarget
from tests.tenant_config import BASE, SECRETS, write


def _channels(n: int) -> dict[str, str]:
    return {
        f"c{i:02d}.yaml": BASE["support.yaml"]
        .replace("name: Support", f"name: Channel {i:02d}")
        .replace("support@", f"c{i:02d}@")
        for i in range(n)
    }


def test_each_secret_reference_is_fingerprinted_once_per_folder(tenant: Path) -> None:
    write(tenant, _channels(20))
    target = SqliteTarget(f"sqlite:///{tenant}/.channelsync/tenant.db")
    asked: list[str] = []
    real = target.fingerprint

    def counting(secret: str) -> str:
        asked.append(secret)
        return real(secret)

    target.fingerprint = counting  # type: ignore[method-assign]
    try:
        plan = make_plan(load_config(tenant / "channels.d"), target)
    finally:
        target.close()
    assert sorted(asked) == sorted(SECRETS.values())
    assert plan.summary["create"] == 24


def test_the_plan_text_comes_change_by_change(tenant: Path) -> None:
    write(tenant, _channels(3))
    target = SqliteTarget(f"sqlite:///{tenant}/.channelsync/tenant.db", readonly=True)
    try:
        plan = make_plan(load_config(tenant / "channels.d"), target)
    finally:
        target.close()
    chunks = list(render.text_chunks(plan))
    assert len(chunks) == len(plan.changes) + 2  # the target, each change, the summary
    assert "".join(chunks) == render.text(plan)
    assert chunks[1].startswith('  + EmailScript "Support Script"\n')
