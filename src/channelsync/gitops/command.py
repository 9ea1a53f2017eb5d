"""Moved to channelsync.commands.init; kept for old imports."""

from channelsync.commands.init import add_parsers, cmd_completion, cmd_init

__all__ = ["add_parsers", "cmd_completion", "cmd_init"]
