"""Moved to channelsync.commands.test; kept for old imports."""

from channelsync.commands.test import _mail_flow, add_parser, run
from channelsync.render.checks import progress_bar as _progress_bar

__all__ = ["_mail_flow", "_progress_bar", "add_parser", "run"]
