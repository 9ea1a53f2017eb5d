"""Benchmark: plans over HTTP against `channelsync serve` on the PostgreSQL store.

Targets (issue 14):
- plan of 10,000 channels over HTTP against the PostgreSQL store: at most 2.5 s wall, and at
  most 1.5x the same plan against a server on the SQLite store, measured in the same run;
- 16 concurrent plans of 1,000 channels each, spread over two replicas on one database:
  at most 3 s wall for all 16.

A throw-away PostgreSQL cluster is started as the test suite does (tests/pgserver.py: run as
root, Debian's postgresql package). Each store is filled through the embedded target (fast),
then its rows and key are copied into a PostgreSQL database, so both servers serve the same
tenant. 5 % of the channels are changed so each plan has work to show. Every server and the
cluster are stopped at the end, whatever happens.

    python bench/pg_http.py [N] [PER_PLAN]
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import OUT, best_of, channelsync, env, free_port, generate, run, wait_ready

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests import pgserver  # noqa: E402  (the suite's cluster fixture, outside pytest)

SERVER = [sys.executable, "-m", "channelsync.server"]
COLUMNS = "kind, name, body, secrets, etag, email, updated_at"


def filled(work: Path, n: int, environ: dict[str, str]) -> tuple[Path, Path]:
    """A config of ``n`` channels and a SQLite store holding it, 5 % changed since."""
    directory = generate(n, work / "channels.d")
    store = work / "tenant.db"
    for stale in (store, store.with_suffix(".key")):
        stale.unlink(missing_ok=True)
    for path in directory.iterdir():  # every referenced secret gets a value of its own
        for name in re.findall(r"\$\{env:([A-Za-z0-9_]+)\}", path.read_text()):
            environ[name] = f"secret-of-{name.lower()}"
    done = run([*channelsync(), "apply", "--dir", str(directory), "--target", f"sqlite:///{store}",
                "--auto-approve", "--skip-connection-tests"], env=environ)
    if done[2] != 0:
        raise SystemExit(f"filling the store failed:\n{done[3][-2000:]}")
    for i in range(0, n, 20):
        path = directory / f"channel-{i:05d}.yaml"
        text = path.read_text()
        flipped = "enabled: false" if "enabled: true" in text else "enabled: true"
        path.write_text(re.sub(r"enabled: (true|false)", flipped, text, count=1))
    return directory, store


def copied(cluster: pgserver.Cluster, store: Path) -> str:
    """A migrated PostgreSQL database holding the rows of the SQLite ``store``; its URL."""
    import psycopg

    url = cluster.url(cluster.create_database())
    subprocess.run([*SERVER, "serve", "--store", url, "--migrate"], check=True,
                   capture_output=True)
    source = sqlite3.connect(store)
    rows = source.execute(f"SELECT {COLUMNS} FROM resources").fetchall()
    source.close()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY resources (tenant, {COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(("default", *row))
    return url


class Served:
    def __init__(self, work: Path, name: str, tokens: Path, args: list[str],
                 environ: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (work / f"serve-{name}.log").open("wb")
        self.proc = subprocess.Popen(
            [*SERVER, "serve", *args, "--port", str(self.port), "--tokens", str(tokens)],
            stdout=self.log, stderr=subprocess.STDOUT, env=environ,
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def concurrent(plans: list[list[str]], environ: dict[str, str]) -> tuple[float, list[int], float]:
    """Wall seconds for all, the exit codes, and the CPU seconds the plan processes used."""
    codes: list[int] = [0] * len(plans)
    cpu: list[float] = [0.0] * len(plans)

    def one(i: int) -> None:
        proc = subprocess.Popen(plans[i], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=environ)
        _, status, usage = os.wait4(proc.pid, 0)
        codes[i] = os.waitstatus_to_exitcode(status)
        cpu[i] = usage.ru_utime + usage.ru_stime

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(plans))]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, codes, sum(cpu)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    per_plan = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000
    work = OUT / "pg_http"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    environ = env()
    big_dir, big_store = filled(work / "big", n, environ)
    small_dir, small_store = filled(work / "small", per_plan, environ)
    tokens = work / "tokens.json"
    token = subprocess.run([*SERVER, "token", "add", "bench", "--role", "read", "--tokens",
                            str(tokens)], capture_output=True, text=True, check=True).stdout.strip()
    environ["CHANNELSYNC_TOKEN"] = token
    cluster = pgserver.start()
    servers: list[Served] = []
    try:
        big_url, small_url = copied(cluster, big_store), copied(cluster, small_store)
        lite = Served(work, "sqlite", tokens, ["--target", f"sqlite:///{big_store}"], environ)
        servers.append(lite)
        pg = Served(work, "pg", tokens, ["--key-file", str(big_store.with_suffix(".key"))],
                    {**environ, "CHANNELSYNC_STORE": big_url})
        servers.append(pg)
        replicas = [
            Served(work, f"replica-{i}", tokens,
                   ["--key-file", str(small_store.with_suffix(".key"))],
                   {**environ, "CHANNELSYNC_STORE": small_url})
            for i in range(2)
        ]
        servers += replicas
        for served in servers:
            wait_ready(served.url, served.proc)

        def plan(directory: Path, url: str) -> list[str]:
            return [*channelsync(), "plan", "--dir", str(directory), "--target", url,
                    "--detailed-exitcode"]

        results = {}
        for name, served in (("postgresql", pg), ("sqlite", lite)):
            best_of(1, plan(big_dir, served.url), env=environ)  # warm up
            results[name] = best_of(3, plan(big_dir, served.url), env=environ)
        wall_pg, peak, code, out = results["postgresql"]
        wall_sql = results["sqlite"][0]
        summary = next((line for line in out.splitlines() if line.startswith("Plan:")), out[-300:])
        print(f"plan {n:,} channels over HTTP, PostgreSQL store: {wall_pg:.3f} s wall, peak RSS "
              f"{peak:.0f} MB, exit {code} ({summary})  [target <= 2.5 s]")
        print(f"the same plan, SQLite store: {wall_sql:.3f} s wall; PostgreSQL / SQLite = "
              f"{wall_pg / wall_sql:.2f}  [target <= 1.5]")

        plans = [plan(small_dir, replicas[i % 2].url) for i in range(16)]
        concurrent(plans[:2], environ)  # warm up
        before = sum(cpu_seconds(r.proc.pid) for r in replicas)
        wall, codes, client_cpu = concurrent(plans, environ)
        server_cpu = sum(cpu_seconds(r.proc.pid) for r in replicas) - before
        print(f"16 concurrent plans of {per_plan:,} channels through two replicas: {wall:.3f} s "
              f"wall, exits {sorted(set(codes))}  [target <= 3 s]; CPU: {client_cpu:.2f} s in "
              f"the 16 plan processes, {server_cpu:.2f} s in the two replicas, on "
              f"{os.cpu_count()} cores")
    finally:
        for served in servers:
            served.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
