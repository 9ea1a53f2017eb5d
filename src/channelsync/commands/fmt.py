"""``channelsync fmt``."""

from __future__ import annotations

import argparse
import sys

from channelsync import log
from channelsync.exitcodes import EXIT_ERROR, EXIT_OK


def cmd_fmt(args: argparse.Namespace) -> int:
    from channelsync import fmt

    with log.step("fmt", check=args.check) as found:
        report = fmt.run(args.paths or [args.dir], check=args.check)
        found.update(changed=len(report.changed), unchanged=report.unchanged)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    for path in report.changed:
        print(path if args.check else f"formatted {path}")
    if args.check and report.changed:
        print(
            f"error: {len(report.changed)} file(s) not in the canonical layout; "
            "run 'channelsync fmt'",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return EXIT_ERROR if report.failed else EXIT_OK
