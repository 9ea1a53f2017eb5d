"""``channelsync plan``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from channelsync.commands import shared
from channelsync.exitcodes import EXIT_CHANGES, EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from channelsync.plan import Plan
    from channelsync.probe.check import Result as CheckResult


def cmd_plan(args: argparse.Namespace) -> int:
    from channelsync.plan import PlanWarning, WarningCategory, make_plan
    from channelsync.render import connections
    from channelsync.targets import absent

    if getattr(args, "all_envs", False):
        return _all_environments(args)
    config = shared.load(shared.config_source(args))
    bindings = shared.bindings(args)
    target = shared.open_target(args, readonly=True)
    try:
        plan = make_plan(
            config, target, only=args.only, fingerprint=bool(args.out), secrets=args.secrets
        )
        missing = absent(target)
    finally:
        target.close()
    if missing:
        plan.warnings.insert(0, PlanWarning(WarningCategory.TENANT_ABSENT, missing))
    if args.out:
        from channelsync.plan import saved as saved_plans

        saved_plans.save(plan, args.out)
    results = None
    if args.check_connections:
        from channelsync import gate

        results = gate.run(config, plan, bindings=bindings, secrets=args.secrets)
        blocking = gate.blocking(config, results)
        for line in connections.failure_lines(results, blocking)[1]:  # disabled: warnings
            print(line, file=sys.stderr)
    saved = [f"Plan saved to {args.out}; apply it with: channelsync apply {args.out}"]
    write(plan, args.format, results, saved if args.out else None)
    if results and gate.blocking(config, results):
        return EXIT_ERROR
    if args.detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def write(
    plan: Plan,
    form: str,
    results: Sequence[CheckResult] | None = None,
    extra: list[str] | None = None,
) -> None:
    """The plan on stdout in ``form`` (``--format``), with the connection test results."""
    from channelsync.render import connections
    from channelsync.render import plan as render
    from channelsync.render.runbook import runbook

    if form == "json":
        sys.stdout.write(render.as_json(plan, connections.as_json(results)))
    elif form == "markdown":
        sys.stdout.write(render.markdown(plan, extra=connections.markdown(results)))
    elif form == "runbook":
        sys.stdout.write(runbook(plan) + connections.text(results))
    else:
        sys.stdout.write(render.text(plan, colour=render.use_colour(sys.stdout), extra=extra))
        sys.stdout.write(connections.text(results))


def cmd_show(args: argparse.Namespace) -> int:
    """A saved plan, rendered as 'plan' rendered it (no config, target or secret needed)."""
    from channelsync.plan import saved as saved_plans

    write(saved_plans.load(args.planfile), args.format)
    return EXIT_OK


def _all_environments(args: argparse.Namespace) -> int:
    """``plan --all-envs``: every environment, a section each; the worst exit code."""
    from channelsync.environments import all_environments
    from channelsync.errors import UsageError
    from channelsync.plan.envs import plan_all
    from channelsync.render import plan as render
    from channelsync.render.runbook import environments_runbook

    given = [
        flag
        for flag, used in (
            ("--env", args.env),
            ("--dir", getattr(args, "dir_given", False)),
            ("--target", args.target),
            ("--out", args.out),
            ("--check-connections", args.check_connections),
        )
        if used
    ]
    if given:
        raise UsageError(
            f"--all-envs plans every environment of channelsync.yaml as it is: drop "
            f"{', '.join(given)} (plan one environment with --env NAME for those)"
        )
    sections = plan_all(all_environments(), only=args.only, secrets=args.secrets)
    for section in sections:
        for line in section.diagnostics if section.plan is not None else ():
            print(f"{section.name}: {line}", file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(render.environments_json(sections))
    elif args.format == "markdown":
        sys.stdout.write(render.environments_markdown(sections))
    elif args.format == "runbook":
        sys.stdout.write(environments_runbook(sections))
    else:
        sys.stdout.write(render.environments_text(sections, colour=render.use_colour(sys.stdout)))
    if any(s.plan is None for s in sections):
        return EXIT_ERROR
    if args.detailed_exitcode and any(s.plan is not None and s.plan.has_changes for s in sections):
        return EXIT_CHANGES
    return EXIT_OK
