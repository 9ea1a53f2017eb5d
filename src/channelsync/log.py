"""``-v/--verbose``: what each step does and how long it takes, on stderr.

The one place that configures logging (``configure``, called by ``cli.main``). Modules say
what they do with ``step`` (timed) and ``note``; both cost one flag test when verbose is off,
and ``logging`` itself is imported only when it is on (``--help`` stays fast). Messages hold
counts, names and paths, never a value of the config's secrets; as a second line of defence
every record is scrubbed of the run's secret values (in any encoding) before it is written.
``--log-format json`` writes one JSON object per line for machines.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

LOGGER = "channelsync"
FORMATS = ("text", "json")
_enabled = False
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context")


def configure(
    verbose: bool, form: str, stream: TextIO, scrub: Callable[[str], str] | None = None
) -> None:
    """Verbose logging to ``stream`` in ``form`` (FORMATS), or none; ``scrub`` takes the
    run's secret values out of a text (``cli`` passes one that knows the run's resolver)."""
    global _enabled
    _enabled = verbose
    if not verbose:
        return
    import logging

    logger = logging.getLogger(LOGGER)
    for old in list(logger.handlers):
        logger.removeHandler(old)  # a second main() in one process (the tests)
    handler = logging.StreamHandler(stream)
    formatter: Any = _JsonFormatter() if form == "json" else _TextFormatter()  # duck-typed
    handler.setFormatter(formatter)
    if scrub is not None:
        handler.addFilter(_Scrub(scrub))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def enabled() -> bool:
    return _enabled


def note(message: str, **fields: Any) -> None:
    """One line: ``message``, with ``fields`` (counts, names) for machines."""
    if not _enabled:
        return
    import logging

    logging.getLogger(LOGGER).info(message, extra={"fields": {**_context.get({}), **fields}})


@contextlib.contextmanager
def context(**fields: Any) -> Iterator[None]:
    """Every line logged in the block (in this thread) carries ``fields`` first: the
    environment of each of ``plan --all-envs``'s parallel plans."""
    token = _context.set({**_context.get({}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


@contextlib.contextmanager
def step(what: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Time the block; the dict it yields takes what the step found (added to the line)."""
    found: dict[str, Any] = {}
    if not _enabled:
        yield found
        return
    start = time.perf_counter()
    try:
        yield found
    except BaseException as exc:
        found["failed"] = type(exc).__name__
        raise
    finally:
        ms = round((time.perf_counter() - start) * 1000, 1)
        note(what, step=what, ms=ms, **fields, **found)


def _fields(record: Any) -> dict[str, Any]:
    fields: dict[str, Any] = getattr(record, "fields", {})
    return fields


class _TextFormatter:
    """``channelsync: load config: dir=channels.d files=4 resources=7 (3.1 ms)``"""

    def format(self, record: Any) -> str:
        fields = dict(_fields(record))
        fields.pop("step", None)
        ms = fields.pop("ms", None)
        words = " ".join(f"{k}={v}" for k, v in fields.items())
        timing = f" ({ms} ms)" if ms is not None else ""
        return f"channelsync: {record.getMessage()}{': ' + words if words else ''}{timing}"


class _JsonFormatter:
    def format(self, record: Any) -> str:
        import datetime as dt
        import json

        when = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
        line = {"time": when, "level": record.levelname.lower(), "message": record.getMessage()}
        return json.dumps({**line, **_fields(record)}, ensure_ascii=False, default=str)


class _Scrub:
    """Takes every value of the run's secrets out of a record."""

    def __init__(self, scrub: Callable[[str], str]) -> None:
        self.scrub = scrub

    def filter(self, record: Any) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        fields = _fields(record)
        record.fields = {k: self.scrub(v) if isinstance(v, str) else v for k, v in fields.items()}
        return True
