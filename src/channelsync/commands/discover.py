"""``channelsync discover``."""

from __future__ import annotations

import argparse
import sys

from channelsync.exitcodes import EXIT_ERROR, EXIT_OK


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
