"""Reading a file that a pull request may have put there: regular files only, size bounded.

A name can be a FIFO (the read would wait for ever), a device (``/dev/zero`` never ends), a
socket or a folder; a symbolic link can point at any of them. The file is opened without
blocking, ``fstat`` of that same descriptor decides, and the size limit is checked before
anything is read (and again while reading, for a file that grows).
"""

from __future__ import annotations

import json
import os
import re
import stat
from typing import Any


class UnreadableFile(Exception):
    """Why a file was not read, worded for the user (without the path: the caller has it).
    Errors of the system (no such file, permission denied) stay ``OSError``."""


class TooDeep(UnreadableFile):
    """JSON nested deeper than Python's parser recurses, with where it gets too deep."""

    def __init__(self, line: int, column: int) -> None:
        super().__init__(f"nesting deeper than {MAX_JSON_DEPTH} levels")
        self.line, self.column = line, column


MAX_JSON_DEPTH = 100


def describe_mode(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_regular(path: str) -> tuple[int, int]:
    """A descriptor of ``path`` (following symlinks) and its size; refuses anything but a
    regular file. The caller closes the descriptor."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        try:  # a socket cannot be opened at all (ENXIO): say what it is
            mode = os.stat(path).st_mode
        except OSError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            raise UnreadableFile(_not_regular(mode)) from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnreadableFile(_not_regular(info.st_mode))
    return fd, info.st_size


def regular_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a readable regular file ("does not exist", "is a device, not a
    regular file; ..."), or None; for a check that comes before the file is read."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "does not exist"
    return None if stat.S_ISREG(mode) else _not_regular(mode)


def _not_regular(mode: int) -> str:
    return f"is {describe_mode(mode)}, not a regular file; only regular files are read"


def read_regular(path: str, limit: int, *, limit_text: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    ``limit_text`` names the limit in the error ("1 MiB").
    """
    fd, size = open_regular(path)
    try:
        if size > limit:
            raise UnreadableFile(_too_large(size, limit_text))
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, limit + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:
        raise UnreadableFile(_too_large(total, limit_text, more=True))
    return b"".join(chunks)


def _too_large(size: int, limit_text: str, *, more: bool = False) -> str:
    amount = f"more than {size - 1:,}" if more else f"{size:,}"
    return f"file is {amount} bytes; the limit is {limit_text}"


def read_json(path: str, limit: int, *, limit_text: str) -> Any:
    """The JSON value in the regular file ``path``; ``ValueError`` when it is not JSON."""
    text = read_regular(path, limit, limit_text=limit_text).decode("utf-8")
    try:
        return json.loads(text)
    except RecursionError:
        raise TooDeep(*_too_deep_at(text)) from None


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _too_deep_at(text: str) -> tuple[int, int]:
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        char = match[0]
        if char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                at = match.start()
                return text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
        elif char in "]}":
            depth -= 1
    return 1, 1  # pragma: no cover - json.loads recursed on something shallower
