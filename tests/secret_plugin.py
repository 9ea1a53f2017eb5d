"""A test-only secret source, ``${count:NAME}``: values from ``VALUES``, every read counted."""

from __future__ import annotations

import threading
from collections import Counter

from channelsync.secrets import SecretSource, SecretUnavailable, SourceContext

VALUES: dict[str, str] = {}
READS: Counter[str] = Counter()
_lock = threading.Lock()


class CountingSource(SecretSource):
    def read(self, name: str, context: SourceContext) -> str:
        with _lock:
            READS[name] += 1
        if name not in VALUES:
            raise SecretUnavailable(f"counted secret {name} is not set")
        return VALUES[name]

    def describe(self, name: str, context: SourceContext) -> str:
        return f"counted secret {name}"

    def hint(self, name: str) -> str:
        return f"put {name} in the counting source"
