"""``channelsync list``."""

from __future__ import annotations

import argparse
import sys

from channelsync.commands import shared
from channelsync.exitcodes import EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from channelsync import listing
    from channelsync.defaults import tenant_default_server
    from channelsync.render import listing as render

    filters = [listing.Filter.parse(f) for f in args.filter]
    if args.live:
        target = shared.open_target(args.target, readonly=True, existing=True)
        try:
            live = target.read()
        finally:
            target.close()
        channels = [r.data for r in live.values() if r.kind == "EmailChannel"]
        servers = [r.data for r in live.values() if r.kind == "SmtpServer"]
    else:
        config = shared.load(shared.config_source(args))
        channels = [r.data for r in config.of_kind("EmailChannel")]
        servers = [r.data for r in config.of_kind("SmtpServer")]
    table = listing.rows(channels, tenant_default_server(servers))
    table = listing.select(table, filters, args.sort)
    sys.stdout.write(render.as_json(table) if args.format == "json" else render.text(table))
    return EXIT_OK
