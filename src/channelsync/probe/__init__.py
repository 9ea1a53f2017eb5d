"""Connection tests: log in to every mailbox and SMTP server, read-only, and diagnose failures.

``gate`` is what ``apply`` calls before changing anything; ``channelsync test`` is in
``command``. Protocol code is imported only when a check runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from channelsync.defaults import PROBE_CONCURRENCY, PROBE_TIMEOUT

if TYPE_CHECKING:
    from channelsync.bindings import Bindings
    from channelsync.loader import Loaded
    from channelsync.probe.check import Result
    from channelsync.probe.runner import Progress
    from channelsync.secrets import Resolver

__all__ = ["gate"]


def gate(
    resources: Sequence[Loaded],
    *,
    servers: Sequence[Loaded] | None = None,
    concurrency: int = PROBE_CONCURRENCY,
    timeout: float = PROBE_TIMEOUT,
    progress: Progress | None = None,
    bindings: Bindings | None = None,
    secrets: Resolver | None = None,
) -> list[Result]:
    """Test ``resources`` (channels, SMTP servers) before apply; a failed result blocks it.

        ``servers`` are all SmtpServers of the config, for channels that override a server that
        is not itself among ``resources``. With ``bindings``, secrets go only where they are bound;
    ``secrets`` is the run's resolver.
    """
    from channelsync.probe.runner import checks_for, run_checks

    checks = checks_for(resources, servers=servers)
    return run_checks(
        checks,
        concurrency=concurrency,
        timeout=timeout,
        progress=progress,
        bindings=bindings,
        secrets=secrets,
    )
