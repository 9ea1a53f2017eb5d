"""A plan over HTTP starts without what a synchronous client never runs (issue 14: 16 plans
of 1,000 channels on two cores are decided by each client's CPU)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.http.conftest import Server, write_config

UNUSED = ("trio", "click", "pygments", "importlib.metadata")  # deepdiff: the changes' diff


def test_plan_over_http_imports_no_trio_cli_or_entry_points(
    server: Server, workdir: Path, secrets_env: dict[str, str]
) -> None:
    write_config(workdir / "channels.d", 3)
    code = (
        "import sys\n"
        "from channelsync.cli import main\n"
        f"code = main(['plan', '--target', {server.url!r}, '--detailed-exitcode'])\n"
        f"print(code, [name for name in {UNUSED!r} if name in sys.modules])\n"
    )
    env = {**secrets_env, "CHANNELSYNC_TOKEN": server.read_token}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=workdir
    )
    assert out.stdout.strip().splitlines()[-1] == "2 []", out.stderr


def test_trio_stays_importable_after_a_client_is_made(server: Server) -> None:
    pytest.importorskip("trio")
    code = (
        "from channelsync.targets.http import HttpTarget\n"
        f"HttpTarget({server.url!r}, token='t').close()\n"
        "import trio, httpcore._synchronization as sync\n"
        "print(sync.trio is None, trio.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "True trio", out.stderr
