"""`channelsync validate`: the bad-file corpus, output formats, exit codes, hostile input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from channelsync.loader import load_config
from tests.conftest import CORPUS, EXAMPLES

BAD = CORPUS / "bad"


def _expected() -> dict[str, list[str]]:
    table: dict[str, list[str]] = defaultdict(list)
    for line in (BAD / "expected.txt").read_text(encoding="utf-8").splitlines():
        table[line.split(":", 1)[0]].append(line)
    return table


BAD_FILES = sorted(p.name for p in BAD.glob("*.yaml"))


def test_corpus_has_at_least_thirty_bad_files() -> None:
    assert len(BAD_FILES) >= 30
    assert set(_expected()) == set(BAD_FILES)


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_file_reports_exact_position_and_message(name: str, workdir: Path, cli: Any) -> None:
    shutil.copy(BAD / name, workdir / "channels.d" / name)
    result = cli("validate", "--dir", "channels.d")
    got = [line.replace("channels.d/", "") for line in result.out.splitlines()[:-1]]
    assert got == _expected()[name]
    has_error = any(": error: " in line for line in got)
    assert result.code == (1 if has_error else 0)
    assert "Traceback" not in result.out + result.err


def test_shipped_examples_are_valid(examples: Path, cli: Any) -> None:
    result = cli("validate")
    assert result.code == 0, result.out
    assert result.out.endswith("4 file(s) checked: valid, 0 error(s), 5 warning(s)\n")
    # the agent Dana sends with her own Gmail account: an App password, too (issue 12)
    assert "channels.d/acmejets.yaml:46:11: warning: Google, since 2024-09-30: " in result.out


def test_json_format_lists_errors_and_warnings(workdir: Path, cli: Any) -> None:
    shutil.copy(BAD / "46-warnings.yaml", workdir / "channels.d")
    shutil.copy(BAD / "17-port-too-high.yaml", workdir / "channels.d")
    result = cli("validate", "--format", "json")
    report = json.loads(result.out)
    assert result.code == 1
    assert report["valid"] is False
    assert report["errors"] == [
        {
            "file": "channels.d/17-port-too-high.yaml",
            "line": 7,
            "column": 9,
            "severity": "error",
            "message": "incoming.port: port 70000 is outside 1-65535",
        }
    ]
    assert [w["line"] for w in report["warnings"]] == [6, 7, 15, 15]
    # the error document every command's --format json has on failure
    error = report["error"]
    assert (error["message"], error["code"], error["exit_code"]) == (
        "the configuration has 1 error(s); run 'channelsync validate'",
        "config_error",
        1,
    )
    every = [*report["errors"], *report["warnings"]]
    assert sorted(error["diagnostics"], key=json.dumps) == sorted(every, key=json.dumps)


def test_github_format_is_workflow_annotations(workdir: Path, cli: Any) -> None:
    shutil.copy(BAD / "19-unknown-protocol.yaml", workdir / "channels.d")
    result = cli("validate", "--format", "github")
    assert result.out == (
        "::error file=channels.d/19-unknown-protocol.yaml,line=6,col=13::incoming.protocol: "
        "'imap-tls' is not one of pop3, pop3-ssl, imap, imap-ssl (did you mean 'imap-ssl'?)\n"
    )


def test_every_problem_in_one_run_across_files(workdir: Path, cli: Any) -> None:
    for name in ("16-bad-email.yaml", "20-unknown-auth.yaml", "40-builtin-name.yaml"):
        shutil.copy(BAD / name, workdir / "channels.d")
    result = cli("validate")
    assert result.code == 1
    assert result.out.count(": error: ") == 3


def test_duplicate_name_across_files_points_at_both(workdir: Path, cli: Any) -> None:
    doc = "kind: EmailScript\nname: Sales\nqueues: [Sales]\n"
    (workdir / "channels.d" / "a.yaml").write_text(doc)
    (workdir / "channels.d" / "b.yml").write_text("# second\n" + doc)
    result = cli("validate")
    assert result.out.splitlines()[0] == (
        "channels.d/b.yml:3:7: error: duplicate EmailScript name 'Sales' "
        "(first defined at channels.d/a.yaml:2:7)"
    )


def test_duplicate_email_across_files_names_both_places(workdir: Path, cli: Any) -> None:
    doc = (
        "kind: EmailChannel\nname: {name}\nemail: {email}\nincoming:\n  server: mail.example.com\n"
        "  protocol: imap-ssl\n  user: u\n  password: ${{env:P}}\n"
    )
    (workdir / "channels.d" / "a.yaml").write_text(doc.format(name="A", email="help@example.com"))
    (workdir / "channels.d" / "b.yaml").write_text(doc.format(name="B", email="Help@Example.com"))
    result = cli("validate")
    assert result.out.splitlines()[0] == (
        "channels.d/b.yaml:3:8: error: email Help@Example.com is already used by channel 'A' "
        "(at channels.d/a.yaml:3:8); each channel needs its own address"
    )


def test_literal_secret_is_never_echoed(workdir: Path, cli: Any) -> None:
    shutil.copy(BAD / "29-literal-secret.yaml", workdir / "channels.d")
    for fmt in ("text", "json", "github"):
        result = cli("validate", "--format", fmt)
        assert "hunter2" not in result.out + result.err


def test_missing_config_dir_is_an_error(workdir: Path, cli: Any) -> None:
    result = cli("validate", "--dir", "nowhere")
    assert result.code == 1
    assert result.out.startswith(
        "nowhere:1:1: error: config directory does not exist; create it or pass --dir"
    )


def test_oversized_file_is_refused_without_parsing(workdir: Path, cli: Any) -> None:
    big = workdir / "channels.d" / "big.yaml"
    big.write_text("kind: EmailScript\nname: Big\nqueues:\n" + "  - q\n" * 300_000)
    result = cli("validate")
    assert result.out.splitlines()[0] == (
        "channels.d/big.yaml:1:1: error: file is 1,800,036 bytes; the limit is 1 MiB "
        "(split it into several files)"
    )


@pytest.mark.parametrize("name", ["33-alias-bomb.yaml", "34-deep-nesting.yaml"])
def test_hostile_input_is_refused_with_bounded_memory(name: str, workdir: Path) -> None:
    shutil.copy(BAD / name, workdir / "channels.d")
    tracemalloc.start()
    config = load_config(workdir / "channels.d")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(config.errors) == 1
    assert peak < 50 * 1024 * 1024


def test_unknown_option_exits_1_without_traceback(cli: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        cli("validate", "--bogus")
    assert exc.value.code == 1


def test_version_and_module_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "channelsync", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert out.stdout.startswith("channelsync 0.")


def test_schema_files_are_in_sync_with_the_model() -> None:
    from channelsync.schema import stale_files

    assert stale_files(Path(__file__).resolve().parent.parent / "schemas") == []


def test_examples_declare_the_schema_for_editors() -> None:
    for path in EXAMPLES.glob("*.yaml"):
        text = path.read_text()
        docs = text.count("\nkind:") + text.startswith("kind:")
        assert text.count("# yaml-language-server: $schema=../schemas/") == docs, path


def test_parallel_and_serial_loading_agree(examples: Path, monkeypatch: Any) -> None:
    from channelsync import loader

    serial = load_config(examples)
    monkeypatch.setattr(loader, "PARALLEL_MIN_FILES", 1)
    parallel = load_config(examples)
    assert [(r.kind, r.name, r.data) for r in parallel.resources] == [
        (r.kind, r.name, r.data) for r in serial.resources
    ]
    assert parallel.diagnostics == serial.diagnostics


def test_mutated_files_never_raise(workdir: Path) -> None:
    """Random byte mutations of the corpus: every outcome is diagnostics, never an exception."""
    import random

    rng = random.Random(2026)
    sources = [p.read_bytes() for p in sorted(BAD.glob("*.yaml")) + sorted(EXAMPLES.glob("*.yaml"))]
    target = workdir / "channels.d" / "fuzz.yaml"
    alphabet = b" \t\n:-[]{}&*!|>'\"#%@`,?\\\x00\xff"
    for round_ in range(400):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 6)):
            if not data:
                break
            at = rng.randrange(len(data))
            if rng.random() < 0.5:
                data[at] = rng.choice(alphabet)
            else:
                del data[at : at + rng.randint(1, 8)]
        target.write_bytes(bytes(data))
        config = load_config(workdir / "channels.d")
        assert all(d.line >= 1 and d.column >= 1 for d in config.diagnostics), round_


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plan", "--target", "bogus://tenant"), "error: no target driver for 'bogus'"),
        (("apply", "missing-plan.json"), "error: cannot read plan file missing-plan.json"),
        (("plan", "--target", "sqlite://relative"), "error: bad target URL 'sqlite://relative'"),
        (("plan", "--target", "https://[::1"), "error: bad target URL for the 'https' driver"),
        (("plan", "--out", "channels.d"), "error: cannot write plan file channels.d: Is a"),
        (("export", "--dir", "channels.d/acmejets.yaml"), "error: fix these first: export"),
        (("schema", "--write", "--out", "/proc/x"), "error: /proc/x: No such file"),
        (("apply", "channels.d/acmejets.yaml"), "is not a channelsync plan file"),
    ],
)
def test_bad_command_input_is_one_clear_line(
    args: tuple[str, ...], message: str, examples: Path, cli: Any
) -> None:
    result = cli(*args)
    assert result.code == 1
    assert message in result.err
    assert "Traceback" not in result.err


def test_help_imports_no_heavy_library() -> None:
    """`channelsync --help` and `--version` must start fast: libraries load with commands."""
    code = (
        "import sys\n"
        "from channelsync.cli import build_parser\n"
        "build_parser()\n"
        "heavy = ('fastapi', 'uvicorn', 'httpx', 'pydantic', 'deepdiff', 'jsonschema',\n"
        "         'ruamel', 'yaml_rs', 'msal', 'cryptography', 'sqlite3')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_schema_check_says_missing_for_absent_files_and_stale_for_changed(
    workdir: Path, cli: Any
) -> None:
    result = cli("schema", "--check")
    assert result.code == 1
    assert result.err.splitlines()[0] == (
        "schemas/EmailChannel.schema.json: missing; run 'channelsync schema --write'"
    )
    assert cli("schema", "--write").code == 0
    (workdir / "schemas" / "SmtpServer.schema.json").write_text("{}\n")
    result = cli("schema", "--check")
    assert result.code == 1
    assert result.err == (
        "schemas/SmtpServer.schema.json: stale; run 'channelsync schema --write'\n"
    )


@pytest.mark.parametrize(
    ("ca_file", "message"),
    [
        (
            "/dev/zero",
            "ca_file '/dev/zero' is a device, not a regular file; only regular files are read",
        ),
        (".", "ca_file '.' is a folder, not a regular file; only regular files are read"),
        (
            "certs/none.pem",
            "ca_file 'certs/none.pem' does not exist (paths are relative to this file's directory)",
        ),
    ],
)
def test_ca_file_that_is_not_a_regular_file_says_what_it_is(
    ca_file: str, message: str, workdir: Path
) -> None:
    text = (CORPUS / "bad" / "32-missing-ca-file.yaml").read_text()
    (workdir / "channels.d" / "x.yaml").write_text(text.replace("certs/missing-ca.pem", ca_file))
    errors = [str(d) for d in load_config(workdir / "channels.d").errors]
    assert f"channels.d/x.yaml:10:14: error: {message}" in errors
