"""``channelsync drift``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from channelsync.commands import shared
from channelsync.exitcodes import EXIT_CHANGES, EXIT_OK

if TYPE_CHECKING:
    from channelsync.errors import Diagnostic


def cmd_drift(args: argparse.Namespace) -> int:
    import datetime as dt

    from channelsync import ignore
    from channelsync.plan import PlanWarning, WarningCategory, make_plan
    from channelsync.render import plan as render

    config = shared.load(shared.config_source(args))
    never: list[Diagnostic] = []
    rules = ignore.load_rules(args.ignore, never) if args.ignore else []
    for diagnostic in never:
        print(diagnostic, file=sys.stderr)
    active, expired = ignore.split_expired(rules, dt.date.today())
    target = shared.open_target(args, readonly=True, existing=True)
    try:
        plan = make_plan(config, target, for_apply=False, secrets=args.secrets)
        plan = ignore.apply_rules(plan, active)
    finally:
        target.close()
    expiry = WarningCategory.IGNORE_RULE_EXPIRED
    plan.warnings.extend(
        PlanWarning(expiry, f"ignore rule expired and no longer applies: {r.describe()}")
        for r in expired
    )
    if args.format == "json":
        sys.stdout.write(render.as_json(plan, {"drift": plan.has_changes, "ignored": plan.ignored}))
    elif args.format == "markdown":
        sys.stdout.write(render.markdown(plan, label="Drift", marker=render.DRIFT_MARKER))
    else:
        sys.stdout.write(render.text(plan, colour=render.use_colour(sys.stdout), label="Drift"))
    return EXIT_CHANGES if plan.has_changes else EXIT_OK
