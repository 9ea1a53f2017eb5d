"""The apply lock: one holder at a time, a lease its holder keeps renewing, and takeover of a
lock whose lease ran out or whose process on this host is gone."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

from channelsync.targets.base import LockInfo, LockTimeout, TargetError
from channelsync.tenant.repository import Repository

LEASE_SECONDS = 120.0


def abandoned(holder: LockInfo, expires: float) -> bool:
    """A lock whose lease ran out (its holder stopped renewing it), or whose process on this
    host is gone (a killed apply: no need to wait for the lease)."""
    if expires < time.time():
        return True
    if holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def try_take(repo: Repository, info: LockInfo, seconds: float) -> LockInfo | None:
    """Take the lock for ``info`` and return None, or return the live holder; the holder
    taking it again renews its lease (a client's heartbeat)."""
    with repo.transaction():
        found = repo.lock_row()
        if found is not None and not abandoned(*found):
            if found[0].holder == info.holder:
                repo.renew_lock(info.holder, time.time() + seconds)
            return found[0]
        repo.put_lock(info, time.time() + seconds)
    return None


def release(repo: Repository, holder: str) -> bool:
    """Release the lock if ``holder`` holds it; False when it does not."""
    with repo.transaction():
        return repo.drop_lock(holder)


def wait_for(take: Callable[[], LockInfo | None], timeout: float) -> None:
    """Call ``take`` until it takes the lock; after ``timeout`` seconds fail naming the holder."""
    deadline = time.monotonic() + timeout
    while True:
        holder = take()
        if holder is None:
            return
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"the target is locked by another apply ({holder.describe()}); "
                f"waited {timeout:g} s. Try again later, or raise --lock-timeout"
            )
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


class Lease:
    """The lease a write renews (inside its own transaction), failing once it is lost. An own
    lock, renewed moments ago (and kept alive by its heartbeat), skips the statement."""

    def __init__(self, holder: str, seconds: float, *, own: bool = False) -> None:
        self.holder = holder
        self.seconds = seconds
        self.own = own
        self._renewed = time.monotonic() if own else float("-inf")

    def renew(self, repo: Repository) -> None:
        now = time.monotonic()
        if self.own and now - self._renewed < self.seconds / 4:
            return
        self._renewed = now
        if not repo.renew_lock(self.holder, time.time() + self.seconds):
            raise TargetError("lost the apply lock (its lease expired); run apply again")


@contextlib.contextmanager
def heartbeat(renew: Callable[[], None], seconds: float) -> Iterator[None]:
    """Call ``renew`` every quarter lease while the block runs, whatever the holder is busy
    with (waiting for a confirmation, running connection tests); ``renew`` uses a connection
    of its own and swallows the store's errors."""
    beat = _Heartbeat(renew, seconds / 4)
    beat.start()
    try:
        yield
    finally:
        beat.stop()


class _Heartbeat(threading.Thread):
    def __init__(self, renew: Callable[[], None], every: float) -> None:
        super().__init__(name="channelsync-lock-heartbeat", daemon=True)
        self._renew = renew
        self._every = every
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._every):
            self._renew()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=5)
