"""``-v/--verbose``: each step and its time on stderr, as text or JSON lines; never a secret."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from channelsync import log
from tests.tenant_config import SECRETS, apply

MS = re.compile(r"\(\d+(\.\d+)? ms\)$")


def _steps(err: str) -> list[str]:
    return [MS.sub("(T ms)", line) for line in err.splitlines() if line.startswith("channelsync:")]


def test_verbose_logs_each_step_and_its_time(tenant: Path, cli: Any) -> None:
    result = cli("-v", "plan", "--out", "p.json")
    assert result.code == 0
    assert _steps(result.err) == [
        "channelsync: load config: dir=channels.d files=4 resources=4 errors=0 warnings=0 (T ms)",
        "channelsync: open target: scheme=sqlite readonly=True (T ms)",
        "channelsync: read live state: resources=0 (T ms)",
        "channelsync: plan: selected=all create=4 update=0 rename=0 delete=0 no_op=0 "
        "warnings=0 (T ms)",
        "channelsync: save plan: path=p.json changes=4 (T ms)",
        "channelsync: command plan (T ms)",
    ]
    after = cli("show", "p.json", "--verbose")  # after the command too
    assert _steps(after.err) == [
        "channelsync: read saved plan: path=p.json (T ms)",
        "channelsync: command show (T ms)",
    ]
    assert cli("plan").err == ""  # and nothing without it


def test_log_format_json_writes_one_object_per_line(tenant: Path, cli: Any) -> None:
    result = apply(cli, "-v", "--log-format", "json")
    assert result.code == 0
    lines = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    steps = [line["step"] for line in lines]
    assert steps[:2] == ["load config", "open target"]
    assert steps.count("apply") == 4
    assert steps[-1] == "command apply"
    first = lines[0]
    assert set(first) >= {"time", "level", "message", "step", "ms", "dir", "files"}
    assert (first["level"], first["files"], type(first["ms"])) == ("info", 4, float)
    change = next(line for line in lines if line["step"] == "apply")
    assert set(change) >= {"action", "kind", "name"}


@pytest.mark.parametrize("form", ["text", "json"])
def test_verbose_output_of_every_command_holds_no_secret(tenant: Path, cli: Any, form: str) -> None:
    runs = [
        ("validate",),
        ("plan", "--out", "p.json"),
        ("show", "p.json", "--format", "json"),
        ("apply", "p.json", "--skip-connection-tests"),
        ("drift",),
        ("export", "--dir", "exported"),
        ("list", "--live"),
        ("fmt", "--check"),
        ("plan", "--format", "runbook"),
    ]
    local = tenant / "local.d"  # 'test' logs in where the config says: a closed local port
    local.mkdir()
    (local / "s.yaml").write_text(
        "kind: SmtpServer\nname: Local\nhost: 127.0.0.1\nport: 1\nsecurity: none\n"
        "user: relay\npassword: ${env:RELAY_PASSWORD}\nallow_insecure_auth: true\n"
    )
    runs.append(("test", "--dir", "local.d", "--timeout", "2"))
    seen = ""
    for args in runs:
        result = cli("-v", "--log-format", form, *args)
        assert result.code in (0, 1, 2), (args, result.err)
        assert "command " + args[0] in result.err, args
        seen += result.out + result.err
    assert "connection test" in seen  # the one of 'test'
    for secret in SECRETS.values():
        for shown in (secret, base64.b64encode(secret.encode()).decode()):
            assert shown not in seen


def test_the_log_filter_takes_a_read_secret_out_of_any_record() -> None:
    stream = io.StringIO()
    secret = SECRETS["RELAY_PASSWORD"]
    log.configure(True, "text", stream, lambda text: text.replace(secret, "***"))
    try:
        log.note(f"oops {secret}", value=secret, count=3)
    finally:
        log.configure(False, "text", stream)
    assert stream.getvalue() == "channelsync: oops ***: value=*** count=3\n"
