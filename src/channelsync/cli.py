"""Command line: argument parsing and exit codes only.

Exit codes: 0 success (no changes), 1 error, 2 changes pending or drift found (plan with
--detailed-exitcode, drift). Heavy modules are imported inside the commands so that
``--help`` and ``--version`` start fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from channelsync import __version__
from channelsync.argtypes import Parser as _Parser
from channelsync.argtypes import date as _date
from channelsync.argtypes import dir_option as _dir_option
from channelsync.argtypes import path as _path
from channelsync.argtypes import positive_seconds as _positive_seconds
from channelsync.argtypes import seconds as _seconds
from channelsync.argtypes import target as _target
from channelsync.defaults import DEFAULT_TARGET

if TYPE_CHECKING:
    from channelsync.bindings import Bindings
    from channelsync.errors import Diagnostic
    from channelsync.loader import Config
    from channelsync.plan import Plan
    from channelsync.targets.base import Target

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="channelsync",
        description="Email channels as code: validate, plan and apply channels.d/ to a tenant.",
    )
    parser.add_argument("--version", action="version", version=f"channelsync {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    from channelsync.bindings import add_arguments as secret_options

    p = sub.add_parser("validate", help="check the config files and report every problem")
    _dir_option(p)
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    secret_options(p, files=False)
    p.add_argument(
        "--as-of",
        type=_date,
        metavar="YYYY-MM-DD",
        help="date the provider notices against this day instead of today",
    )
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("plan", help="show what apply would change in the target")
    _dir_option(p)
    _target_option(p)
    p.add_argument("--format", choices=("text", "json", "markdown", "runbook"), default="text")
    p.add_argument("--out", type=_path, help="save the plan (no secrets) for 'apply PLANFILE'")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there are no changes, 2 when there are, 1 on error",
    )
    _only_option(p)
    p.add_argument(
        "--check-connections",
        action="store_true",
        help="also test the connections apply would test, and show the results (exit 1 on failure)",
    )
    secret_options(p)
    p.set_defaults(handler=cmd_plan)

    p = sub.add_parser("apply", help="make the target match the config")
    p.add_argument("planfile", nargs="?", type=_path, help="a plan saved with 'plan --out'")
    _dir_option(p)
    _target_option(p)
    p.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    p.add_argument("--allow-delete", action="store_true", help="allow deleting resources")
    p.add_argument("--force", action="store_true", help="allow changing over 30%% of resources")
    _only_option(p)
    p.add_argument(
        "--lock-timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="how long to wait for another apply to finish (default 30)",
    )
    p.add_argument(
        "--skip-connection-tests",
        action="store_true",
        help="apply without testing the mail servers first (not recommended)",
    )
    from channelsync.defaults import PROBE_TIMEOUT

    p.add_argument(
        "--timeout",
        type=_positive_seconds,  # as 'test --timeout'
        default=PROBE_TIMEOUT,
        metavar="S",
        help=f"seconds allowed per connection test (default {PROBE_TIMEOUT:g})",
    )
    secret_options(p)
    p.set_defaults(handler=cmd_apply)

    p = sub.add_parser("drift", help="compare the target with the config (read-only)")
    _dir_option(p)
    _target_option(p)
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("--ignore", type=_path, help="YAML file of accepted, expiring differences")
    secret_options(p, bindings=False)
    p.set_defaults(handler=cmd_drift)

    p = sub.add_parser("export", help="write the target's live state into the config files")
    _dir_option(p)
    _target_option(p)
    p.add_argument(
        "--prune",
        action="store_true",
        help="also remove the documents of resources the tenant does not have",
    )
    p.add_argument(
        "--secret-bindings",
        type=_path,
        metavar="FILE",
        help="also bind each new secret placeholder to its endpoints in FILE "
        "(created or extended, comments kept)",
    )
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("list", help="list channels like the console's channel list")
    _dir_option(p)
    _target_option(p)
    p.add_argument("--live", action="store_true", help="list the target, not the config")
    p.add_argument(
        "--sort",
        default="name",
        metavar="COLUMN",
        help="sort column; --sort=-COLUMN sorts descending",
    )
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep matching rows, e.g. 'outgoing=VCC Internal' or enabled=false",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=cmd_list)

    from channelsync.probe import command as probe_command

    probe_command.add_parser(sub)

    from channelsync.gitops import command as gitops_command

    gitops_command.add_parsers(sub, parser)

    p = sub.add_parser(
        "discover", help="find a mailbox's settings from its address (autoconfig, SRV, MX)"
    )
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument("--write", type=_path, metavar="FILE", help="write a commented channel YAML")
    p.add_argument("--autoconfig-url", metavar="URL", help="an https autoconfig file to read")
    p.add_argument("--dns-server", metavar="HOST[:PORT]", help="resolver for SRV and MX")
    p.set_defaults(handler=cmd_discover)

    p = sub.add_parser("schema", help="print or write the JSON Schemas generated from the model")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write schemas/ files")
    mode.add_argument("--check", action="store_true", help="exit 1 when schemas/ files are stale")
    p.add_argument("--out", type=_path, default=Path("schemas"), help="schema directory")
    p.set_defaults(handler=cmd_schema)

    from channelsync.server.command import add_parsers as add_server_parsers

    add_server_parsers(sub)
    return parser


def _only_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        default=[],
        help="limit to these resources: NAME or Kind/NAME (e.g. EmailChannel/Support)",
    )


def _target_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target",
        type=_target,
        metavar="URL",
        help=f"tenant to manage (default: $CHANNELSYNC_TARGET or {DEFAULT_TARGET})",
    )


def _load(directory: Path) -> Config:
    """The config, with its warnings on stderr; ConfigError when it has errors."""
    from channelsync.loader import load_config

    config = load_config(directory)
    for diagnostic in config.diagnostics:
        print(diagnostic, file=sys.stderr)
    config.raise_on_errors(already_shown=True)
    return config


def _bindings(args: argparse.Namespace) -> Bindings | None:
    from channelsync.bindings import from_args

    return from_args(args)


def _secret_files(args: argparse.Namespace) -> AbstractContextManager[None]:
    """Where ``${file:...}`` secrets may be read while a command runs: inside the config
    repository, unless ``--allow-secret-files-outside``."""
    if not hasattr(args, "allow_secret_files_outside"):
        return nullcontext()
    from channelsync.secrets import confined_to, repository_root

    return confined_to(None if args.allow_secret_files_outside else repository_root(args.dir))


def _open(url: str | None, *, readonly: bool = False, existing: bool = False) -> Target:
    """``existing``: refuse a target that names no tenant yet (nothing to read from)."""
    from channelsync.targets import absent, open_target, target_url
    from channelsync.targets.base import TargetError

    target = open_target(target_url(url), readonly=readonly)
    missing = absent(target) if existing else None
    if missing:
        target.close()
        raise TargetError(missing)
    return target


def cmd_plan(args: argparse.Namespace) -> int:
    from channelsync.plan import PlanWarning, WarningCategory, make_plan
    from channelsync.render import connections
    from channelsync.render import plan as render
    from channelsync.render.runbook import runbook
    from channelsync.targets import absent

    config = _load(args.dir)
    bindings = _bindings(args)
    target = _open(args.target, readonly=True)
    try:
        plan = make_plan(config, target, only=args.only, fingerprint=bool(args.out))
        missing = absent(target)
    finally:
        target.close()
    if missing:
        plan.warnings.insert(0, PlanWarning(WarningCategory.TENANT_ABSENT, missing))
    if args.out:
        plan.save(args.out)
    results = None
    if args.check_connections:
        from channelsync import gate

        results = gate.run(config, plan, bindings=bindings)
        for line in gate.failure_lines(config, results)[1]:  # disabled channels: warnings
            print(line, file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(render.as_json(plan, connections.as_json(results)))
    elif args.format == "markdown":
        sys.stdout.write(render.markdown(plan, extra=connections.markdown(results)))
    elif args.format == "runbook":
        sys.stdout.write(runbook(plan) + connections.text(results))
    else:
        saved = [f"Plan saved to {args.out}; apply it with: channelsync apply {args.out}"]
        colour = render.use_colour(sys.stdout)
        sys.stdout.write(render.text(plan, colour=colour, extra=saved if args.out else None))
        sys.stdout.write(connections.text(results))
    if results and gate.blocking(config, results):
        return EXIT_ERROR
    if args.detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    from channelsync import apply as applying
    from channelsync.plan import Plan
    from channelsync.render.apply import report as render_report

    config = _load(args.dir)
    bindings = _bindings(args)
    saved = Plan.load(args.planfile) if args.planfile else None
    if saved is not None and args.only:
        print(
            "error: --only cannot be used with a saved plan: it is already limited to what "
            "'plan --only' selected",
            file=sys.stderr,
        )
        return EXIT_ERROR
    target = _open(args.target)
    try:
        outcome = applying.run(
            config,
            target,
            saved=saved,
            only=args.only,
            allow_delete=args.allow_delete,
            force=args.force,
            lock_timeout=args.lock_timeout,
            show=_show_plan,
            confirm=lambda plan: args.auto_approve or _confirm(),
            gate=lambda plan: _connection_gate(args, config, plan, bindings),
        )
    finally:
        target.close()
    if outcome.report is not None:
        sys.stdout.write(render_report(outcome.report))
    return EXIT_OK if outcome.ok else EXIT_ERROR


def _show_plan(plan: Plan) -> None:
    from channelsync.render import plan as render

    sys.stdout.write(render.text(plan, colour=render.use_colour(sys.stdout)))


def _confirm() -> bool:
    if sys.stdin is None or not sys.stdin.isatty():  # None: started without a stdin at all
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

    if args.skip_connection_tests:
        print(
            "WARNING: connection tests skipped (--skip-connection-tests): mail servers were "
            "NOT checked before this apply",
            file=sys.stderr,
        )
        return True
    from channelsync.probe.command import _progress_bar

    terminal = sys.stderr is not None and sys.stderr.isatty()
    try:
        results = gate.run(
            config,
            plan,
            bindings=bindings,
            timeout=args.timeout,
            progress=_progress_bar if terminal else None,
        )
    except KeyboardInterrupt:
        if terminal:
            sys.stderr.write("\r\x1b[K")
        print("Connection tests interrupted; nothing was changed.", file=sys.stderr)
        raise
    if terminal:
        sys.stderr.write("\r\x1b[K")
    for line in gate.warning_lines(results):
        print(line, file=sys.stderr)
    failures, warnings = gate.failure_lines(config, results)
    for line in failures + warnings:
        print(line, file=sys.stderr)
    if results:
        print(gate.summary_line(results), file=sys.stderr)
    if failures:
        print("Apply stopped by the connection tests; nothing was changed.", file=sys.stderr)
    return not failures


def cmd_drift(args: argparse.Namespace) -> int:
    import datetime as dt

    from channelsync import ignore
    from channelsync.plan import PlanWarning, WarningCategory, make_plan
    from channelsync.render import plan as render

    config = _load(args.dir)
    never: list[Diagnostic] = []
    rules = ignore.load_rules(args.ignore, never) if args.ignore else []
    for diagnostic in never:
        print(diagnostic, file=sys.stderr)
    active, expired = ignore.split_expired(rules, dt.date.today())
    target = _open(args.target, readonly=True, existing=True)
    try:
        plan = ignore.apply_rules(make_plan(config, target, for_apply=False), active)
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


def cmd_export(args: argparse.Namespace) -> int:
    from channelsync import rules
    from channelsync.export import export
    from channelsync.loader import load_config

    config = load_config(args.dir) if args.dir.exists() else None
    # a reference to a resource whose file is gone does not block: export writes it back
    references = set(rules.reference_problems(config)) if config is not None else set()
    if config is not None and config.errors:
        for diagnostic in config.errors:
            print(diagnostic, file=sys.stderr)
        if any(d not in references for d in config.errors):
            print(
                "error: fix these first: export edits the config files in place and must know "
                "which resource each document defines",
                file=sys.stderr,
            )
            return EXIT_ERROR
        print(
            f"note: exporting anyway: the tenant's resources are written back, which may "
            f"resolve these {len(config.errors)} reference error(s); run 'channelsync validate' "
            "after",
            file=sys.stderr,
        )
    if args.secret_bindings is not None:
        from channelsync.bindings import check_writable

        check_writable(args.secret_bindings)
    target = _open(args.target, readonly=True, existing=True)
    try:
        report = export(target, args.dir, config, prune=args.prune)
    finally:
        target.close()
    for path in report.written:
        print(f"wrote {path}")
    for what in report.removed:
        print(f"removed {what}")
    for what in report.not_pruned:
        print(f"would remove {what}")
    if report.not_pruned:
        print(
            f"{len(report.not_pruned)} resource(s) not in the tenant were left in the config; "
            "rerun with --prune to remove them"
        )
    if args.secret_bindings is not None:
        from channelsync.bindings import extend_file

        if extend_file(args.secret_bindings, report.bindings):
            print(f"wrote {args.secret_bindings}")
    if report.placeholders:
        print("\nSet these secrets before plan or apply (their values never leave the tenant):")
        for variable, what in report.placeholders:
            print(f"  {variable}  ({what})")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    import json

    from channelsync import listing
    from channelsync.defaults import tenant_default_server

    filters = [listing.Filter.parse(f) for f in args.filter]
    if args.live:
        target = _open(args.target, readonly=True, existing=True)
        try:
            live = target.read()
        finally:
            target.close()
        channels = [r.data for r in live.values() if r.kind == "EmailChannel"]
        servers = [r.data for r in live.values() if r.kind == "SmtpServer"]
    else:
        config = _load(args.dir)
        channels = [r.data for r in config.of_kind("EmailChannel")]
        servers = [r.data for r in config.of_kind("SmtpServer")]
    table = listing.rows(channels, tenant_default_server(servers))
    table = listing.select(table, filters, args.sort)
    if args.format == "json":
        print(json.dumps(listing.as_json(table), indent=2))
    else:
        sys.stdout.write(listing.render_table(table))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from channelsync import notices
    from channelsync.loader import load_config
    from channelsync.render import diagnostics as render

    config = load_config(args.dir)
    if args.secret_bindings is not None:
        from channelsync.bindings import problems_of

        config.diagnostics = sorted([*config.diagnostics, *problems_of(args)])
    as_of = args.as_of or dt.date.today()
    config.diagnostics.extend(notices.diagnostics(config.resources, as_of))
    config.diagnostics.sort()
    if args.format == "json":
        sys.stdout.write(render.as_json(config.diagnostics))
    elif args.format == "github":
        sys.stdout.write(render.github(config.diagnostics))
    else:
        sys.stdout.write(render.text(config.diagnostics, config.files))
    return EXIT_ERROR if config.errors else EXIT_OK


def cmd_discover(args: argparse.Namespace) -> int:
    from channelsync import discover
    from channelsync.probe.dnscheck import LookupFailed, Lookups

    try:
        found = discover.discover(
            args.address, Lookups(args.dns_server), autoconfig_url=args.autoconfig_url
        )
        sys.stdout.write(discover.report(found))
        if found.chosen is None:
            return EXIT_ERROR
        if args.write:
            discover.write_new(args.write, discover.channel_yaml(found))
            print(f"wrote {args.write}; set the secrets it names and run 'channelsync test'")
    except (discover.DiscoverError, LookupFailed, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"error: {args.write}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from channelsync import schema

    if args.write:
        for path in schema.write_all(args.out):
            print(f"wrote {path}")
        return EXIT_OK
    if args.check:
        stale = schema.stale_files(args.out)
        for path in stale:
            state = "stale" if path.is_file() else "missing"
            print(f"{path}: {state}; run 'channelsync schema --write'", file=sys.stderr)
        return EXIT_ERROR if stale else EXIT_OK
    sys.stdout.write(schema.render(schema.all_schemas()[schema.COMBINED]))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    from channelsync.errors import ChannelsyncError, ConfigError

    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        with _secret_files(args):
            return handler(args)
    except ConfigError as exc:
        if not exc.already_shown:
            for diagnostic in exc.diagnostics:
                print(diagnostic, file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ChannelsyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except OSError as exc:  # a file or folder the command was pointed at
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error:{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # the last line of defence: no tracebacks for users
        if os.environ.get("CHANNELSYNC_DEBUG"):
            raise
        print(
            f"internal error: {type(exc).__name__}; rerun with CHANNELSYNC_DEBUG=1 and report it",
            file=sys.stderr,
        )
        return EXIT_ERROR


def run() -> NoReturn:
    """The console script: ``main``, then exit without tearing down the heap.

    A run over ten thousand files ends with a million small objects; freeing them one by one
    at interpreter shutdown takes longer than some commands. Output is flushed first.
    """
    # started with stdout or stderr closed: write into the void rather than crash
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or EXIT_ERROR
    os._exit(code)
