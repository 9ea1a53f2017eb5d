"""The fast YAML path (yaml-rs) must accept and reject exactly what ruamel.yaml does."""

from __future__ import annotations

from pathlib import Path

import pytest

from channelsync import yamlsource
from channelsync.yamlsource import SourceFile, read_source
from tests.conftest import CORPUS, EXAMPLES

FILES = sorted(CORPUS.glob("bad/*.yaml")) + sorted(EXAMPLES.glob("*.yaml"))

# Documents that are valid YAML but differ between YAML versions or parsers.
TRICKY = {
    "numbers.yaml": "a: 017\nb: 0o17\nc: 1_000\nd: 1e3\ne: 0x1F\nf: +5\ng: -3\nh: .inf\n",
    "bools.yaml": "a: yes\nb: on\nc: True\nd: FALSE\ne: ~\nf: null\ng: ''\n",
    "dates.yaml": "a: 2024-01-01\nb: 2024-01-01T10:00:00Z\n",
    "strings.yaml": "a: 'x: y'\nb: \"\\u00e9\"\nc: |\n  two\n  lines\nd: >-\n  folded\n",
    "flow.yaml": "a: {b: [1, 2], c: {d: e}}\n",
    "keys.yaml": "1: a\ntrue: b\nnull: c\n",
    "dupe.yaml": "a: 1\nb: 2\na: 3\n",
    "multi.yaml": "a: 1\n---\nb: 2\n",
    "list.yaml": "- a: 1\n- b: 2\n",
    "control.yaml": "a: b\x00c\n",
    "c1.yaml": "a: b\x85c\x9fd\n",
    "python-tag.yaml": "kind: !!python/object:os.system EmailScript\n",
    "binary-tag.yaml": "name: !!binary aGVsbG8=\n",
    "collection-tag.yaml": "a: !!set {b: null}\nc: !list [d]\n",
    "core-tags.yaml": "a: !!str 1\nb: !!int '2'\nc: ! x\nd: !!map {e: !!seq [f]}\n",
}


def _both(path: Path) -> tuple[SourceFile, SourceFile]:
    fast = read_source(str(path), path.name)
    slow = SourceFile(str(path), path.name, text=fast.text)
    if fast.text or not fast.problems:
        yamlsource._parse_precise(slow)
    else:
        slow.problems = list(fast.problems)
    return fast, slow


def _outcome(src: SourceFile) -> object:
    if src.problems or not all(_text_keys(d.data) for d in src.documents):
        # keys that are not text are refused in validation (see the loader-level test)
        return "rejected"
    return [d.data for d in src.documents]


def _text_keys(data: object) -> bool:
    if isinstance(data, dict):
        return all(isinstance(k, str) and _text_keys(v) for k, v in data.items())
    if isinstance(data, list):
        return all(_text_keys(v) for v in data)
    return True


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_fast_and_precise_parsers_agree_on_corpus(path: Path) -> None:
    fast, slow = _both(path)
    assert _outcome(fast) == _outcome(slow)


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_fast_and_precise_parsers_agree_on_tricky_yaml(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(TRICKY[name])
    fast, slow = _both(path)
    assert _outcome(fast) == _outcome(slow)


def test_fast_path_is_taken_for_ordinary_files() -> None:
    src = read_source(str(EXAMPLES / "contoso-exchange.yaml"), "x")
    assert not src.precise


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_validate_reports_the_same_with_and_without_the_fast_path(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channelsync.loader import load_config

    folder = tmp_path / "channels.d"
    folder.mkdir()
    (folder / path.name).write_bytes(path.read_bytes())
    monkeypatch.chdir(tmp_path)
    fast = load_config(folder)
    monkeypatch.setattr(yamlsource, "_parse_fast", lambda text: None)
    slow = load_config(folder)
    assert fast.diagnostics == slow.diagnostics
    assert [r.data for r in fast.resources] == [r.data for r in slow.resources]


def test_tags_outside_the_yaml_core_schema_are_positioned_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channelsync.loader import load_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "channels.d").mkdir()
    (tmp_path / "channels.d" / "x.yaml").write_text(
        "kind: !!python/object:os.system EmailScript\n"
        "name: !!binary aGVsbG8=\n"
        "queues: !list [A]\n"
        "---\n"
        "kind: !!str EmailScript\n"
        "name: !!set {B: null}\n"
    )
    assert [str(d) for d in load_config(tmp_path / "channels.d").errors][:4] == [
        "channels.d/x.yaml:1:7: error: YAML tag '!!python/object:os.system' is not supported; "
        "remove it",
        "channels.d/x.yaml:2:7: error: YAML tag '!!binary' is not supported; remove it",
        "channels.d/x.yaml:3:9: error: YAML tag '!list' is not supported; remove it",
        "channels.d/x.yaml:6:7: error: YAML tag '!!set' is not supported; remove it",
    ]
