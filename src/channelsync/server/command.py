"""Moved to channelsync.commands.serve; kept for old imports."""

from channelsync.commands.serve import add_parsers, main

__all__ = ["add_parsers", "main"]
