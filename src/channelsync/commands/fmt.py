"""``channelsync fmt``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from channelsync import log
from channelsync.exitcodes import EXIT_ERROR, EXIT_OK


def cmd_fmt(args: argparse.Namespace) -> int:
    from channelsync import fmt

    with log.step("fmt", check=args.check) as found:
        report = fmt.run(args.paths or _folders(args), check=args.check)
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


def _folders(args: argparse.Namespace) -> list[Path]:
    """Without PATH: ``--dir``; the folders of ``--env NAME``; else, in a repository with a
    project file, every folder of every environment (a layout is the same in each)."""
    from channelsync.environments import all_environments, find

    if getattr(args, "dir_given", False) or getattr(args, "environment", None) is None:
        return [args.dir]
    if args.env is None:
        project = find()
        environments = all_environments(project) if project is not None else []
        return list(dict.fromkeys(d for e in environments for d in e.dirs))
    return list(args.environment.dirs)
