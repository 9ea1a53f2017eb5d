"""What the mailbox itself says: mail waiting too long (``backlog``), and the mail the contact
centre will take when a channel is enabled.

Both read the counts and dates the incoming login check found (read-only: EXAMINE, SEARCH
UNSEEN, FETCH INTERNALDATE over IMAP; STAT over POP3).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from channelsync.defaults import BACKLOG_AFTER_MINUTES
from channelsync.probe.check import Result


def age(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def add_backlog_warnings(
    results: Sequence[Result],
    enabled: Collection[str],
    *,
    after_minutes: float = BACKLOG_AFTER_MINUTES,
    now: dt.datetime | None = None,
) -> None:
    """Warn ``backlog`` on each enabled channel whose oldest mail is older than the limit."""
    now = now or dt.datetime.now(dt.UTC)
    for result in results:
        if result.check != "incoming" or result.name not in enabled or result.oldest is None:
            continue
        waited = now - result.oldest
        if waited > dt.timedelta(minutes=after_minutes):
            result.warnings.append(
                "backlog: mail is waiting: the contact centre may not be polling this mailbox "
                f"({result.messages} message(s), the oldest from {_stamp(result.oldest)}, "
                f"{age(waited)} ago)"
            )


def add_enabling_warnings(results: Sequence[Result], enabling: Collection[str]) -> None:
    """Warn that a channel being enabled will take the mail already in its mailbox."""
    for result in results:
        if result.check != "incoming" or result.name not in enabling or not result.messages:
            continue
        oldest = f" (oldest from {_stamp(result.oldest)})" if result.oldest else ""
        if result.protocol.startswith("imap"):
            effect = "and remove them from the mailbox"
        else:
            effect = "(over POP3 it may leave a copy on the server)"
        result.warnings.append(
            f"enabling: the contact centre will take {result.messages} message(s){oldest} {effect}"
        )
