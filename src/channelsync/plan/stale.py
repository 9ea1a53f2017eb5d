"""Whether a saved plan still holds: the config and every touched live resource as they
were when it was made (a plan made again now must do exactly the same)."""

from __future__ import annotations

import json
from dataclasses import asdict

from channelsync.errors import StalePlan as StalePlan
from channelsync.plan.data import Change, Plan


def _digest(change: Change) -> str:
    """What a change does, field by field: a secret rotated since the plan makes it differ."""
    return json.dumps([asdict(f) for f in change.fields], sort_keys=True, default=str)


def check_current(saved: Plan, fresh: Plan) -> None:
    """Refuse a saved plan when the config or a touched live resource changed since."""
    if saved.target != fresh.target:
        raise StalePlan(f"stale plan: it was made for {saved.target}, not {fresh.target}")
    if saved.config_fingerprint != fresh.config_fingerprint:
        raise StalePlan("stale plan: the configuration changed since it was made; plan again")
    now = {(c.kind, c.name, c.action): (c.live_etag, _digest(c)) for c in fresh.changes}
    then = {(c.kind, c.name, c.action): (c.live_etag, _digest(c)) for c in saved.changes}
    if now != then:
        changed = sorted({str(k[0][1]) for k in set(now.items()) ^ set(then.items())})
        raise StalePlan(
            "stale plan: the tenant changed since it was made "
            f"({', '.join(changed[:5])}); plan again"
        )
