"""Benchmark: `channelsync validate` on single files under the 1 MiB limit built to be slow.

Target (issue 9, section 2): each case in about a second; the time grows with the file, not
with its square.

    python bench/hostile_files.py
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from common import OUT, best_of, channelsync

BAD_SCRIPT = "---\nkind: EmailScript\nname: S{i}\nqueues: [A]\nbogus: 1\n"


def empty_documents(n: int) -> str:
    return "---\n" * n


def bad_documents(n: int) -> str:
    return "".join(BAD_SCRIPT.format(i=i) for i in range(n))


def anchors_and_aliases(n: int) -> str:
    anchors = "".join(f"- &a{i} v\n" for i in range(n))
    return anchors + "".join(f"- *a{i}\n" for i in range(n))


CASES: list[tuple[str, Callable[[int], str], int]] = [
    ("empty documents", empty_documents, 5_000),
    ("empty documents", empty_documents, 20_000),
    ("empty documents", empty_documents, 250_000),
    ("documents with one error each", bad_documents, 2_500),
    ("documents with one error each", bad_documents, 10_000),
    ("anchors + as many aliases", anchors_and_aliases, 30_000),
]


def main() -> None:
    cmd = channelsync()
    for label, make, n in CASES:
        directory = OUT / "hostile" / "channels.d"
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        text = make(n)
        (directory / "x.yaml").write_text(text)
        wall, peak, code, out = best_of(1, [*cmd, "validate", "--dir", str(directory)])
        summary = out.strip().splitlines()[-1]
        print(f"{n:,} {label} ({len(text) / 1024:,.0f} KiB): {wall:.2f} s wall, "
              f"peak RSS {peak:.0f} MB, exit {code} ({summary})")


if __name__ == "__main__":
    main()
