from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from channelsync.cli import main
from tests.pgserver import pg_cluster, pg_url  # noqa: F401  (fixtures)
from tests.tenant_config import BASE, SECRETS, write

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "channels.d"
CORPUS = Path(__file__).resolve().parent / "corpus"


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> object:
    """Run the CLI in-process; returns exit code and captured output."""

    def run(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        _show_matches_plan(args, code, captured.out, capsys)
        return Result(code, captured.out, captured.err)

    return run


def _show_matches_plan(
    args: tuple[str, ...], code: int, out: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every plan the suite saves: 'show PLANFILE' renders it as the plan that saved it."""
    if not args or args[0] != "plan" or "--out" not in args or code not in (0, 2):
        return
    if "--check-connections" in args:  # the connection results are not part of the plan
        return
    planfile = args[args.index("--out") + 1]
    form = args[args.index("--format") + 1] if "--format" in args else "text"
    assert main(["show", planfile, "--format", form]) == 0
    shown = capsys.readouterr()
    expected = out
    if form == "text":  # the one line that is about saving
        expected = out[: out.rindex("Plan saved to ")]
    assert (shown.out, shown.err) == (expected, "")
    # and in every other format, as the same plan (not saved) renders in it
    rest = list(args)
    del rest[rest.index("--out") : rest.index("--out") + 2]
    if "--format" in rest:
        del rest[rest.index("--format") : rest.index("--format") + 2]
    for other in SHOW_FORMATS - {form}:
        planned = main([*rest, "--format", other])
        made = capsys.readouterr()
        assert main(["show", planfile, "--format", other]) == 0
        shown = capsys.readouterr()
        assert planned == code and (shown.out, shown.err) == (made.out, ""), other


SHOW_FORMATS = {"text", "json", "markdown", "runbook"}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory with a channels.d/ inside."""
    (tmp_path / "channels.d").mkdir()
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture
def examples(workdir: Path) -> Path:
    shutil.rmtree(workdir / "channels.d")
    shutil.copytree(EXAMPLES, workdir / "channels.d")
    return workdir / "channels.d"


@pytest.fixture
def tenant(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with the shared config and its secrets in the environment."""
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CHANNELSYNC_TARGET", raising=False)
    write(workdir, BASE)
    return workdir
