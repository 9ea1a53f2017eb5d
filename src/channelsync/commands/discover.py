"""``channelsync discover``."""

from __future__ import annotations

import argparse
import sys

from channelsync.exitcodes import EXIT_ERROR, EXIT_OK


def cmd_discover(args: argparse.Namespace) -> int:
    from channelsync import discover
    from channelsync.bindings import FILE_NAME, check_writable, extend_file
    from channelsync.probe.dnscheck import LookupFailed, open_lookups

    try:
        lookups = open_lookups(args.dns_server)
    except LookupFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    bindings = args.secret_bindings
    try:
        if args.write and bindings is None:
            from channelsync.secrets import repository_root

            bindings = repository_root(args.write.parent) / FILE_NAME
        if bindings is not None:
            check_writable(bindings)
        found = discover.discover(args.address, lookups, autoconfig_url=args.autoconfig_url)
        sys.stdout.write(discover.report(found))
        if found.chosen is None:
            return EXIT_ERROR
        if args.write:
            text = discover.channel_yaml(found)
            discover.write_new(args.write, text)
            print(f"wrote {args.write}")
            if bindings is not None and extend_file(bindings, discover.secret_bindings(text)):
                print(f"wrote {bindings}")
            print("set the secrets it names and run 'channelsync test'")
    except (discover.DiscoverError, LookupFailed, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"error: {args.write}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK
