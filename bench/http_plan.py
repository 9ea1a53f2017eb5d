"""Benchmark: `channelsync plan` of 1,000 channels against a tenant served over HTTP.

Target (issue 5): at most 2 s wall for the whole plan process. The store is filled through
the embedded target first (fast), then served by a real `channelsync serve` on a free
loopback port; 5 % of the channels are changed so the plan has work to show. The server is
stopped at the end, whatever happens.

    python bench/http_plan.py [N]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from common import OUT, best_of, channelsync, env, generate, run, served


def tenant(n: int, work: Path) -> tuple[Path, str, dict[str, str]]:
    """``n`` channels applied to a fresh SQLite store, then 5 % of them changed in the config:
    (config folder, store URL, environment with every referenced secret)."""
    directory = generate(n, work / "channels.d")
    store = work / "tenant.db"
    for stale in (store, store.with_suffix(".key"), work / "tokens.json"):
        stale.unlink(missing_ok=True)
    environ = env()
    for path in directory.iterdir():  # every referenced secret gets a value of its own
        for name in re.findall(r"\$\{env:([A-Za-z0-9_]+)\}", path.read_text()):
            environ[name] = f"secret-of-{name.lower()}"
    url_store = f"sqlite:///{store}"
    filled = run([*channelsync(), "apply", "--dir", str(directory), "--target", url_store,
                  "--auto-approve", "--skip-connection-tests"], env=environ)
    if filled[2] != 0:
        raise SystemExit(f"filling the store failed:\n{filled[3][-2000:]}")
    for i in range(0, n, 20):  # 5 % of the channels change in the config
        path = directory / f"channel-{i:05d}.yaml"
        text = path.read_text()
        flipped = "enabled: false" if "enabled: true" in text else "enabled: true"
        path.write_text(re.sub(r"enabled: (true|false)", flipped, text, count=1))
    return directory, url_store, environ


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    work = OUT / "http_plan"
    directory, url_store, environ = tenant(n, work)
    cmd = channelsync()
    with served(url_store, work, "read") as (url, token):
        environ["CHANNELSYNC_TOKEN"] = token
        argv = [*cmd, "plan", "--dir", str(directory), "--target", url, "--detailed-exitcode"]
        best_of(1, argv, env=environ)  # warm up the page cache and the server
        wall, peak, code, out = best_of(3, argv, env=environ)
        summary = next((line for line in out.splitlines() if line.startswith("Plan:")), out[-300:])
        print(f"plan {n:,} channels over HTTP: {wall:.3f} s wall, peak RSS {peak:.0f} MB, "
              f"exit {code} ({summary})  [target <= 2 s]")
        wall_sql, _, _, _ = best_of(3, [*argv[:5], url_store, "--detailed-exitcode"], env=environ)
        print(f"the same plan against the embedded store: {wall_sql:.3f} s wall")


if __name__ == "__main__":
    main()
