"""``channelsync test``: argument parsing, loading the config, and the exit code."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from channelsync.argtypes import dir_option, email_address, positive_int, positive_seconds
from channelsync.defaults import PROBE_CONCURRENCY as DEFAULT_CONCURRENCY
from channelsync.defaults import PROBE_TIMEOUT as DEFAULT_TIMEOUT

EXIT_OK = 0
EXIT_ERROR = 1


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "test",
        help="test the connections of channels and SMTP servers (log in, read-only)",
        description="Log in to every incoming mailbox and SMTP server the config uses, "
        "read-only, and explain each failure.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="only these channels/servers")
    dir_option(p)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "--concurrency",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        help=f"checks run at the same time (default {DEFAULT_CONCURRENCY})",
    )
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT,
        help=f"seconds allowed per check (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--send-test-message",
        metavar="ADDRESS",
        type=email_address,
        help="also send a short message to ADDRESS through each SMTP check",
    )
    from channelsync.bindings import add_arguments

    add_arguments(p)
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from channelsync.bindings import from_args
    from channelsync.loader import load_config
    from channelsync.probe import render
    from channelsync.probe.runner import checks_for, run_checks
    from channelsync.render.plan import use_colour

    config = load_config(args.dir)
    if config.errors:
        for diagnostic in config.errors:
            print(str(diagnostic), file=sys.stderr)
        return EXIT_ERROR
    bindings = from_args(args)
    resources = config.resources
    if args.names:
        wanted = set(args.names)
        unknown = sorted(wanted - {r.name for r in resources})
        if unknown:
            names = ", ".join(f"'{n}'" for n in unknown)
            print(f"error: no channel or SMTP server named {names}", file=sys.stderr)
            return EXIT_ERROR
        resources = [r for r in resources if r.name in wanted]
    checks = checks_for(resources, servers=config.of_kind("SmtpServer"))
    show = args.format == "text" and sys.stderr is not None and sys.stderr.isatty()
    results = run_checks(
        checks,
        concurrency=args.concurrency,
        timeout=args.timeout,
        progress=_progress_bar if show else None,
        send_test_message=args.send_test_message,
        bindings=bindings,
    )
    if show:
        sys.stderr.write("\r\x1b[K")
    if args.format == "json":
        out = render.as_json(results)
    else:
        out = render.text(results, colour=use_colour(sys.stdout))
    sys.stdout.write(out)
    return EXIT_OK if all(r.ok for r in results) else EXIT_ERROR


def _progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    sys.stderr.write(f"\rtesting [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()
