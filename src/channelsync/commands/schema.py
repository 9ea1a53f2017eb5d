"""``channelsync schema``."""

from __future__ import annotations

import argparse
import sys

from channelsync.exitcodes import EXIT_ERROR, EXIT_OK


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
