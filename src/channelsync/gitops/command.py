"""The ``init`` and ``completion`` subcommands; the CLI registers them with ``add_parsers``.

Only argparse is imported here, so that ``channelsync --help`` stays fast; the scaffold and the
completion generator are imported by the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1


def add_parsers(subparsers: Any) -> None:
    """Register ``init`` and ``completion`` on the CLI's subparsers (a _SubParsersAction)."""
    p = subparsers.add_parser(
        "init",
        help="scaffold a config repository: channels.d/, GitHub workflows, .gitignore",
        description="Write channels.d/ with a commented example, the plan/apply/drift GitHub "
        "workflows and a .gitignore for .channelsync/. Existing files are never overwritten "
        "without --force.",
    )
    p.add_argument("directory", nargs="?", type=Path, default=Path("."), metavar="DIR")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(handler=cmd_init)

    p = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Print a completion script; e.g. add 'source <(channelsync completion "
        "bash)' to ~/.bashrc.",
    )
    p.add_argument("shell", choices=("bash", "zsh"))
    p.set_defaults(handler=cmd_completion)


def cmd_init(args: argparse.Namespace) -> int:
    from channelsync.gitops import scaffold

    root: Path = args.directory
    try:
        result = scaffold.init(root, force=args.force)
    except scaffold.ScaffoldError as exc:
        for path in exc.written:
            print(f"wrote {root / path}")
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if result.conflicts and not result.written:
        for path in result.conflicts:
            print(f"{root / path}: already exists", file=sys.stderr)
        print(
            "error: nothing written; rerun with --force to overwrite these files", file=sys.stderr
        )
        return EXIT_ERROR
    for path in result.written:
        print(f"wrote {root / path}")
    if result.gitignore:
        print(f"{result.gitignore} {root / '.gitignore'}")
    print(
        "\nNext: edit channels.d/, run 'channelsync validate' and 'channelsync plan', then set "
        "the repository secrets the workflows use (CHANNELSYNC_TARGET, CHANNELSYNC_TOKEN and "
        "each ${env:NAME} of your channels), and bind each of those to its servers in "
        "channelsync.secrets.yaml: pull-request plans test connections only with the bindings "
        "on the default branch."
    )
    return EXIT_OK


def cmd_completion(args: argparse.Namespace) -> int:
    from channelsync.cli import build_parser
    from channelsync.gitops.completion import SHELLS

    sys.stdout.write(SHELLS[args.shell](build_parser()))
    return EXIT_OK
