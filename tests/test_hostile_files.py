"""Reading the config cannot be made to hang, exhaust memory or crash (issue 9, section 2)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channelsync.loader import load_config
from tests.conftest import CORPUS, EXAMPLES

BAD = CORPUS / "bad"
SCRIPT = "kind: EmailScript\nname: {name}\nqueues: [Support]\n"


def _errors(out: str) -> list[str]:
    return [line for line in out.splitlines() if ": error: " in line]


@pytest.mark.timeout(30)
def test_files_that_are_not_regular_are_errors_at_their_path(workdir: Path, cli: Any) -> None:
    folder = workdir / "channels.d"
    (folder / "ok.yaml").write_text(SCRIPT.format(name="Sales"))
    (folder / "zero.yaml").symlink_to("/dev/zero")
    (folder / "stdin.yaml").symlink_to("/dev/stdin")
    os.mkfifo(folder / "pipe.yml")
    (folder / "folder.yaml").mkdir()
    (folder / "folder.yaml" / "inner.yaml").write_text(SCRIPT.format(name="Hidden"))
    (folder / "linked").symlink_to(workdir)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "socket.yaml"))
    read, write = os.pipe()  # stdin is a pipe nobody writes to: reading it would wait
    try:
        saved: int | None = os.dup(0)
    except OSError:  # started without a stdin
        saved = None
    os.dup2(read, 0)
    try:
        result = cli("validate")
    finally:
        if saved is None:
            os.close(0)
        else:
            os.dup2(saved, 0)
            os.close(saved)
        for fd in (read, write):
            os.close(fd)
        server.close()
    assert _errors(result.out) == [
        "channels.d/folder.yaml:1:1: error: is a folder, not a file; rename it or move it out",
        "channels.d/linked:1:1: error: is a link to a folder, which is not followed; "
        "use a real folder",
        "channels.d/pipe.yml:1:1: error: is a FIFO (named pipe), not a regular file; "
        "only regular files are read",
        "channels.d/socket.yaml:1:1: error: is a socket, not a regular file; "
        "only regular files are read",
        "channels.d/stdin.yaml:1:1: error: is a FIFO (named pipe), not a regular file; "
        "only regular files are read",
        "channels.d/zero.yaml:1:1: error: is a device, not a regular file; "
        "only regular files are read",
    ]
    assert result.code == 1


def test_symlink_to_a_regular_file_is_read(workdir: Path, cli: Any) -> None:
    target = workdir / "elsewhere.yaml"
    target.write_text(SCRIPT.format(name="Sales"))
    (workdir / "channels.d" / "link.yaml").symlink_to(target)
    result = cli("validate")
    assert result.code == 0
    assert result.out == "1 file(s) checked: valid, 0 error(s), 0 warning(s)\n"


def test_upper_case_suffixes_are_read(workdir: Path, cli: Any) -> None:
    (workdir / "channels.d" / "A.YAML").write_text(SCRIPT.format(name="Sales"))
    (workdir / "channels.d" / "B.YML").write_text(SCRIPT.format(name="Sales"))
    (workdir / "channels.d" / "c.Yaml").write_text(
        "kind: EmailScript\nname: Other\nqueues: [Support]\n"
    )
    result = cli("validate")
    assert result.out.splitlines() == [
        "channels.d/B.YML:2:7: error: duplicate EmailScript name 'Sales' "
        "(first defined at channels.d/A.YAML:2:7)",
        "3 file(s) checked: invalid, 1 error(s), 0 warning(s)",
    ]


@contextlib.contextmanager
def _as_nobody() -> Iterator[None]:
    """Act as 'nobody' when running as root (root reads any folder, whatever its mode)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_folder_that_cannot_be_listed_is_an_error_not_a_skip(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from channelsync.cli import main

    top = Path(tempfile.mkdtemp(prefix="channelsync-"))  # pytest's tmp_path is root's only
    try:
        top.chmod(0o755)
        folder = top / "channels.d"
        (folder / "team").mkdir(parents=True)
        (folder / "a.yaml").write_text(SCRIPT.format(name="Sales"))
        (folder / "team" / "b.yaml").write_text(SCRIPT.format(name="Support"))
        (folder / "team").chmod(0o000)
        monkeypatch.chdir(top)
        with _as_nobody():
            code = main(["validate"])
        out = capsys.readouterr().out
    finally:
        (top / "channels.d" / "team").chmod(0o755)
        shutil.rmtree(top)
    assert out.splitlines() == [
        "channels.d/team:1:1: error: cannot read folder: Permission denied; fix its "
        "permissions (a folder that is not read would look like deleted resources)",
        "1 file(s) checked: invalid, 1 error(s), 0 warning(s)",
    ]
    assert code == 1


def test_size_limit_is_checked_before_reading(workdir: Path, cli: Any) -> None:
    huge = workdir / "channels.d" / "huge.yaml"
    with huge.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: costs no disk, would cost 64 MiB to read
    tracemalloc.start()
    result = cli("validate")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert _errors(result.out) == [
        "channels.d/huge.yaml:1:1: error: file is 67,108,864 bytes; the limit is 1 MiB "
        "(split it into several files)"
    ]
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "63-alias-inside-itself.yaml",
            "the anchor '&q' is used inside itself (through an alias or a merge key); "
            "a value cannot contain itself",
        ),
        (
            "64-merge-key-of-itself.yaml",
            "the anchor '&base' is used inside itself (through an alias or a merge key); "
            "a value cannot contain itself",
        ),
        (
            "65-yaml-version-1-3.yaml",
            "YAML version 1.3 is not supported; use %YAML 1.2 or remove the directive",
        ),
        ("66-deep-compact-sequences.yaml", "nesting deeper than 32 levels"),
        ("67-deep-through-aliases.yaml", "nesting deeper than 32 levels (through aliases)"),
    ],
)
def test_recursive_or_unknown_yaml_is_a_positioned_error_in_json_too(
    name: str, message: str, workdir: Path, cli: Any
) -> None:
    shutil.copy(BAD / name, workdir / "channels.d" / name)
    result = cli("validate", "--format", "json")
    assert result.code == 1
    assert result.err == ""
    [error] = json.loads(result.out)["errors"]
    assert error["message"] == message
    assert error["line"] >= 1 and error["column"] >= 1


