"""Benchmark: `channelsync validate` on N generated channel files, and CLI start-up time.

Targets (issue 2): 10,000 files in at most 0.6 s wall, peak memory under 300 MB;
`--help` and `--version` in at most 0.3 s.

    python bench/validate.py [N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from common import OUT, best_of, channelsync, generate


def read_floor(directory: Path) -> float:
    import yaml_rs

    start = time.perf_counter()
    for path in sorted(directory.iterdir()):
        with open(path, "rb") as handle:
            yaml_rs.loads(handle.read().decode(), parse_datetime=False)
    return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    directory = generate(n, OUT / "validate" / "channels.d")
    cmd = channelsync()
    best_of(1, [*cmd, "validate", "--dir", str(directory)])  # warm the page cache
    wall, peak, code, out = best_of(3, [*cmd, "validate", "--dir", str(directory)])
    summary = out.strip().splitlines()[-1]
    print(f"validate {n:,} channel files: {wall:.3f} s wall, peak RSS {peak:.0f} MB, "
          f"exit {code} ({summary})  [target <= 0.6 s, < 300 MB]")
    floor = read_floor(directory)
    print(f"floor on this machine: opening, reading and parsing the files alone (one process, "
          f"yaml-rs) takes {floor:.3f} s")
    for flag in ("--version", "--help"):
        wall, _, code, _ = best_of(5, [*cmd, flag])
        print(f"channelsync {flag}: {wall:.3f} s wall, exit {code}  [target <= 0.3 s]")


if __name__ == "__main__":
    main()
