"""``channelsync compare ENV_A ENV_B``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from channelsync.exitcodes import EXIT_CHANGES, EXIT_OK


def add_parser(sub: Any) -> None:
    from channelsync.argtypes import format_option

    p = sub.add_parser(
        "compare",
        help="show how two environments' desired states differ (exit 2 when they do)",
    )
    p.add_argument("first", metavar="ENV_A", help="an environment of channelsync.yaml")
    p.add_argument("second", metavar="ENV_B", help="the environment to compare it with")
    format_option(p, "text", "json")
    p.set_defaults(handler=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    """Exit 0 when the two are the same, 2 when they differ (like ``plan
    --detailed-exitcode``), 1 on error."""
    from channelsync import environments
    from channelsync.compare import compare
    from channelsync.defaults import PROJECT_FILE
    from channelsync.errors import UsageError
    from channelsync.loader import load_config
    from channelsync.render import compare as render

    path = environments.find()
    if path is None:
        raise UsageError(
            f"compare: there is no {PROJECT_FILE} in this folder; it defines the "
            "environments to compare"
        )
    project = environments.load(path)
    configs = []
    for name in (args.first, args.second):
        config = load_config(project.get(name, where="compare:"))
        for diagnostic in config.diagnostics:
            print(f"{name}: {diagnostic}", file=sys.stderr)
        config.raise_on_errors(already_shown=True)
        configs.append(config)
    result = compare(args.first, configs[0], args.second, configs[1])
    sys.stdout.write(render.as_json(result) if args.format == "json" else render.text(result))
    return EXIT_CHANGES if result.differ else EXIT_OK