@pytest.mark.timeout(60)
def test_hundred_thousand_deep_flow_sequence_is_refused_quickly(workdir: Path, cli: Any) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    (workdir / "channels.d" / "deep.yaml").write_text(
        f"kind: EmailScript\nname: a\nqueues: {deep}\n"
    )
    started = time.monotonic()
    result = cli("validate")
    assert time.monotonic() - started < 2
    assert _errors(result.out) == [
        "channels.d/deep.yaml:3:40: error: nesting deeper than 32 levels"
    ]


@pytest.mark.parametrize("opener", ["[", '{"a": '])
def test_hundred_thousand_deep_json_plan_is_a_positioned_error(
    opener: str, examples: Path, cli: Any
) -> None:
    closer = "]" if opener == "[" else "}"
    Path("plan.json").write_text(opener * 100_000 + "1" + closer * 100_000)
    result = cli("apply", "plan.json")
    assert result.code == 1
    column = 101 if opener == "[" else 1 + 100 * len(opener)
    assert result.err.splitlines()[-1] == (
        f"error: plan.json:1:{column}: nesting deeper than 100 levels; "
        "it is not a channelsync plan file"
    )


@pytest.mark.timeout(30)
def test_plan_file_that_is_a_device_or_fifo_is_refused(examples: Path, cli: Any) -> None:
    os.mkfifo("plan.json")
    result = cli("apply", "plan.json")
    assert result.err.splitlines()[-1] == (
        "error: cannot read plan file plan.json: is a FIFO (named pipe), not a regular file; "
        "only regular files are read"
    )
    result = cli("apply", "/dev/zero")
    assert result.err.splitlines()[-1] == (
        "error: cannot read plan file /dev/zero: is a device, not a regular file; "
        "only regular files are read"
    )


