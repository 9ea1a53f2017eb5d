"""Benchmark: `channelsync export` of N channel files already in sync, and with 5 % drifted.

Targets (issue 11): 10,000 files in sync <= 1.0 s wall; with 5 % drifted <= 2 s.

    python bench/export.py [N]          # set up (generate + apply), then time both cases
    python bench/export.py --drift DIR  # drift 5 % of the files in DIR again (for outside timers)
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from common import OUT, channelsync, generate, run

RUNS = 5


def drift(directory: Path) -> int:
    """Make every 20th channel file say something the tenant does not (export writes it back)."""
    files = sorted(directory.glob("channel-*.yaml"))[::20]
    for path in files:
        text = path.read_text()
        path.write_text(text.replace("enabled: true", "enabled: false", 1)
                        if "enabled: true" in text else text.replace("enabled: false", "enabled: true", 1))
    return len(files)


def secrets_env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1"}
    for d in range(20):
        env[f"IMAP_PASSWORD_{d}"] = f"imap-{d}"
        env[f"SMTP_PASSWORD_{d}"] = f"smtp-{d}"
        env[f"RELAY_PASSWORD_{d}"] = f"relay-{d}"
    return env


def main() -> None:
    if sys.argv[1:2] == ["--drift"]:
        drift(Path(sys.argv[2]))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    work = OUT / "export"
    directory = generate(n, work / "channels.d")
    for leftover in (work / ".channelsync").glob("*") if (work / ".channelsync").exists() else []:
        leftover.unlink()
    env = secrets_env()
    cmd = channelsync()
    _, _, code, out = run([*cmd, "apply", "--auto-approve", "--skip-connection-tests"],
                          env=env, cwd=work)
    assert code == 0, out[-500:]
    export = [*cmd, "export"]
    run(export, env=env, cwd=work)  # warm-up (and the first export may reformat nothing)
    walls, peaks = [], []
    for _ in range(RUNS):
        wall, peak, code, out = run(export, env=env, cwd=work)
        assert code == 0 and "wrote" not in out, out[-500:]
        walls.append(wall)
        peaks.append(peak)
    print(f"export {n:,} files in sync: median {statistics.median(walls):.2f} s wall "
          f"(min {min(walls):.2f}), peak RSS {max(peaks):.0f} MB  [target <= 1.0 s]")
    walls, peaks = [], []
    for _ in range(RUNS):
        changed = drift(directory)
        wall, peak, code, out = run(export, env=env, cwd=work)
        written = out.count("wrote ")
        assert code == 0 and written == changed, (written, changed, out[-500:])
        walls.append(wall)
        peaks.append(peak)
    print(f"export {n:,} files, {changed} drifted: median {statistics.median(walls):.2f} s wall "
          f"(min {min(walls):.2f}), peak RSS {max(peaks):.0f} MB  [target <= 2.0 s]")


if __name__ == "__main__":
    main()
