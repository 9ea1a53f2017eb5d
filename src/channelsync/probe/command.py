"""Moved to channelsync.commands.test; kept for old imports."""

from channelsync.commands.test import _mail_flow, _progress_bar, add_parser, run

__all__ = ["_mail_flow", "_progress_bar", "add_parser", "run"]