def _near_limit(documents: int, bad: str) -> str:
    body = "".join(
        f"---\nkind: EmailScript\nname: s{i}\nqueues: [a, b]\n" for i in range(documents)
    )
    return body + bad


def test_error_in_one_document_of_a_large_file_is_fast(workdir: Path, cli: Any) -> None:
    text = _near_limit(20_400, "---\nkind: EmailScript\nname: bad\nqueuez: [a]\n")
    assert 1_000_000 < len(text) < 1024 * 1024
    (workdir / "channels.d" / "many.yaml").write_text(text)
    started = time.monotonic()
    result = cli("validate")
    elapsed = time.monotonic() - started
    assert _errors(result.out) == [
        "channels.d/many.yaml:81604:1: error: unknown field 'queuez' (did you mean 'queues'?)"
    ]
    assert elapsed < 1.0


def test_large_document_without_aliases_is_not_called_an_alias_bomb(
    workdir: Path, cli: Any
) -> None:
    queues = "".join(f"  - q{i}\n" for i in range(100_000))
    text = f"kind: EmailScript\nname: big\nqueues:\n{queues}"[:1_000_000] + "\nbogus: 1\n"
    (workdir / "channels.d" / "big.yaml").write_text(text)
    started = time.monotonic()
    result = cli("validate")
    assert time.monotonic() - started < 1.0
    assert _errors(result.out) == [
        "channels.d/big.yaml:1:1: error: document has more than 20,000 values; "
        "split it into several files"
    ]
    shutil.copy(BAD / "33-alias-bomb.yaml", workdir / "channels.d" / "big.yaml")
    assert "(alias bomb?)" in cli("validate").out


def test_hidden_characters_in_messages_are_shown_escaped(workdir: Path, cli: Any) -> None:
    (workdir / "channels.d" / "odd\u202e.yaml").write_text('kind: "Email\u202eScript"\nname: x\n')
    result = cli("validate")
    assert "\u202e" not in result.out
    assert _errors(result.out) == [
        "channels.d/odd\\u202E.yaml:1:7: error: unknown kind 'Email\\u202EScript' (did you "
        "mean 'EmailScript'?); one of EmailChannel, SmtpServer, EmailScript, Agent"
    ]


def test_the_model_refuses_hidden_characters_like_the_schema() -> None:
    from jsonschema import Draft202012Validator
    from pydantic import ValidationError

    from channelsync import kinds
    from channelsync.document import is_valid, kind_schema

    slow = Draft202012Validator(kind_schema("EmailScript"))
    invisible = "\u200b\u200c\u200d\u200e\u200f\u061c\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad"
    for name in (
        "Sales\u202e",
        "Sa\x1bles",
        "\u2066Sales",
        "   ",
        *(f"Sa{c}les" for c in invisible),
    ):
        doc = {"kind": "EmailScript", "name": name}
        assert not is_valid("EmailScript", doc), repr(name)
        assert not slow.is_valid(doc), repr(name)
        with pytest.raises(ValidationError):
            kinds.get("EmailScript").model_class().model_validate(doc)
    assert is_valid("EmailScript", {"kind": "EmailScript", "name": "Ventes é 東京"})


def test_examples_still_load_on_the_fast_path() -> None:
    config = load_config(EXAMPLES)
    assert not config.errors


MULTI = """# comments before the first document
---
kind: EmailScript
name: First
---
kind: EmailScript
name: Second
queuez: [a]
---
# a comment inside
kind: SmtpServer
name: "Relay\\ud800"
host: smtp.example.com
port: 70000
---
kind: EmailScript
name: First
"""


