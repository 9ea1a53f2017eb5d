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

    kind, columns = listing.LISTED[args.kind]
    filters = [listing.Filter.parse(f, columns) for f in args.filter]
    if args.live:
        target = shared.open_target(args, readonly=True, existing=True)
        try:
            live = target.read()
        finally:
            target.close()
        listed = [r.data for r in live.values() if r.kind == kind]
        servers = [r.data for r in live.values() if r.kind == "SmtpServer"]
    else:
        config = shared.load(shared.config_source(args))
        listed = [r.data for r in config.of_kind(kind)]
        servers = [r.data for r in config.of_kind("SmtpServer")]
    make_rows = listing.rows if args.kind == "channel" else listing.agent_rows
    table = listing.select(
        make_rows(listed, tenant_default_server(servers)), filters, args.sort, columns
    )
    if args.format == "json":
        sys.stdout.write(render.as_json(table, columns))
    else:
        sys.stdout.write(render.text(table, args.kind))
    return EXIT_OK
