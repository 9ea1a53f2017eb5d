"""The built-in secret sources: ``${env:NAME}`` and ``${file:PATH}``.

They register in the ``channelsync.secrets`` entry-point group like any plug-in (see
pyproject.toml and ``secrets.py``); nothing else in channelsync knows what they read.
"""

from __future__ import annotations

import os
from pathlib import Path

from channelsync.secrets import SecretSource, SecretUnavailable, SourceContext, is_system_path

# Variables of the CI system and of channelsync itself: never a channel's secret.
RESERVED_PREFIXES = ("CHANNELSYNC_", "GITHUB_", "ACTIONS_", "RUNNER_")


class EnvSource(SecretSource):
    """``${env:NAME}``: an environment variable of the process."""

    def read(self, name: str, context: SourceContext) -> str:
        try:
            value = os.environ.get(name)
        except ValueError:  # a NUL in the name
            raise SecretUnavailable("secret variable name is not valid") from None
        if value is None:
            raise SecretUnavailable(f"environment variable {name} is not set")
        return value

    def describe(self, name: str, context: SourceContext) -> str:
        return f"environment variable {name}"

    def problem(self, name: str, context: SourceContext) -> str | None:
        upper = name.upper()
        if not upper.startswith(RESERVED_PREFIXES):
            return None
        for prefix in RESERVED_PREFIXES:
            if upper.startswith(prefix):
                return (
                    f"${{env:{name}}} is reserved: {prefix}* variables belong to the CI system "
                    "or to channelsync itself, never to a channel; store the secret under a "
                    "name of its own"
                )
        return None

    def hint(self, name: str) -> str:
        return f"set the environment variable {name} where channelsync runs"


class FileSource(SecretSource):
    """``${file:PATH}``: a small text file, relative paths from the YAML file's folder,
    identified by the file it really reads (symlinks followed)."""

    by_folder = True

    def read(self, name: str, context: SourceContext) -> str:
        return context.read_file(context.path(name))

    def identity(self, name: str, context: SourceContext) -> str:
        try:
            return os.path.realpath(context.path(name))
        except (OSError, ValueError):  # e.g. a NUL: reading says why
            return str(context.path(name))

    def describe(self, name: str, context: SourceContext) -> str:
        return f"secret file {context.path(name)}"

    def problem(self, name: str, context: SourceContext) -> str | None:
        """A system file (under /proc or /sys), for a reference in a config file."""
        if context.base_dir is None:
            return None
        real = self.identity(name, context)
        if is_system_path(real):
            return (
                f"${{file:{name}}} is a system file ({real}), not a secret; name a file of your own"
            )
        return None

    def hint(self, name: str) -> str:
        return f"create the file {name} (relative to the YAML file's folder)"

    def as_written(self, identity: str, root: Path) -> str:
        real_root = os.path.realpath(root)
        inside = os.path.commonpath((real_root, identity)) == real_root
        return os.path.relpath(identity, real_root) if inside else identity