def test_documents_re_read_one_at_a_time_report_as_the_whole_file_does(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channelsync import yamlsource

    (workdir / "channels.d" / "multi.yaml").write_text(MULTI * 300)  # > 64 KiB: read_source
    (workdir / "channels.d" / "small.yaml").write_text(MULTI)  # the loader's own fast path
    one_at_a_time = load_config(workdir / "channels.d")
    monkeypatch.setattr(yamlsource, "_parse_fast", lambda text: None)
    whole = load_config(workdir / "channels.d")
    assert one_at_a_time.diagnostics == whole.diagnostics
    small = [str(d) for d in whole.errors if d.file.endswith("small.yaml")]
    assert small == [
        "channels.d/small.yaml:4:7: error: duplicate EmailScript name 'First' "
        "(first defined at channels.d/multi.yaml:4:7)",
        "channels.d/small.yaml:8:1: error: unknown field 'queuez' (did you mean 'queues'?)",
        "channels.d/small.yaml:12:7: error: text holds a lone surrogate (\\uD800-\\uDFFF)",
        "channels.d/small.yaml:14:7: error: port: port 70000 is outside 1-65535",
        "channels.d/small.yaml:17:7: error: duplicate EmailScript name 'First' "
        "(first defined at channels.d/multi.yaml:4:7)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: EmailScript\nname: A\nqueues: [a\x85b]\n", None),  # YAML folds NEL: 'a b'
        (
            "kind: EmailScript\nname: A\n---\n  name: B\n  queues: []\n",
            "channels.d/x.yaml:4:3: error: missing 'kind'; one of EmailChannel, SmtpServer, "
            "EmailScript, Agent",
        ),
        ("\ufeff\ufeffkind: EmailScript\nname: A\n", None),  # not a key named '\ufeffkind'
        (
            "...\nkind: EmailScript\nname: A\n",
            "channels.d/x.yaml:1:1: error: YAML syntax error: expected the node content, "
            "but found '<document end>'",
        ),
        (
            "kind: EmailChanel\nname: A\nx:\n" + "".join(" " * i + "- \n" for i in range(36)),
            "channels.d/x.yaml:35:32: error: nesting deeper than 32 levels",  # and nothing else
        ),
        (
            "kind: EmailScript\r# a lone CR breaks a line\nname: A\n"
            '---\nkind: EmailScript\nname: "B\\u202e"\n',
            "channels.d/x.yaml:6:7: error: name: contains a bidirectional override (U+202E) at "
            "character 2; remove it: it hides or reorders text in terminals, plans and pull "
            "request comments",
        ),
    ],
    ids=[
        "next-line-breaks-a-line",
        "indented-document",
        "second-bom",
        "leading-document-end",
        "refused-document",
        "lone-carriage-return",
    ],
)
def test_fast_path_reports_what_the_careful_path_does(
    text: str, expected: str | None, workdir: Path, cli: Any
) -> None:
    (workdir / "channels.d" / "x.yaml").write_text(text, encoding="utf-8", newline="")
    assert _errors(cli("validate").out) == ([expected] if expected else [])


def test_many_bad_documents_find_the_document_starts_once(
    workdir: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channelsync import yamlsource

    calls: list[int] = []
    real = yamlsource._document_starts

    def counted(text: str) -> list[int]:
        calls.append(len(text))
        return real(text)

    monkeypatch.setattr(yamlsource, "_document_starts", counted)
    bad = "".join(
        f"---\nkind: EmailScript\nname: s{i}\nqueues: [a]\nbogus: 1\n" for i in range(1_500)
    )
    (workdir / "channels.d" / "many.yaml").write_text("# notes\n" + bad)  # > 64 KiB
    errors = _errors(cli("validate").out)
    assert len(errors) == 1_500
    assert errors[0] == (
        "channels.d/many.yaml:6:1: error: unknown field 'bogus'; allowed: kind, name, "
        "renamed_from, queues"
    )
    assert errors[-1].startswith("channels.d/many.yaml:7501:1: ")
    assert len(calls) == 2  # the fast parse's check, then once for every document's lines


def test_document_over_the_value_limit_is_refused_before_the_rest_is_composed(
    workdir: Path, cli: Any
) -> None:
    values = "".join(f"- &a{i} v\n" for i in range(20_001))
    # the syntax error after the limit is never reached: composing stopped there
    text = f"---\nkind: EmailScript\nname: big\nqueues:\n{values}- [unclosed\n"
    (workdir / "channels.d" / "big.yaml").write_text(text)
    assert _errors(cli("validate").out) == [
        "channels.d/big.yaml:2:1: error: document has more than 20,000 values; "
        "split it into several files"
    ]
