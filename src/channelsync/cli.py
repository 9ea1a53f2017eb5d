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
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from channelsync import __version__
from channelsync.defaults import DEFAULT_TARGET

if TYPE_CHECKING:
    from channelsync.loader import Config
    from channelsync.plan import Plan
    from channelsync.targets.base import Target

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _dir_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get("CHANNELSYNC_DIR", "channels.d")),
        help="config directory (default: channels.d, or $CHANNELSYNC_DIR)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="channelsync",
        description="Email channels as code: validate, plan and apply channels.d/ to a tenant.",
    )
    parser.add_argument("--version", action="version", version=f"channelsync {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("validate", help="check the config files and report every problem")
    _dir_option(p)
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
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
    p.add_argument("--out", type=Path, help="save the plan (no secrets) for 'apply PLANFILE'")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there are no changes, 2 when there are, 1 on error",
    )
    p.add_argument("--only", nargs="+", metavar="NAME", default=[], help="limit to these names")
    p.add_argument(
        "--check-connections",
        action="store_true",
        help="also test the connections apply would test, and show the results (exit 1 on failure)",
    )
    p.set_defaults(handler=cmd_plan)

    p = sub.add_parser("apply", help="make the target match the config")
    p.add_argument("planfile", nargs="?", type=Path, help="a plan saved with 'plan --out'")
    _dir_option(p)
    _target_option(p)
    p.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    p.add_argument("--allow-delete", action="store_true", help="allow deleting resources")
    p.add_argument("--force", action="store_true", help="allow changing over 30%% of resources")
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
    p.set_defaults(handler=cmd_apply)

    p = sub.add_parser("drift", help="compare the target with the config (read-only)")
    _dir_option(p)
    _target_option(p)
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("--ignore", type=Path, help="YAML file of accepted, expiring differences")
    p.set_defaults(handler=cmd_drift)

    p = sub.add_parser("export", help="write the target's live state into the config files")
    _dir_option(p)
    _target_option(p)
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

    gitops_command.add_parsers(sub)

    p = sub.add_parser(
        "discover", help="find a mailbox's settings from its address (autoconfig, SRV, MX)"
    )
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument("--write", type=Path, metavar="FILE", help="write a commented channel YAML")
    p.add_argument("--autoconfig-url", metavar="URL", help="an https autoconfig file to read")
    p.add_argument("--dns-server", metavar="HOST[:PORT]", help="resolver for SRV and MX")
    p.set_defaults(handler=cmd_discover)

    p = sub.add_parser("schema", help="print or write the JSON Schemas generated from the model")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write schemas/ files")
    mode.add_argument("--check", action="store_true", help="exit 1 when schemas/ files are stale")
    p.add_argument("--out", type=Path, default=Path("schemas"), help="schema directory")
    p.set_defaults(handler=cmd_schema)

    from channelsync.server.command import add_parsers as add_server_parsers

    add_server_parsers(sub)
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not 0 <= value < 86_400:  # also refuses nan and inf
        raise argparse.ArgumentTypeError("must be between 0 and 86400 seconds")
    return value


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def _target_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target",
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


def _open(url: str | None, *, readonly: bool = False) -> Target:
    from channelsync.targets import open_target, target_url

    return open_target(target_url(url), readonly=readonly)


def cmd_plan(args: argparse.Namespace) -> int:
    from channelsync.plan import make_plan
    from channelsync.render import connections
    from channelsync.render import plan as render
    from channelsync.render.runbook import runbook

    config = _load(args.dir)
    target = _open(args.target)
    try:
        plan = make_plan(config, target, only=args.only, fingerprint=bool(args.out))
    finally:
        target.close()
    if args.out:
        plan.save(args.out)
    results = None
    if args.check_connections:
        from channelsync import gate

        results = gate.run(config, plan)
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
    if results and any(not r.ok for r in results):
        return EXIT_ERROR
    if args.detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    from channelsync import apply as applying
    from channelsync.plan import Plan
    from channelsync.render.apply import report as render_report

    config = _load(args.dir)
    saved = Plan.load(args.planfile) if args.planfile else None
    target = _open(args.target)
    try:
        outcome = applying.run(
            config,
            target,
            saved=saved,
            allow_delete=args.allow_delete,
            force=args.force,
            lock_timeout=args.lock_timeout,
            show=_show_plan,
            confirm=lambda plan: args.auto_approve or _confirm(),
            gate=lambda plan: _connection_gate(args, config, plan),
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


def _connection_gate(args: argparse.Namespace, config: Config, plan: Plan) -> bool:
    """The pre-apply connection tests (channelsync.gate); False stops the apply."""
    from channelsync import gate

    if args.skip_connection_tests:
        print(
            "WARNING: connection tests skipped (--skip-connection-tests): mail servers were "
            "NOT checked before this apply",
            file=sys.stderr,
        )
        return True
    results = gate.run(config, plan)
    for line in gate.warning_lines(results):
        print(line, file=sys.stderr)
    failures = gate.failure_lines(results)
    for line in failures:
        print(line, file=sys.stderr)
    if failures:
        print("Apply stopped by the connection tests; nothing was changed.", file=sys.stderr)
    return not failures


def cmd_drift(args: argparse.Namespace) -> int:
    import datetime as dt

    from channelsync import ignore
    from channelsync.plan import make_plan
    from channelsync.render import plan as render

    config = _load(args.dir)
    rules = ignore.load_rules(args.ignore) if args.ignore else []
    active, expired = ignore.split_expired(rules, dt.date.today())
    target = _open(args.target, readonly=True)
    try:
        plan = ignore.apply_rules(make_plan(config, target), active)
    finally:
        target.close()
    plan.warnings.extend(
        f"ignore rule expired and no longer applies: {r.describe()}" for r in expired
    )
    if args.format == "json":
        sys.stdout.write(render.as_json(plan, {"drift": plan.has_changes}))
    elif args.format == "markdown":
        sys.stdout.write(render.markdown(plan, label="Drift"))
    else:
        sys.stdout.write(render.text(plan, colour=render.use_colour(sys.stdout), label="Drift"))
    return EXIT_CHANGES if plan.has_changes else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from channelsync.export import export
    from channelsync.loader import load_config

    config = load_config(args.dir) if args.dir.exists() else None
    if config is not None and config.errors:
        for diagnostic in config.errors:
            print(diagnostic, file=sys.stderr)
        print(
            "error: fix these first: export edits the config files in place and must know "
            "which resource each document defines",
            file=sys.stderr,
        )
        return EXIT_ERROR
    target = _open(args.target, readonly=True)
    try:
        report = export(target, args.dir, config)
    finally:
        target.close()
    for path in report.written:
        print(f"wrote {path}")
    for what in report.removed:
        print(f"removed {what}")
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
        target = _open(args.target, readonly=True)
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
        print(json.dumps([{c: r[c] for c in listing.COLUMNS} for r in table], indent=2))
    else:
        sys.stdout.write(listing.render_table(table))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from channelsync import notices
    from channelsync.loader import load_config
    from channelsync.render import diagnostics as render

    config = load_config(args.dir)
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
            print(f"{path}: stale; run 'channelsync schema --write'", file=sys.stderr)
        return EXIT_ERROR if stale else EXIT_OK
    sys.stdout.write(schema.render(schema.all_schemas()[schema.COMBINED]))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    from channelsync.errors import ChannelsyncError, ConfigError

    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
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
