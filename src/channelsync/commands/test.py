"""``channelsync test``: argument parsing, loading the config, and the exit code."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from channelsync.argtypes import (
    dir_option,
    email_address,
    format_option,
    positive_int,
    positive_minutes,
    positive_seconds,
)
from channelsync.defaults import BACKLOG_AFTER_MINUTES, E2E_TIMEOUT
from channelsync.defaults import PROBE_CONCURRENCY as DEFAULT_CONCURRENCY
from channelsync.defaults import PROBE_TIMEOUT as DEFAULT_TIMEOUT
from channelsync.exitcodes import EXIT_ERROR, EXIT_OK


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "test",
        help="test the connections of channels and SMTP servers (log in, read-only)",
        description="Log in to every incoming mailbox and SMTP server the config uses, "
        "read-only, and explain each failure.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="only these channels/servers")
    dir_option(p)
    format_option(p, "text", "json", "markdown", "junit")
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
    from channelsync.argtypes import secret_options

    secret_options(p)
    p.add_argument(
        "--backlog-after",
        type=positive_minutes,
        default=BACKLOG_AFTER_MINUTES,
        metavar="MIN",
        help="warn 'backlog' when an enabled channel's oldest mail is older than this "
        f"(default {BACKLOG_AFTER_MINUTES:g} minutes)",
    )
    p.add_argument(
        "--end-to-end",
        action="store_true",
        help="send a probe through each channel's real outgoing path to its own address and "
        "wait for it in the mailbox (enabled channels, or the NAMEs)",
    )
    p.add_argument(
        "--e2e-timeout",
        type=positive_seconds,
        default=E2E_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for each probe (default {E2E_TIMEOUT:g})",
    )
    p.add_argument(
        "--dns",
        action="store_true",
        help="check MX, SPF, DMARC, DKIM and reverse DNS of each channel (also part of "
        "--end-to-end)",
    )
    p.add_argument(
        "--dns-server",
        metavar="HOST[:PORT]",
        default=None,
        help="resolver for --dns (default: $CHANNELSYNC_DNS_SERVER, else the system's)",
    )
    p.add_argument(
        "--cleanup",
        action="store_true",
        help="with --end-to-end: delete the probe messages this run sent (and nothing else)",
    )
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from channelsync.bindings import from_args
    from channelsync.commands.shared import config_source
    from channelsync.loader import load_config
    from channelsync.probe.runner import checks_for, run_checks
    from channelsync.render import checks as render
    from channelsync.render.checks import CLEAR_LINE, progress_bar
    from channelsync.render.plan import use_colour

    config = load_config(config_source(args))
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
    if args.cleanup and not args.end_to_end:
        print("error: --cleanup works with --end-to-end only", file=sys.stderr)
        return EXIT_ERROR
    if args.end_to_end or args.dns:
        return _mail_flow(args, resources, config.of_kind("SmtpServer"))
    checks = checks_for(resources, servers=config.of_kind("SmtpServer"))
    show = args.format == "text" and sys.stderr is not None and sys.stderr.isatty()
    results = run_checks(
        checks,
        concurrency=args.concurrency,
        timeout=args.timeout,
        progress=progress_bar if show else None,
        send_test_message=args.send_test_message,
        bindings=bindings,
        secrets=getattr(args, "secrets", None),
    )
    if show:
        sys.stderr.write(CLEAR_LINE)
    from channelsync.probe.mailbox import add_backlog_warnings

    enabled = {r.name for r in resources if r.kind == "EmailChannel" and r.data["enabled"]}
    add_backlog_warnings(results, enabled, after_minutes=args.backlog_after)
    if args.format == "text":
        out = render.text(results, colour=use_colour(sys.stdout))
    else:
        from channelsync.render.probes import formatted

        out = formatted(args.format, results)
    sys.stdout.write(out)
    return EXIT_OK if all(r.ok for r in results) else EXIT_ERROR


def _mail_flow(args: argparse.Namespace, resources: list[Any], servers: list[Any]) -> int:
    """--dns and --end-to-end: the selected channels (default: the enabled ones)."""
    from channelsync.bindings import from_args
    from channelsync.probe.dnscheck import LookupFailed, open_lookups
    from channelsync.probe.e2e import run_trips
    from channelsync.render import probes as report

    channels = [
        r for r in resources if r.kind == "EmailChannel" and (args.names or r.data["enabled"])
    ]
    try:
        lookups = open_lookups(args.dns_server)
    except LookupFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    from channelsync.probe.dnscheck import check_channels

    dns = check_channels(channels, servers, lookups, concurrency=args.concurrency)
    trips = None
    if args.end_to_end:
        trips = run_trips(
            channels,
            servers,
            e2e_timeout=args.e2e_timeout,
            timeout=args.timeout,
            cleanup=args.cleanup,
            bindings=from_args(args),
            resolver=getattr(args, "secrets", None),
        )
    if args.format != "text":
        sys.stdout.write(report.formatted(args.format, [], trips, dns))
    else:
        sys.stdout.write(report.dns_text(dns))
        if trips is not None:
            sys.stdout.write("\n" + report.e2e_text(trips))
    failed = any(not d.ok for d in dns) or any(not t.ok for t in trips or [])
    return EXIT_ERROR if failed else EXIT_OK
