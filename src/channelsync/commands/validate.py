"""``channelsync validate``."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

from channelsync.exitcodes import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from channelsync.errors import Diagnostic


def cmd_validate(args: argparse.Namespace) -> int:
    from channelsync import notices
    from channelsync.commands.shared import choose_environment, config_source
    from channelsync.errors import ConfigError
    from channelsync.loader import load_config

    try:
        choose_environment(args)
    except ConfigError as exc:  # channelsync.yaml: its problems as the channel files' are
        _write(args.format, exc.diagnostics, 1)
        return EXIT_ERROR
    config = load_config(config_source(args))
    if args.secret_bindings is not None:
        from channelsync.bindings import problems_of

        config.diagnostics = sorted([*config.diagnostics, *problems_of(args)])
    as_of = args.as_of or dt.date.today()
    config.diagnostics.extend(notices.diagnostics(config.resources, as_of))
    config.diagnostics.sort()
    _write(args.format, config.diagnostics, config.files)
    return EXIT_ERROR if config.errors else EXIT_OK


def _write(form: str, diagnostics: list[Diagnostic], files: int) -> None:
    from channelsync.render import diagnostics as render

    if form == "json":
        sys.stdout.write(render.as_json(diagnostics))
    elif form == "github":
        sys.stdout.write(render.github(diagnostics))
    else:
        sys.stdout.write(render.text(diagnostics, files))
