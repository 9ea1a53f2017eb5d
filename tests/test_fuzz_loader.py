"""Fuzzing the loader: hostile and broken config files never crash `validate`.

Mutations of the shipped examples and the bad-file corpus (bytes, aliases, merge keys, tags,
directives, deep nesting, encodings and BOMs, hidden characters), some beside FIFOs, devices
and symlinks. Every case runs `validate --format json` in-process (fast) and must exit 0 or
1 with a JSON report on stdout and no traceback; a few run as whole processes too.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from channelsync.cli import main
from tests.conftest import CORPUS, EXAMPLES

CASES = 2000
SEEDS = [p.read_bytes() for p in sorted((CORPUS / "bad").glob("*.yaml"))] + [
    p.read_bytes() for p in sorted(EXAMPLES.glob("*.yaml"))
]

Mutation = Callable[[random.Random, bytes], bytes]


def _at_line(rng: random.Random, data: bytes, insert: bytes) -> bytes:
    """``insert`` at the start of a random line."""
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A]
    at = rng.choice(starts)
    return data[:at] + insert + data[at:]


def _bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    alphabet = b" \t\r\n:-[]{}&*!|>'\"#%@`,?\\\x00\x85\xff"
    for _ in range(rng.randint(1, 6)):
        if not out:
            break
        at = rng.randrange(len(out))
        choice = rng.random()
        if choice < 0.4:
            out[at] = rng.choice(alphabet)
        elif choice < 0.7:
            del out[at : at + rng.randint(1, 8)]
        else:
            out[at:at] = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
    return bytes(out)


def _alias(rng: random.Random, data: bytes) -> bytes:
    snippets = [
        b"x: &a [*a]\n",
        b"x: &a {k: *a}\n",
        b"x: &a\n  <<: *a\n",
        b"x: &a\n  y: &b\n    <<: [*a, *b]\n",
        b"x: *undefined\n",
        b"a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
        b"a1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]\n"
        b"a2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]\n"
        b"a3: &a3 [*a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2]\n"
        b"a4: [*a3, *a3, *a3, *a3, *a3]\n",
        b"".join(b"l%d: &l%d [*l%d]\n" % (i, i, i - 1) for i in range(1, 60)),
        b"queues: &q [a, *q]\n",
        b"&k name: *k\n",
        b"<<: {kind: EmailScript}\n",
        b"<<: 5\n",
    ]
    return _at_line(rng, data, rng.choice(snippets))


def _tag(rng: random.Random, data: bytes) -> bytes:
    tags = [
        b"!!str ",
        b"!!int ",
        b"!!float ",
        b"!!bool ",
        b"!!null ",
        b"!!binary ",
        b"!!set ",
        b"!!omap ",
        b"!!python/object:os.system ",
        b"!custom ",
        b"!<tag:yaml.org,2002:str> ",
        b"!e! ",
        b"!!timestamp ",
    ]
    colons = [i + 2 for i in range(len(data) - 1) if data[i : i + 2] == b": "]
    if not colons:
        return data + b"\nx: " + rng.choice(tags) + b"1\n"
    at = rng.choice(colons)
    return data[:at] + rng.choice(tags) + data[at:]


def _directive(rng: random.Random, data: bytes) -> bytes:
    directives = [
        b"%YAML 1.3\n---\n",
        b"%YAML 1.0\n---\n",
        b"%YAML 1.1\n---\n",
        b"%YAML 2.0\n---\n",
        b"%YAML 1.2\n%YAML 1.2\n---\n",
        b"%YAML 1.99999999999999999999\n---\n",
        b"%YAML\n---\n",
        b"%TAG ! tag:example.com,2000:\n---\n",
        b"%TAG !e! tag:e,2000:\n---\n",
        b"%FOO bar\n---\n",
        b"---\n...\n",
        b"...\n",
        b"--- !!map\n",
    ]
    return rng.choice(directives) + data if rng.random() < 0.7 else data + rng.choice(directives)


def _deep(rng: random.Random, data: bytes) -> bytes:
    n = rng.choice([33, 300, 5000, 100_000])
    shapes = [
        b"queues: " + b"[" * n + b"]" * n + b"\n",
        b"queues: " + b"[" * n + b"\n",
        b"x: " + b"{a: " * n + b"1" + b"}" * n + b"\n",
        b"queues:\n  " + b"- " * n + b"x\n",
        b"x: " + b"? " * n + b"x\n",
        b"x:\n" + b"".join(b" " * i + b"- \n" for i in range(0, min(n, 3000), 1)),
        b"x: " + b"[{" * (n // 2) + b"\n",
    ]
    return _at_line(rng, data, rng.choice(shapes))


def _encoding(rng: random.Random, data: bytes) -> bytes:
    text = data.decode("utf-8", "replace")
    choice = rng.randrange(9)
    if choice == 0:
        return b"\xef\xbb\xbf" + data
    if choice == 1:
        return b"\xef\xbb\xbf\xef\xbb\xbf" + data
    if choice == 2:
        return text.encode("utf-16")
    if choice == 3:
        return text.encode("utf-16-le")
    if choice == 4:
        return text.encode("utf-32")
    if choice == 5:
        return text.encode("latin-1", "replace") + b"\xe9\n"
    if choice == 6:
        return data.replace(b"\n", b"\r\n")
    if choice == 7:
        return data.replace(b"\n", b"\r")
    return data[: len(data) // 2] + b"\xed\xa0\x80" + data[len(data) // 2 :]


def _hidden(rng: random.Random, data: bytes) -> bytes:
    chars = ["\u202e", "\u2066", "\u2069", "\u200b", "\x1b[31m", "\x07", "\u0085", "\ufeff"]
    escapes = [b'"\\u202e"', b'"\\x07"', b'"\\ud800"', b'"\\U0010ffff"', b'"\\0"', b'"\\e"']
    if rng.random() < 0.5:
        return _bytes_at(rng, data, rng.choice(chars).encode("utf-8"))
    colons = [i + 2 for i in range(len(data) - 1) if data[i : i + 2] == b": "]
    if not colons:
        return data
    at = rng.choice(colons)
    end = data.find(b"\n", at)
    end = len(data) if end < 0 else end
    return data[:at] + rng.choice(escapes) + data[end:]


def _bytes_at(rng: random.Random, data: bytes, insert: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + insert + data[at:]


def _structure(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    choice = rng.randrange(5)
    if choice == 0 and len(lines) > 1:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif choice == 1:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif choice == 2:
        i = rng.randrange(len(lines))
        lines[i] = b"  " * rng.randint(1, 30) + lines[i]
    elif choice == 3:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice([b"---", b"...", b"--- |", b"? "]))
    else:
        other = rng.choice(SEEDS)
        return data + b"\n---\n" + other
    return b"\n".join(lines)


MUTATIONS: list[Mutation] = [
    _bytes,
    _alias,
    _tag,
    _directive,
    _deep,
    _encoding,
    _hidden,
    _structure,
]


def _special(rng: random.Random, folder: Path) -> None:
    """Now and then, something beside the file that is not a regular file."""
    choice = rng.randrange(8)
    if choice == 0:
        os.mkfifo(folder / "pipe.yaml")
    elif choice == 1:
        (folder / "zero.yaml").symlink_to("/dev/zero")
    elif choice == 2:
        (folder / "dangling.yml").symlink_to(folder / "nowhere")
    elif choice == 3:
        (folder / "loop.yaml").symlink_to(folder / "loop.yaml")
    elif choice == 4:
        (folder / "folder.yaml").mkdir()
    elif choice == 5:
        (folder / "link").symlink_to(folder.parent)
    elif choice == 6:
        (folder / "stdin.yaml").symlink_to("/dev/stdin")
    else:
        (folder / "SHOUT.YAML").write_bytes(rng.choice(SEEDS))


def _case(rng: random.Random) -> bytes:
    data = rng.choice(SEEDS)
    for _ in range(rng.choice([1, 1, 2, 3])):
        data = rng.choice(MUTATIONS)(rng, data)
    return data


def _clear(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            entry.rmdir()
        else:
            entry.unlink()


@pytest.mark.timeout(120)
def test_mutated_configs_never_crash_validate(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(2026_12)
    folder = workdir / "channels.d"
    started = time.monotonic()
    for number in range(CASES):
        _clear(folder)
        data = _case(rng)
        (folder / "fuzz.yaml").write_bytes(data)
        if rng.random() < 0.1:
            _special(rng, folder)
        code = main(["validate", "--format", "json"])
        out, err = capsys.readouterr()
        context = f"case {number}: {data[:300]!r}"
        assert code in (0, 1), context
        assert "Traceback" not in err and "internal error" not in err, context
        report = json.loads(out)
        assert report["valid"] is (code == 0), context
        for problem in report["errors"] + report["warnings"]:
            assert problem["line"] >= 1 and problem["column"] >= 1, context
    assert time.monotonic() - started < 60


WHOLE_PROCESS = [
    b"x: &a [*a]\n",
    b"%YAML 1.3\n---\nkind: EmailScript\nname: a\n",
    b"kind: EmailScript\nname: a\nqueues:\n  " + b"- " * 100_000 + b"x\n",
    b"kind: EmailScript\nname: a\nqueues: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    b"\xff\xfek\x00i\x00n\x00d\x00",
]


@pytest.mark.parametrize("data", WHOLE_PROCESS, ids=range(len(WHOLE_PROCESS)))
def test_hostile_configs_in_a_whole_process(data: bytes, workdir: Path) -> None:
    folder = workdir / "channels.d"
    (folder / "hostile.yaml").write_bytes(data)
    os.mkfifo(folder / "pipe.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "channelsync", "validate", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    report = json.loads(result.stdout)
    assert [e["file"] for e in report["errors"]] == [
        "channels.d/hostile.yaml",
        "channels.d/pipe.yaml",
    ]


def test_fast_and_careful_paths_agree_on_mutated_configs(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channelsync import yamlsource
    from channelsync.loader import load_config

    rng = random.Random(5)
    folder = workdir / "channels.d"
    fast_parser = yamlsource._parse_fast
    for number in range(300):
        _clear(folder)
        data = _case(rng)
        (folder / "fuzz.yaml").write_bytes(data)
        monkeypatch.setattr(yamlsource, "_parse_fast", fast_parser)
        fast = load_config(folder)
        monkeypatch.setattr(yamlsource, "_parse_fast", lambda text: None)
        careful = load_config(folder)
        assert fast.diagnostics == careful.diagnostics, f"case {number}: {data[:300]!r}"
