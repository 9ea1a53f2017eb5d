"""The ``init`` and ``completion`` subcommands; the CLI registers them with ``add_parsers``.

Only argparse is imported here, so that ``channelsync --help`` stays fast; the scaffold and the
completion generator are imported by the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from channelsync.argtypes import path
from channelsync.exitcodes import EXIT_ERROR, EXIT_OK


def add_parsers(subparsers: Any, root: argparse.ArgumentParser) -> None:
    """Register ``init`` and ``completion`` on the CLI's subparsers (a _SubParsersAction);
    ``root`` is the whole parser, which the completion script describes."""
    p = subparsers.add_parser(
        "init",
        help="scaffold a config repository: channels.d/, schemas/, GitHub workflows, .gitignore",
        description="Write channels.d/ with a commented example, schemas/ for editors, the "
        "plan/apply/drift GitHub workflows with the channelsync they install, and a .gitignore "
        "for .channelsync/. Existing files are never overwritten without --force.",
    )
    p.add_argument("directory", nargs="?", type=path, default=Path("."), metavar="DIR")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument(
        "--env",
        dest="environments",
        action="append",
        default=[],
        metavar="NAME",
        help="an environment (repeat: --env staging --env prod): writes channelsync.yaml, "
        "channels.d/common and channels.d/NAME, and workflows with a job per environment",
    )
    p.set_defaults(handler=cmd_init)

    p = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="Print a completion script; e.g. add 'source <(channelsync completion "
        "bash)' to ~/.bashrc, or 'channelsync completion fish | source' to fish's config.",
    )
    p.add_argument("shell", choices=("bash", "zsh", "fish"))
    p.set_defaults(handler=cmd_completion, root_parser=root)


def cmd_init(args: argparse.Namespace) -> int:
    from channelsync.gitops import scaffold

    root: Path = args.directory
    from channelsync.environments import is_environment_name

    for name in args.environments:
        if not is_environment_name(name) or name == "common" or args.environments.count(name) > 1:
            print(
                f"error: --env {name}: an environment name is letters, digits, '_', '.' or '-' "
                "(GitHub's environment names), once each, and not 'common' (the shared folder)",
                file=sys.stderr,
            )
            return EXIT_ERROR
    try:
        result = scaffold.init(root, force=args.force, environments=args.environments or None)
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
    pins = root / scaffold.REQUIREMENTS
    if scaffold.REQUIREMENTS in result.written and scaffold.TODO_REQUIREMENT in pins.read_text():
        print(
            f"WARNING: {pins} has a TODO line: this channelsync was installed from a folder a "
            "runner cannot reach; pin a released version or a pushed commit there",
            file=sys.stderr,
        )
    if args.environments:
        print(
            "\nNext: set each environment's target in channelsync.yaml, run 'channelsync plan "
            "--all-envs', then create a GitHub environment per environment (its "
            "CHANNELSYNC_TOKEN: a write token for apply) and the repository secrets "
            "CHANNELSYNC_TOKEN_<NAME> (read tokens for plan and drift) and each ${env:NAME} of "
            "your channels, bound to its servers in channelsync.secrets.yaml (docs/gitops.md, "
            '"Environments").'
        )
        return EXIT_OK
    print(
        "\nNext: edit channels.d/, run 'channelsync validate' and 'channelsync plan', then set "
        "the repository secrets the workflows use (CHANNELSYNC_TARGET, CHANNELSYNC_TOKEN and "
        "each ${env:NAME} of your channels), and bind each of those to its servers in "
        "channelsync.secrets.yaml: pull-request plans test connections only with the bindings "
        "on the default branch."
    )
    return EXIT_OK


def cmd_completion(args: argparse.Namespace) -> int:
    from channelsync.gitops.completion import script

    sys.stdout.write(script(args.root_parser, args.shell))
    return EXIT_OK
