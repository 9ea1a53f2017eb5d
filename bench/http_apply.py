"""Benchmark: `channelsync apply` of 1,000 creates against a tenant served over HTTP.

Target (issue 14): at most 0.5 s wall for the whole apply process on the SQLite store. Each
run starts a real `channelsync serve` on an empty store on a free loopback port (the best of
three runs is shown), so every channel is a create.

    python bench/http_apply.py [N]
"""

from __future__ import annotations

import sys

from common import OUT, channelsync, env, generate, run, served


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    work = OUT / "http_apply"
    directory = generate(n, work / "channels.d")
    environ = env()
    for d in range(20):
        environ[f"IMAP_PASSWORD_{d}"] = f"imap-{d}"
        environ[f"SMTP_PASSWORD_{d}"] = f"smtp-{d}"
        environ[f"RELAY_PASSWORD_{d}"] = f"relay-{d}"
    cmd = channelsync()
    results = []
    for attempt in range(3):
        store = work / f"tenant-{attempt}.db"
        for stale in (store, store.with_suffix(".key")):
            stale.unlink(missing_ok=True)
        with served(f"sqlite:///{store}", work, "write") as (url, token):
            environ["CHANNELSYNC_TOKEN"] = token
            results.append(
                run(
                    [
                        *cmd,
                        "apply",
                        "--dir",
                        str(directory),
                        "--target",
                        url,
                        "--auto-approve",
                        "--skip-connection-tests",
                    ],
                    env=environ,
                )
            )
    wall, peak, code, out = min(results, key=lambda r: r[0])
    last = out.strip().splitlines()[-1] if out.strip() else ""
    print(
        f"apply {n + 40:,} creates over HTTP: {wall:.3f} s wall, peak RSS {peak:.0f} MB, "
        f"exit {code} ({last})  [target <= 0.5 s]"
    )


if __name__ == "__main__":
    main()
