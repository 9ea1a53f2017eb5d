"""Benchmark: 16 concurrent `channelsync plan` processes of 1,000 channels each through two
`channelsync serve` replicas on one SQLite file.

Target (issue 14): at most 3 s wall for all 16. On a small host the clients' CPU decides it,
so the CPU seconds (user + system) of one plan process over HTTP are printed too, the best
of five. Plans alternate between the replicas, each with its own read token. The replicas are
stopped at the end, whatever happens.

The package's modules are byte-compiled first, as an installed wheel's are: with
PYTHONDONTWRITEBYTECODE set, every run would compile them again (~0.1 s of CPU).

    python bench/concurrent_plans.py [N] [PLANS]
"""

from __future__ import annotations

import compileall
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import OUT, channelsync, served
from http_plan import tenant

import channelsync as package


def cpu_of(argv: list[str], environ: dict[str, str]) -> tuple[float, int]:
    """CPU seconds (user + system) of one whole process of ``argv``, and its exit code."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=environ)
        _, status, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


def concurrently(runs: list[tuple[list[str], dict[str, str]]]) -> tuple[float, float, list[int]]:
    """Wall seconds until the last of ``runs`` ends, their CPU seconds summed, exit codes."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        for argv, env in runs
    ]
    cpu, codes = 0.0, []
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        cpu += usage.ru_utime + usage.ru_stime
        codes.append(os.waitstatus_to_exitcode(status))
    return time.perf_counter() - start, cpu, codes


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    plans = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    compileall.compile_dir(str(Path(package.__file__).parent), quiet=1)
    work = OUT / "concurrent_plans"
    directory, url_store, environ = tenant(n, work)
    with contextlib.ExitStack() as stack:
        replicas = []
        for name in ("replica-a", "replica-b"):
            (work / name).mkdir(exist_ok=True)
            url, token = stack.enter_context(served(url_store, work / name, "read"))
            replicas.append((url, {**environ, "CHANNELSYNC_TOKEN": token}))
        runs = [
            ([*channelsync(), "plan", "--dir", str(directory), "--target", url], env)
            for url, env in (replicas[i % 2] for i in range(plans))
        ]
        cpu_of(*runs[0])  # warm up the page cache and both replicas
        cpu_of(*runs[1])
        cpu, code = min(cpu_of(*runs[0]) for _ in range(5))
        print(f"one plan of {n:,} channels over HTTP: {cpu:.3f} s CPU (user + system), "
              f"exit {code}")
        wall, total, codes = concurrently(runs)
        failed = [c for c in codes if c != 0]
        print(f"{plans} concurrent plans of {n:,} channels through two replicas on one SQLite "
              f"file: {wall:.3f} s wall, {total:.2f} s client CPU, {os.cpu_count()} CPUs"
              f"{f', FAILED: exits {failed}' if failed else ''}  [target <= 3 s]")


if __name__ == "__main__":
    main()
