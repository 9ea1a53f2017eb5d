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
    from channelsync.layout import Environment
    from channelsync.loader import Config
    from channelsync.secrets import Resolver
    from channelsync.targets.base import Target


def use_environment(args: argparse.Namespace) -> None:
    """Before the handler: ``choose_environment``, unless the handler does it itself
    (``validate`` reports a bad project file in its own formats)."""
    if not getattr(args, "chooses_environment", False):
        choose_environment(args)


def choose_environment(args: argparse.Namespace) -> None:
    """Sets ``args.environment`` (None: no project file, or none chosen) and, unless given on
    the command line, ``args.dir`` and ``args.target`` from it."""
    if not hasattr(args, "env") or getattr(args, "all_envs", False):
        return
    from channelsync.environments import select

    given = args.dir if getattr(args, "dir_given", False) else None
    environment = select(args.env, dir_given=given)
    args.environment = environment
    if environment is None:
        return
    args.dir = environment.dirs[0]
    if hasattr(args, "target") and args.target is None and environment.target:
        args.target = environment.target


def refuse_other_environment(args: argparse.Namespace, planfile: Path, made_for: str) -> None:
    """A saved plan made for another environment's target is a wrong ``--env``, not a stale
    plan (exit 3 means "plan again"): UsageError naming the environment to apply it with."""
    from channelsync import targets
    from channelsync.environments import all_environments, find
    from channelsync.errors import UsageError

    environment: Environment | None = getattr(args, "environment", None)
    here = targets.target_url(args.target)
    project = find()
    if environment is None or made_for == here or project is None:
        return
    for other in all_environments(project):
        if other.name != environment.name and targets.target_url(other.target) == made_for:
            raise UsageError(
                f"{planfile} was planned for environment '{other.name}' ({made_for}), and this "
                f"apply is for '{environment.name}' ({here}): apply it with --env {other.name}"
            )


def config_source(args: argparse.Namespace) -> Path | Environment:
    """What ``load`` reads for this command line: the environment, else ``--dir``."""
    environment: Environment | None = getattr(args, "environment", None)
    return environment if environment is not None else args.dir


def refuse_layered(args: argparse.Namespace, command: str) -> None:
    """``export`` edits the documents of one folder in place: an environment of several
    folders (patches) or with variables would have their values written over the files."""
    environment: Environment | None = getattr(args, "environment", None)
    if environment is None or (len(environment.dirs) == 1 and not environment.variables):
        return
    from channelsync.errors import UsageError

    raise UsageError(
        f"{command} edits the files of one folder, and environment '{environment.name}' has "
        f"{'several folders' if len(environment.dirs) > 1 else 'variables'}, whose values it "
        f"would write over the references; pass --dir FOLDER and --target URL instead of --env"
    )


def load(directory: Path | Environment) -> Config:
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


def open_target(
    args: argparse.Namespace, *, readonly: bool = False, existing: bool = False
) -> Target:
    """The command line's target (``--target``, else the environment's, else the default),
    with the environment's token (``targets.token_variable``); ``existing``: refuse a target
    that names no tenant yet (nothing to read from)."""
    from channelsync import log, targets
    from channelsync.targets.base import TargetError

    where = targets.target_url(args.target)
    environment: Environment | None = getattr(args, "environment", None)
    name = environment.name if environment is not None else None
    # the scheme only: a URL is never logged (it may carry credentials)
    with log.step("open target", scheme=where.partition(":")[0], readonly=readonly):
        target = targets.open_target(where, readonly=readonly, environment=name)
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
