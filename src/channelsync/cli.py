"""Command line: the parser and ``main``, which maps exceptions to exit codes.

The commands live in ``channelsync.commands`` (one module each), the exit codes in
``channelsync.exitcodes`` and each error's code on its class (``channelsync.errors``). Heavy
modules are imported inside the handlers so that ``--help`` and ``--version`` start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from channelsync import __version__, log
from channelsync.argtypes import Parser as _Parser
from channelsync.argtypes import UsageExit
from channelsync.argtypes import date as _date
from channelsync.argtypes import dir_option as _dir_option
from channelsync.argtypes import format_option as _format_option
from channelsync.argtypes import only_option as _only_option
from channelsync.argtypes import path as _path
from channelsync.argtypes import positive_seconds as _positive_seconds
from channelsync.argtypes import seconds as _seconds
from channelsync.argtypes import target_option as _target_option
from channelsync.argtypes import verbose_options as _verbose_options
from channelsync.argtypes import wants_json as _wants_json
from channelsync.commands import shared
from channelsync.commands.apply import cmd_apply
from channelsync.commands.discover import cmd_discover
from channelsync.commands.drift import cmd_drift
from channelsync.commands.export import cmd_export
from channelsync.commands.fmt import cmd_fmt
from channelsync.commands.list import cmd_list
from channelsync.commands.plan import cmd_plan, cmd_show
from channelsync.commands.schema import cmd_schema
from channelsync.commands.shared import secrets, use_environment
from channelsync.commands.validate import cmd_validate
from channelsync.exitcodes import EXIT_ERROR, EXIT_INTERRUPTED

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="channelsync",
        description="Email channels as code: validate, plan and apply channels.d/ to a tenant.",
    )
    parser.add_argument("--version", action="version", version=f"channelsync {__version__}")
    _verbose_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    from channelsync.argtypes import secret_options

    p = sub.add_parser("validate", help="check the config files and report every problem")
    _dir_option(p)
    _format_option(p, "text", "json", "github")
    secret_options(p, files=False)
    p.add_argument(
        "--as-of",
        type=_date,
        metavar="YYYY-MM-DD",
        help="date the provider notices against this day instead of today",
    )
    p.set_defaults(handler=cmd_validate, chooses_environment=True)

    p = sub.add_parser("plan", help="show what apply would change in the target")
    _dir_option(p)
    _target_option(p)
    _format_option(p, "text", "json", "markdown", "runbook")
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
    p.add_argument(
        "--all-envs",
        action="store_true",
        help="plan every environment of channelsync.yaml (at the same time), one section each",
    )
    secret_options(p)
    p.set_defaults(handler=cmd_plan)

    p = sub.add_parser("show", help="render a plan saved with 'plan --out' (no target needed)")
    p.add_argument("planfile", type=_path, metavar="PLANFILE")
    _format_option(p, "text", "json", "markdown", "runbook")
    p.set_defaults(handler=cmd_show)

    p = sub.add_parser("apply", help="make the target match the config")
    p.add_argument("planfile", nargs="?", type=_path, help="a plan saved with 'plan --out'")
    _dir_option(p)
    _target_option(p)
    _format_option(p, "text", "json")
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
    _format_option(p, "text", "json", "markdown")
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
    _only_option(p, "adopt just these live resources into new files (nothing else is touched)")
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
        "--kind",
        choices=("channel", "agent"),
        default="channel",
        help="what to list: channels (the default) or agents",
    )
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
    _format_option(p, "table", "json")
    p.set_defaults(handler=cmd_list)

    from channelsync.commands import compare as compare_command

    compare_command.add_parser(sub)

    from channelsync.commands import test as probe_command

    probe_command.add_parser(sub)

    from channelsync.commands import init as gitops_command

    gitops_command.add_parsers(sub, parser)

    p = sub.add_parser(
        "discover", help="find a mailbox's settings from its address (autoconfig, SRV, MX)"
    )
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument("--write", type=_path, metavar="FILE", help="write a commented channel YAML")
    p.add_argument("--autoconfig-url", metavar="URL", help="an https autoconfig file to read")
    p.add_argument("--dns-server", metavar="HOST[:PORT]", help="resolver for SRV and MX")
    p.add_argument(
        "--secret-bindings",
        type=_path,
        metavar="FILE",
        help="with --write: bind the written placeholders to their endpoints in FILE "
        "(default: channelsync.secrets.yaml at the root of the written file's repository)",
    )
    p.set_defaults(handler=cmd_discover)

    p = sub.add_parser(
        "fmt", help="lay the config files out canonically (key order, indentation, quoting)"
    )
    p.add_argument(
        "paths",
        nargs="*",
        type=_path,
        metavar="PATH",
        help="files or folders (default: --dir, else the folders of --env, else of every "
        "environment of channelsync.yaml)",
    )
    _dir_option(p)
    p.add_argument(
        "--check",
        action="store_true",
        help="change nothing; list the files that would change and exit 1 if any",
    )
    p.set_defaults(handler=cmd_fmt)

    p = sub.add_parser("schema", help="print or write the JSON Schemas generated from the model")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write schemas/ files")
    mode.add_argument("--check", action="store_true", help="exit 1 when schemas/ files are stale")
    p.add_argument("--out", type=_path, default=Path("schemas"), help="schema directory")
    p.set_defaults(handler=cmd_schema)

    from channelsync.commands.serve import add_parsers as add_server_parsers

    add_server_parsers(sub)
    for command in sub.choices.values():  # also after the command: 'channelsync plan -v'
        _verbose_options(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from channelsync.errors import ChannelsyncError, ConfigError, error_code

    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(words)
    except UsageExit as exc:
        if _wants_json(words):
            shared.failed(True, exc.message, "usage_error", EXIT_ERROR)
        raise
    handler: Handler = args.handler
    machine = getattr(args, "format", None) == "json"
    try:
        use_environment(args)
        args.secrets = secrets(args)
        shared.configure_logging(args)
        with log.step(f"command {args.command}"):
            return handler(args)
    except ConfigError as exc:
        if not exc.already_shown:
            for diagnostic in exc.diagnostics:
                print(diagnostic, file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return shared.failed(
            machine, str(exc), error_code(type(exc)), exc.exit_code, exc.diagnostics
        )
    except ChannelsyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return shared.failed(machine, str(exc), error_code(type(exc)), exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return shared.failed(machine, "interrupted", "interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        return EXIT_ERROR
    except OSError as exc:  # a file or folder the command was pointed at
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error:{where}: {exc.strerror or exc}", file=sys.stderr)
        message = f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc)
        return shared.failed(machine, message, "file_error", EXIT_ERROR)
    except Exception as exc:  # the last line of defence: no tracebacks for users
        if os.environ.get("CHANNELSYNC_DEBUG"):
            raise
        message = (
            f"internal error: {type(exc).__name__}; rerun with CHANNELSYNC_DEBUG=1 and report it"
        )
        print(message, file=sys.stderr)
        return shared.failed(machine, message, "internal_error", EXIT_ERROR)


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
