"""The one plain-text table of channelsync: left-aligned columns, two spaces apart.

``list``, ``test`` (its checks, also in ``plan --check-connections``, its DNS and round-trip
tables) and ``token list`` draw theirs here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

GAP = "  "


def fit(cell: str, width: int) -> str:
    """``cell`` cut to ``width`` columns, at a word where one is near, marked with '...'."""
    if len(cell) <= width:
        return cell
    cut = cell[: max(width - 3, 0)]
    space = cut.rfind(" ")
    if cell[len(cut)] != " " and space >= width // 3:  # not in the middle of a word
        cut = cut[:space]
    return cut.rstrip(" ;,") + "..."


def widths(rows: Sequence[Sequence[str]], minimums: Sequence[int] = ()) -> list[int]:
    """Each column as wide as its widest cell (and at least its minimum)."""
    floor = [*minimums, *[0] * (len(rows[0]) - len(minimums))]
    return [max(floor[i], *(len(row[i]) for row in rows)) for i in range(len(rows[0]))]


def lines(
    rows: Sequence[Sequence[str]],
    column_widths: Sequence[int] | None = None,
    *,
    paint: Callable[[int, list[str]], None] | None = None,
) -> list[str]:
    """One line per row, cells cut to their column (``fit``) and padded; trailing space
    trimmed. Cells past the last of ``column_widths`` are left as they are.
    ``paint(i, cells)`` may colour the padded cells of row ``i`` in place."""
    sizes = column_widths if column_widths is not None else widths(rows)
    out = []
    for i, row in enumerate(rows):
        cells = [fit(cell, width).ljust(width) for cell, width in zip(row, sizes, strict=False)]
        cells += row[len(sizes) :]
        if paint is not None:
            paint(i, cells)
        out.append(GAP.join(cells).rstrip())
    return out
