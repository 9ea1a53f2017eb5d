"""What the handlers share: the config with its warnings shown, the target, the secret bindings.

The options themselves (``--dir``, ``--target``, ``--format``, ``--only``) are in argtypes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from channelsync.bindings import Bindings
    from channelsync.errors import Diagnostic
    from channelsync.loader import Config
    from channelsync.secrets import Resolver
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


def secrets(args: argparse.Namespace) -> Resolver | None:
    """The run's secret resolver (``args.secrets``), for the commands that read secrets:
    each secret read at most once, ``${file:...}`` only inside the config repository unless
    ``--allow-secret-files-outside``."""
    if not hasattr(args, "allow_secret_files_outside"):
        return None
    from channelsync.secrets import Resolver, repository_root

    outside = args.allow_secret_files_outside
    return Resolver(confine_to=None if outside else repository_root(args.dir))


def open_target(url: str | None, *, readonly: bool = False, existing: bool = False) -> Target:
    """``existing``: refuse a target that names no tenant yet (nothing to read from)."""
    from channelsync import log, targets
    from channelsync.targets.base import TargetError

    where = targets.target_url(url)
    # the scheme only: a URL is never logged (it may carry credentials)
    with log.step("open target", scheme=where.partition(":")[0], readonly=readonly):
        target = targets.open_target(where, readonly=readonly)
    missing = targets.absent(target) if existing else None
    if missing:
        target.close()
        raise TargetError(missing)
    return target


def configure_logging(args: argparse.Namespace) -> None:
    """The run's logging (``channelsync.log``), scrubbed of the secrets the run reads."""
    from channelsync import log

    verbose = getattr(args, "verbose", False)
    scrub = None
    resolver = args.secrets
    if verbose and resolver is not None:
        from channelsync.probe.diagnose import scrub as scrub_all

        def scrub(text: str) -> str:
            values = resolver.values()
            return scrub_all(text, values) if values else text

    log.configure(verbose, getattr(args, "log_format", "text"), sys.stderr, scrub)


def failed(
    machine: bool,
    message: str,
    code: str,
    exit_code: int,
    diagnostics: Sequence[Diagnostic] = (),
) -> int:
    """``exit_code``; under ``--format json`` (``machine``) the JSON error document goes to
    stdout first, so that CI never parses stderr (README "JSON error document")."""
    if machine:
        from channelsync.errors import error_document

        sys.stdout.write(error_document(message, code, exit_code, diagnostics))
    return exit_code
