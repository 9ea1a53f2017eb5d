"""``channelsync token list``: one line per token (name, role, the tenants it reaches, when it
was created)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from channelsync.render.table import lines, widths

if TYPE_CHECKING:
    from channelsync.server.tokens import TokenEntry

ROLE_WIDTH = 5  # "write": the column keeps its width when every token reads


def text(entries: Sequence[TokenEntry]) -> str:
    rows = [(e.name, e.role, ",".join(e.tenants), e.created) for e in entries]
    return "".join(f"{line}\n" for line in lines(rows, widths(rows, (0, ROLE_WIDTH))))
