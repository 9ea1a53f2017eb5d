"""Writing a file so that a crash or a full disk never leaves half of it.

Every file channelsync writes goes through ``write_atomic``: the new content goes to a
temporary file in the same folder, which is flushed to disk and then renamed over the old
one, and the folder is flushed too. A reader sees the old file or the new one, never a mix;
when the disk is full the old file is left as it was and the error names the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

PRIVATE = 0o600  # key and tokens files: created with this mode, never readable by others
_ATTEMPTS = 10


def write_atomic(
    path: Path, data: str | bytes, *, mode: int | None = None, exclusive: bool = False
) -> None:
    """Replace ``path`` with ``data`` (str is written as UTF-8) in one step.

    ``mode``: the file's mode, set before any byte is written (``PRIVATE`` for secrets);
    None keeps the mode of the file replaced, and a new file gets the usual one (umask).
    ``exclusive``: create the file only if it does not exist (FileExistsError otherwise), and
    only once it is complete: a crash never leaves an empty or partial file under ``path``.

    A failure raises OSError naming ``path`` (never the temporary file), after removing the
    temporary file.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if not exclusive and os.path.islink(path):
        path = Path(os.path.realpath(path))  # write through a symlink, as open() would
    try:
        old = None if exclusive else _stat(path)
        final = mode if mode is not None or old is None else old.st_mode & 0o7777
        # a mode of its own: 0600 until it is set; otherwise the umask applies at creation
        fd, tmp = _create_temp(path, 0o666 if final is None else PRIVATE)
        try:
            try:
                if final is not None:
                    os.fchmod(fd, final)
                if old is not None and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                    with contextlib.suppress(PermissionError):
                        os.fchown(fd, old.st_uid, old.st_gid)
                _write_all(fd, raw)
                os.fsync(fd)
            finally:
                os.close(fd)
            if exclusive:
                _link_or_create(tmp, path, raw, final)
                os.unlink(tmp)
            else:
                os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_folder(path.parent)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
    except OSError as exc:
        code = exc.errno or errno.EIO
        raise OSError(code, exc.strerror or os.strerror(code), str(path)) from None


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _create_temp(path: Path, mode: int) -> tuple[int, str]:
    """A new file beside ``path`` (same folder: the rename stays on one file system)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    for _ in range(_ATTEMPTS):
        tmp = os.path.join(path.parent, f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path))


def _link_or_create(tmp: str, path: Path, raw: bytes, mode: int | None) -> None:
    """Give the complete ``tmp`` the name ``path`` unless that exists. A file system without
    hard links gets an exclusive create instead (complete once written and flushed)."""
    try:
        os.link(tmp, path)
        return
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    fd = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666 if mode is None else mode
    )
    try:
        _write_all(fd, raw)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, raw: bytes) -> None:
    view = memoryview(raw)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; some file systems cannot sync a folder (ignored)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)
