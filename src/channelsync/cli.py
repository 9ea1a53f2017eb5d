"""Command line: argument parsing and exit codes only.

Exit codes: 0 success (no changes), 1 error, 2 changes pending or drift found (plan with
--detailed-exitcode, drift). Heavy modules are imported inside the commands so that
``--help`` and ``--version`` start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from channelsync import __version__

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _dir_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get("CHANNELSYNC_DIR", "channels.d")),
        help="config directory (default: channels.d, or $CHANNELSYNC_DIR)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="channelsync",
        description="Email channels as code: validate, plan and apply channels.d/ to a tenant.",
    )
    parser.add_argument("--version", action="version", version=f"channelsync {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("validate", help="check the config files and report every problem")
    _dir_option(p)
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("schema", help="print or write the JSON Schemas generated from the model")
    p.add_argument("--write", action="store_true", help="write schemas/ files")
    p.add_argument("--check", action="store_true", help="exit 1 when schemas/ files are stale")
    p.add_argument("--out", type=Path, default=Path("schemas"), help="schema directory")
    p.set_defaults(handler=cmd_schema)
    return parser


def cmd_validate(args: argparse.Namespace) -> int:
    from channelsync.loader import load_config
    from channelsync.render import diagnostics as render

    config = load_config(args.dir)
    if args.format == "json":
        sys.stdout.write(render.as_json(config.diagnostics))
    elif args.format == "github":
        sys.stdout.write(render.github(config.diagnostics))
    else:
        sys.stdout.write(render.text(config.diagnostics, config.files))
    return EXIT_ERROR if config.errors else EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from channelsync import schema

    if args.write:
        for path in schema.write_all(args.out):
            print(f"wrote {path}")
        return EXIT_OK
    if args.check:
        stale = schema.stale_files(args.out)
        for path in stale:
            print(f"{path}: stale; run 'channelsync schema --write'", file=sys.stderr)
        return EXIT_ERROR if stale else EXIT_OK
    sys.stdout.write(schema.render(schema.all_schemas()[schema.COMBINED]))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    from channelsync.errors import ChannelsyncError

    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ChannelsyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:  # the last line of defence: no tracebacks for users
        if os.environ.get("CHANNELSYNC_DEBUG"):
            raise
        print(
            f"internal error: {type(exc).__name__}; rerun with CHANNELSYNC_DEBUG=1 and report it",
            file=sys.stderr,
        )
        return EXIT_ERROR
