"""Benchmark: apply of N creates, then plan of N channels with 5 % changed (whole processes).

Targets (issue 11): apply of 10,000 creates <= 1.0 s wall on the embedded store; plan of
10,000 channels with 5 % changed <= 0.35 s; at 100,000 files both under 700 MB.

    python bench/plan_apply.py [N]
"""

from __future__ import annotations

import os
import sys

from common import OUT, best_of, channelsync, generate, run


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    work = OUT / "plan_apply"
    directory = generate(n, work / "channels.d")
    for leftover in (work / ".channelsync").glob("*") if (work / ".channelsync").exists() else []:
        leftover.unlink()
    env = {**os.environ, "NO_COLOR": "1"}
    for d in range(20):
        env[f"IMAP_PASSWORD_{d}"] = f"imap-{d}"
        env[f"SMTP_PASSWORD_{d}"] = f"smtp-{d}"
        env[f"RELAY_PASSWORD_{d}"] = f"relay-{d}"
    cmd = channelsync()
    wall, peak, code, out = run(
        [*cmd, "apply", "--auto-approve", "--skip-connection-tests"], env=env, cwd=work
    )
    print(f"apply {n + 40:,} creates: {wall:.2f} s wall, peak RSS {peak:.0f} MB, exit {code} "
          f"({out.strip().splitlines()[-1]})  [target <= 1.0 s]")
    changed = n // 20
    for i in range(changed):
        path = directory / f"channel-{i * 20:05d}.yaml"
        path.write_text(path.read_text().replace("  protocol:", "  port: 2000\n  protocol:"))
    wall, peak, code, out = best_of(
        3, [*cmd, "plan", "--detailed-exitcode"], env=env, cwd=work
    )
    summary = [line for line in out.splitlines() if line.startswith("Plan:")]
    print(f"plan {n:,} channels, {changed} changed: {wall:.2f} s wall, peak RSS {peak:.0f} MB, "
          f"exit {code} ({summary[0] if summary else out[-200:]})  [target <= 0.35 s]")


if __name__ == "__main__":
    main()
