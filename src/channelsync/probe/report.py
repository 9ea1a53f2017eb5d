"""Moved to channelsync.render.probes; kept for old imports."""

from channelsync.render.probes import as_json, dns_text, e2e_text, formatted, junit, markdown

__all__ = ["as_json", "dns_text", "e2e_text", "formatted", "junit", "markdown"]
