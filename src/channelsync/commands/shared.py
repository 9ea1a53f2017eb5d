"""What the handlers share: the config with its warnings shown, the target, the secret bindings.

The options themselves (``--dir``, ``--target``, ``--format``, ``--only``) are in argtypes.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from channelsync.bindings import Bindings
    from channelsync.loader import Config
    from channelsync.targets.base import Target


def load(directory: Path) -> Config:
    """The config, with its warnings on stderr; ConfigError when it has errors."""
    from channelsync.loader import load_config

    config = load_config(directory)
    for diagnostic in config.diagnostics:
        print(diagnostic, file=sys.stderr)
    config.raise_on_errors(already_shown=True)
    return config


def bindings(args: argparse.Namespace) -> Bindings | None:
    from channelsync.bindings import from_args

    return from_args(args)


def secret_files(args: argparse.Namespace) -> AbstractContextManager[None]:
    """Where ``${file:...}`` secrets may be read while a command runs: inside the config
    repository, unless ``--allow-secret-files-outside``."""
    if not hasattr(args, "allow_secret_files_outside"):
        return nullcontext()
    from channelsync.secrets import confined_to, repository_root

    return confined_to(None if args.allow_secret_files_outside else repository_root(args.dir))


def open_target(url: str | None, *, readonly: bool = False, existing: bool = False) -> Target:
    """``existing``: refuse a target that names no tenant yet (nothing to read from)."""
    from channelsync import targets
    from channelsync.targets.base import TargetError

    target = targets.open_target(targets.target_url(url), readonly=readonly)
    missing = targets.absent(target) if existing else None
    if missing:
        target.close()
        raise TargetError(missing)
    return target
