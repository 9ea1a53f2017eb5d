"""Validation results as text, JSON or GitHub workflow annotations."""

from __future__ import annotations

import json

from channelsync.errors import Diagnostic


def text(diagnostics: list[Diagnostic], files: int) -> str:
    lines = [str(d) for d in diagnostics]
    errors = sum(1 for d in diagnostics if d.severity == "error")
    warnings = len(diagnostics) - errors
    verdict = "valid" if errors == 0 else "invalid"
    lines.append(f"{files} file(s) checked: {verdict}, {errors} error(s), {warnings} warning(s)")
    return "\n".join(lines) + "\n"


def as_json(diagnostics: list[Diagnostic]) -> str:
    from channelsync.errors import ConfigError, error_code, error_json

    errors = [d.as_json() for d in diagnostics if d.severity == "error"]
    warnings = [d.as_json() for d in diagnostics if d.severity == "warning"]
    report: dict[str, object] = {"valid": not errors, "errors": errors, "warnings": warnings}
    if errors:  # the error document every command's --format json has on failure
        failure = ConfigError(diagnostics)
        report["error"] = error_json(
            str(failure), error_code(ConfigError), failure.exit_code, diagnostics
        )
    return json.dumps(report, indent=2) + "\n"


def github(diagnostics: list[Diagnostic]) -> str:
    """GitHub Actions workflow commands, shown as annotations on the changed lines."""
    lines = []
    for d in diagnostics:
        message = d.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        file = d.file.replace(",", "%2C").replace(":", "%3A")
        lines.append(f"::{d.severity} file={file},line={d.line},col={d.column}::{message}")
    return "\n".join(lines) + ("\n" if lines else "")
