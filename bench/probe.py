"""Benchmark: `channelsync test` on 200 channels through a proxy that adds 100 ms per round trip.

Starts a real Dovecot (tests/mailservers.py) with an IMAPS listener, puts a delaying TCP
proxy in front of it (50 ms each way), writes 200 imap-ssl channels pointing at the proxy and
runs the command in-process. Prints the wall time (the median over --runs); the target is at
most 1.2 s. Several concurrencies (comma-separated) are run in turn, run by run, against the
same servers, to choose the default by measurement. Everything it starts is stopped before it
exits, and a watchdog ends it if anything hangs.

    python bench/probe.py [--channels 200] [--delay-ms 100] [--concurrency 32,64,128] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests import mailservers  # noqa: E402

TARGET_SECONDS = 1.2


class DelayProxy:
    """Forwards 127.0.0.1:port to upstream, delivering each chunk ``one_way`` seconds late.

    It runs in its own process, so that the client's threads do not slow it down (the GIL).
    """

    def __init__(self, upstream: int, one_way: float) -> None:
        import multiprocessing

        self.upstream, self.one_way = upstream, one_way
        ctx = multiprocessing.get_context("fork")
        receiver, sender = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=self._run, args=(sender,), daemon=True)
        self.process.start()
        if not receiver.poll(10):
            self.stop()
            raise RuntimeError("the proxy did not start")
        self.port: int = receiver.recv()

    def _run(self, sender: Any) -> None:
        self.loop = asyncio.new_event_loop()
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, backlog=1024)
        )
        sender.send(server.sockets[0].getsockname()[1])
        self.loop.run_forever()

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - self.loop.time()))
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        task = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((self.loop.time() + self.one_way, data))
        finally:
            queue.put_nowait((0.0, b""))
            with contextlib.suppress(OSError):
                await task
            writer.close()


CHANNEL = """\
kind: EmailChannel
name: Bench Channel {i:03d}
email: bench{i:03d}@example.test
enabled: true
incoming:
  server: localhost
  protocol: imap-ssl
  port: {port}
  user: {user}
  password: ${{env:BENCH_IMAP_PASSWORD}}
  tls: {{ca_file: certs/ca.pem}}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", default=None, help="one or several, comma-separated")
    parser.add_argument("--runs", type=int, default=1)
    opts = parser.parse_args()
    from channelsync.defaults import PROBE_CONCURRENCY
    from channelsync.probe import command

    levels = [int(c) for c in (opts.concurrency or str(PROBE_CONCURRENCY)).split(",")]
    watchdog = 120 * opts.runs * len(levels)
    signal.signal(
        signal.SIGALRM, lambda *_: sys.exit(f"bench/probe.py: watchdog fired ({watchdog} s)")
    )
    signal.alarm(watchdog)

    servers = mailservers.start()
    proxy = DelayProxy(servers.ports["imaps"], opts.delay_ms / 2000)
    folder = Path(tempfile.mkdtemp(prefix="channelsync-bench-"))
    try:
        (folder / "certs").mkdir()
        shutil.copy(servers.ca_file, folder / "certs" / "ca.pem")
        for i in range(opts.channels):
            text = CHANNEL.format(i=i, port=proxy.port, user=mailservers.USER)
            (folder / f"channel-{i:03d}.yaml").write_text(text)
        os.environ["BENCH_IMAP_PASSWORD"] = mailservers.PASSWORD
        walls: dict[int, list[float]] = {level: [] for level in levels}
        failed = False
        for _ in range(opts.runs):
            for level in levels:
                wall, ok = _once(command, folder, level)
                walls[level].append(wall)
                failed = failed or not ok
    finally:
        proxy.stop()
        servers.stop()
        shutil.rmtree(folder, ignore_errors=True)
    for level, times in walls.items():
        print(
            f"channelsync test: {opts.channels} channels, +{opts.delay_ms:g} ms per round trip, "
            f"concurrency {level}: median {statistics.median(times):.2f} s wall over "
            f"{len(times)} run(s) (min {min(times):.2f}, max {max(times):.2f}; "
            f"target <= {TARGET_SECONDS:g} s)"
        )
    best = min(statistics.median(times) for times in walls.values())
    return 0 if not failed and best <= TARGET_SECONDS else 1


def _once(command: Any, folder: Path, concurrency: int) -> tuple[float, bool]:
    args = argparse.Namespace(
        dir=folder,
        names=[],
        format="json",
        concurrency=concurrency,
        timeout=15.0,
        send_test_message=None,
        backlog_after=15.0,
        end_to_end=False,
        dns=False,
        cleanup=False,
    )
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = command.run(args)
    wall = time.perf_counter() - started
    report = json.loads(out.getvalue())
    if code != 0:
        failures = {r["error"]["code"] for r in report["results"] if r["error"]}
        print(f"concurrency {concurrency}: failures: {sorted(failures)}", file=sys.stderr)
    return wall, code == 0


if __name__ == "__main__":
    sys.exit(main())
