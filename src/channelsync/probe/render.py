"""Moved to channelsync.render.checks; kept for old imports."""

from channelsync.render.checks import as_json, summary, text

__all__ = ["as_json", "summary", "text"]
