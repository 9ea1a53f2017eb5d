"""``channelsync test``: argument parsing, loading the config, and the exit code."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from channelsync import argtypes
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
from channelsync.errors import ChannelsyncError, ConfigError, UsageError
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
    format_option(p, "text", "json", "markdown", "junit", "prometheus")
    p.add_argument(
        "--output",
        type=argtypes.path,
        metavar="FILE",
        help="write the report to FILE, replaced atomically (e.g. a .prom file of "
        "node_exporter's textfile collector), instead of to stdout",
    )
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
        raise ConfigError(config.errors)
    bindings = from_args(args)
    resources = config.resources
    if args.names:
        wanted = set(args.names)
        unknown = sorted(wanted - {r.name for r in resources})
        if unknown:
            names = ", ".join(f"'{n}'" for n in unknown)
            from channelsync import kinds

            words = [k.called for k in kinds.all_kinds() if k.tested]
            what = ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]
            raise UsageError(f"no {what} named {names}")
        resources = [r for r in resources if r.name in wanted]
    if args.cleanup and not args.end_to_end:
        raise UsageError("--cleanup works with --end-to-end only")
    if args.end_to_end or args.dns:
        if args.format == "prometheus":
            print(
                "error: --format prometheus reports the connection tests only, not --dns or "
                "--end-to-end",
                file=sys.stderr,
            )
            return EXIT_ERROR
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
        out = render.text(results, colour=use_colour(sys.stdout) and not args.output)
    elif args.format == "prometheus":
        out = _prometheus(results)
    else:
        from channelsync.render.probes import formatted

        out = formatted(args.format, results)
    _write(args, out)
    return EXIT_OK if all(r.ok for r in results) else EXIT_ERROR


def _prometheus(results: list[Any]) -> str:
    """The monitor's metrics of this run (no tenant: the label is empty)."""
    import time

    from channelsync.monitor.history import from_probe
    from channelsync.monitor.metrics import text

    now = time.time()
    return text([from_probe(r, "", now - r.elapsed_ms / 1000) for r in results])


def _write(args: argparse.Namespace, out: str) -> None:
    if args.output is None:
        sys.stdout.write(out)
        return
    from channelsync.errors import ChannelsyncError
    from channelsync.fsio import write_atomic

    try:
        write_atomic(args.output, out)
    except OSError as exc:
        raise ChannelsyncError(f"cannot write {args.output}: {exc.strerror or exc}") from None


def _mail_flow(args: argparse.Namespace, resources: list[Any], servers: list[Any]) -> int:
    """--dns and --end-to-end: the selected channels (default: the enabled ones)."""
    from channelsync.bindings import from_args
    from channelsync.probe.dnscheck import LookupFailed, open_lookups
    from channelsync.probe.e2e import run_trips
    from channelsync.render import probes as report

    if args.names:
        from channelsync import kinds

        others = [
            f"'{r.name}' ({kinds.get(r.kind).called})"
            for r in resources
            if r.kind != "EmailChannel"
        ]
        if others:
            raise UsageError(
                f"--dns and --end-to-end check channels only, not {', '.join(others)}; "
                "without them, 'channelsync test NAME' tests the connection"
            )
    channels = [
        r for r in resources if r.kind == "EmailChannel" and (args.names or r.data["enabled"])
    ]
    try:
        lookups = open_lookups(args.dns_server)
    except LookupFailed as exc:
        raise ChannelsyncError(str(exc)) from None
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
        _write(args, report.formatted(args.format, [], trips, dns))
    else:
        trip_text = "" if trips is None else "\n" + report.e2e_text(trips)
        _write(args, report.dns_text(dns) + trip_text)
    failed = any(not d.ok for d in dns) or any(not t.ok for t in trips or [])
    return EXIT_ERROR if failed else EXIT_OK
