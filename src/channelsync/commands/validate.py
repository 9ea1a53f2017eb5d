"""``channelsync validate``."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from channelsync.exitcodes import EXIT_ERROR, EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from channelsync import notices
    from channelsync.commands.shared import config_source
    from channelsync.loader import load_config
    from channelsync.render import diagnostics as render

    config = load_config(config_source(args))
    if args.secret_bindings is not None:
        from channelsync.bindings import problems_of

        config.diagnostics = sorted([*config.diagnostics, *problems_of(args)])
    as_of = args.as_of or dt.date.today()
    config.diagnostics.extend(notices.diagnostics(config.resources, as_of))
    config.diagnostics.sort()
    if args.format == "json":
        sys.stdout.write(render.as_json(config.diagnostics))
    elif args.format == "github":
        sys.stdout.write(render.github(config.diagnostics))
    else:
        sys.stdout.write(render.text(config.diagnostics, config.files))
    return EXIT_ERROR if config.errors else EXIT_OK
