"""What several commands share: the common options, loading the config, opening the target."""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from channelsync.argtypes import target as _target
from channelsync.defaults import DEFAULT_TARGET

if TYPE_CHECKING:
    from channelsync.bindings import Bindings
    from channelsync.loader import Config
    from channelsync.targets.base import Target


def _only_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        default=[],
        help="limit to these resources: NAME or Kind/NAME (e.g. EmailChannel/Support)",
    )


def _target_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target",
        type=_target,
        metavar="URL",
        help=f"tenant to manage (default: $CHANNELSYNC_TARGET or {DEFAULT_TARGET})",
    )


def _load(directory: Path) -> Config:
    """The config, with its warnings on stderr; ConfigError when it has errors."""
    from channelsync.loader import load_config

    config = load_config(directory)
    for diagnostic in config.diagnostics:
        print(diagnostic, file=sys.stderr)
    config.raise_on_errors(already_shown=True)
    return config


def _bindings(args: argparse.Namespace) -> Bindings | None:
    from channelsync.bindings import from_args

    return from_args(args)


def _secret_files(args: argparse.Namespace) -> AbstractContextManager[None]:
    """Where ``${file:...}`` secrets may be read while a command runs: inside the config
    repository, unless ``--allow-secret-files-outside``."""
    if not hasattr(args, "allow_secret_files_outside"):
        return nullcontext()
    from channelsync.secrets import confined_to, repository_root

    return confined_to(None if args.allow_secret_files_outside else repository_root(args.dir))


def _open(url: str | None, *, readonly: bool = False, existing: bool = False) -> Target:
    """``existing``: refuse a target that names no tenant yet (nothing to read from)."""
    from channelsync.targets import absent, open_target, target_url
    from channelsync.targets.base import TargetError

    target = open_target(target_url(url), readonly=readonly)
    missing = absent(target) if existing else None
    if missing:
        target.close()
        raise TargetError(missing)
    return target
