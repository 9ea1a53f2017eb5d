"""All formatting is in render/: the export report, the channel list, the gate's lines and the
token list, drawn with the one table helper (render/table.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from channelsync import cli
from channelsync.export import ExportReport
from channelsync.probe.check import Diagnosis, Result
from channelsync.render import connections, export, listing, table, tokens
from channelsync.server.tokens import TokenEntry


def test_one_table_helper_pads_cuts_and_trims() -> None:
    rows = [("NAME", "ROLE", "NOTE"), ("a", "write", "")]
    assert table.lines(rows) == ["NAME  ROLE   NOTE", "a     write"]
    assert table.widths(rows, (6,)) == [6, 5, 4]
    assert table.lines([("Support Team Europe", "x")], [12, 1]) == ["Support...    x"]
    # past the given widths a cell is kept whole (the DNS and round-trip tables' last column)
    assert table.lines([("a", "a long hint"), ("bb", "x")], [2]) == ["a   a long hint", "bb  x"]


def test_token_list_keeps_the_role_column_five_wide() -> None:
    entries = [
        TokenEntry("ci", "read", "digest", "2026-01-01T00:00:00Z"),
        TokenEntry("deploy-bot", "read", "digest", "2026-01-02T00:00:00Z", ("acme", "beta")),
    ]
    assert tokens.text(entries) == (
        "ci          read   default    2026-01-01T00:00:00Z\n"
        "deploy-bot  read   acme,beta  2026-01-02T00:00:00Z\n"
    )


def _row(name: str) -> dict[str, object]:
    return {
        "name": name,
        "email": f"{name.lower()}@acme.test",
        "protocol": "imap-ssl",
        "incoming": "imap.acme.test",
        "port": 993,
        "outgoing": "VCC Internal (tenant default)",
        "outgoing_server": "VCC Internal",
        "outgoing_mode": "tenant default",
        "script": "Default",
        "enabled": True,
    }


def test_channel_list_table_and_json() -> None:
    assert listing.text([_row("Support")]) == (
        "CHANNEL NAME  EMAIL ADDRESS      PROTOCOL  INCOMING MAIL SERVER  PORT  "
        "OUTGOING MAIL SERVER           EMAIL SCRIPT  ENABLED\n"
        "Support       support@acme.test  imap-ssl  imap.acme.test        993   "
        "VCC Internal (tenant default)  Default       yes\n"
        "1 channel(s)\n"
    )
    assert listing.as_json([]) == "[]\n"


def test_export_report() -> None:
    report = ExportReport(
        written=[Path("channels.d/a.yaml")],
        not_pruned=["EmailChannel 'Old'"],
        placeholders=[("A_PASSWORD", "EmailChannel 'A' incoming password")],
    )
    assert export.changes(report) == (
        "wrote channels.d/a.yaml\n"
        "would remove EmailChannel 'Old'\n"
        "1 resource(s) not in the tenant were left in the config; rerun with --prune to "
        "remove them\n"
    )
    assert export.secrets_to_set(report) == (
        "\nSet these secrets before plan or apply (their values never leave the tenant):\n"
        "  A_PASSWORD  (EmailChannel 'A' incoming password)\n"
    )
    assert export.secrets_to_set(ExportReport()) == ""


def test_gate_lines() -> None:
    failed = Result(
        "EmailChannel",
        "A",
        "incoming",
        "imap.acme.test",
        993,
        "imap-ssl",
        False,
        5,
        error=Diagnosis("refused", "refused", "check the port"),
    )
    passed = Result("SmtpServer", "R", "smtp", "smtp.acme.test", 587, "smtp", True, 3)
    errors, warnings = connections.failure_lines([failed, passed], [failed])
    assert errors == [
        f"connection test failed: EmailChannel 'A' (incoming, imap-ssl://imap.acme.test:993): "
        f"{failed.error}"
    ]
    assert warnings == []
    assert connections.failure_lines([failed], [])[1][0].startswith(
        "warning: connection test failed on a disabled channel: EmailChannel 'A'"
    )
    assert connections.summary_line([failed, passed]) == "connection tests: 1 passed, 1 failed"


def test_cli_keeps_only_the_parser_and_main() -> None:
    tree = ast.parse(Path(cli.__file__).read_text(encoding="utf-8"))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert defined == {"build_parser", "main", "run"}
