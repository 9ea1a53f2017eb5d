"""``channelsync apply``: the confirmation and the connection gate around ``apply.run``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from channelsync.commands import shared
from channelsync.exitcodes import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from channelsync.bindings import Bindings
    from channelsync.loader import Config
    from channelsync.plan import Plan


def cmd_apply(args: argparse.Namespace) -> int:
    from channelsync import apply as applying
    from channelsync import targets
    from channelsync.errors import UsageError
    from channelsync.plan import saved as saved_plans
    from channelsync.render.apply import as_json as render_json
    from channelsync.render.apply import report as render_report

    machine = args.format == "json"
    if machine and not (args.auto_approve or args.planfile):
        raise UsageError(
            "apply --format json cannot ask for confirmation: add --auto-approve, or apply a "
            "saved plan"
        )
    config = shared.load(shared.config_source(args))
    bindings = shared.bindings(args)
    saved = saved_plans.load(args.planfile) if args.planfile else None
    if saved is not None:
        shared.refuse_other_environment(args, args.planfile, saved.target)
    if saved is not None and args.only:
        raise UsageError(
            "--only cannot be used with a saved plan: it is already limited to what "
            "'plan --only' selected"
        )
    show = _no_plan if machine else _show_plan
    reader = shared.open_target(args, readonly=True)
    try:
        if targets.absent(reader) and not applying.preflight(
            config,
            reader,
            saved=saved,
            only=args.only,
            allow_delete=args.allow_delete,
            force=args.force,
            show=show,
            can_confirm=lambda plan: args.auto_approve or _can_ask(plan),
            secrets=args.secrets,
        ):
            return EXIT_ERROR
    finally:
        reader.close()
    target = shared.open_target(args)
    try:
        outcome = applying.run(
            config,
            target,
            saved=saved,
            only=args.only,
            allow_delete=args.allow_delete,
            force=args.force,
            lock_timeout=args.lock_timeout,
            show=show,
            confirm=lambda plan: args.auto_approve or _confirm(),
            gate=lambda plan: _connection_gate(args, config, plan, bindings),
            secrets=args.secrets,
        )
    finally:
        target.close()
    if machine:
        sys.stdout.write(render_json(outcome))
    elif outcome.report is not None:
        sys.stdout.write(render_report(outcome.report))
    return EXIT_OK if outcome.ok else EXIT_ERROR


def _no_plan(plan: Plan) -> None:
    """--format json: the plan is part of the apply report, not shown before it."""


def _show_plan(plan: Plan) -> None:
    from channelsync.render import plan as render

    for chunk in render.text_chunks(plan, colour=render.use_colour(sys.stdout)):
        sys.stdout.write(chunk)


def _can_ask(plan: Plan) -> bool:
    """Whether there is a terminal to confirm on; if not, show the plan and say so."""
    if _no_terminal():
        _show_plan(plan)
        _confirm()
        return False
    return True


def _no_terminal() -> bool:
    return sys.stdin is None or not sys.stdin.isatty()  # None: started without a stdin at all


def _confirm() -> bool:
    if _no_terminal():
        print(
            "error: refusing to apply without confirmation: no terminal to ask on. "
            "Review the plan and rerun with --auto-approve, or apply a saved plan",
            file=sys.stderr,
        )
        return False
    answer = input("Apply these changes? Only 'yes' is accepted: ").strip()
    if answer != "yes":
        print("Apply cancelled; nothing was changed.", file=sys.stderr)
        return False
    return True


def _connection_gate(
    args: argparse.Namespace, config: Config, plan: Plan, bindings: Bindings | None
) -> bool:
    """The pre-apply connection tests (channelsync.gate); False stops the apply."""
    from channelsync import gate
    from channelsync.render import connections as render
    from channelsync.render.checks import CLEAR_LINE, progress_bar

    if args.skip_connection_tests:
        print(render.SKIPPED, file=sys.stderr)
        return True

    terminal = sys.stderr is not None and sys.stderr.isatty()
    try:
        results = gate.run(
            config,
            plan,
            bindings=bindings,
            timeout=args.timeout,
            progress=progress_bar if terminal else None,
            secrets=args.secrets,
        )
    except KeyboardInterrupt:
        if terminal:
            sys.stderr.write(CLEAR_LINE)
        print(render.INTERRUPTED, file=sys.stderr)
        raise
    if terminal:
        sys.stderr.write(CLEAR_LINE)
    for line in render.warning_lines(results):
        print(line, file=sys.stderr)
    failures, warnings = render.failure_lines(results, gate.blocking(config, results))
    for line in failures + warnings:
        print(line, file=sys.stderr)
    if results:
        print(render.summary_line(results), file=sys.stderr)
    if failures:
        print(render.STOPPED, file=sys.stderr)
    return not failures
