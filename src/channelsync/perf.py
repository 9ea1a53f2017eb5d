"""Helpers for the hot paths of large configs."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around work that allocates much and frees little.

    Loading and planning ten thousand resources create about a million objects that all stay
    alive; the collector would walk the growing heap again and again for nothing. After the
    pause what is still alive is long-lived by construction: it is frozen (``gc.freeze``, out
    of the collector's sight; freed as usual once unreferenced) so that the first collection
    after the pause does not walk it all once more.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()
