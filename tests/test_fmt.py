"""``channelsync fmt``: one layout for the config files, comments kept, meaning never changed."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.queue_kind import queue_kind

__all__ = ["queue_kind"]  # the fixture

CORPUS = Path(__file__).parent / "corpus" / "bad"

SCRAMBLED = """\
# the support mailbox
name: Support   # shown to agents
incoming:
  password: ${env:SUPPORT_IMAP_PASSWORD}
  user: "support@example.com"
  protocol: 'imap-ssl'
  server: imap.example.com
enabled: true
kind: EmailChannel
email: support@example.com
script: Support Script
"""

CANONICAL = """\
# the support mailbox
kind: EmailChannel
name: Support   # shown to agents
email: support@example.com
script: Support Script
enabled: true
incoming:
  server: imap.example.com
  protocol: imap-ssl
  user: support@example.com
  password: ${env:SUPPORT_IMAP_PASSWORD}
"""


def test_fmt_puts_keys_in_schema_order_with_plain_quoting_and_keeps_comments(cli, workdir):
    path = workdir / "channels.d" / "support.yaml"
    path.write_text(SCRAMBLED)
    result = cli("fmt")
    assert (result.code, result.out, result.err) == (0, "formatted channels.d/support.yaml\n", "")
    assert path.read_text() == CANONICAL
    again = cli("fmt")
    assert (again.code, again.out, again.err) == (0, "", "")  # a second fmt changes nothing
    assert path.read_text() == CANONICAL


def test_fmt_keeps_each_comment_line_above_the_key_it_was_above(cli, workdir):
    path = workdir / "channels.d" / "relay.yaml"
    path.write_text(
        "kind: SmtpServer\n"
        "name: Relay   # the tenant's relay\n"
        "# who logs in\n"
        "password: ${env:RELAY_PASSWORD}\n"
        "\n"
        "# the account\n"
        "user: relay\n"
        "host: smtp.example.com\n"
    )
    assert cli("fmt").code == 0
    assert path.read_text() == (
        "kind: SmtpServer\n"
        "name: Relay   # the tenant's relay\n"
        "host: smtp.example.com\n"
        "\n"
        "# the account\n"
        "user: relay\n"
        "# who logs in\n"
        "password: ${env:RELAY_PASSWORD}\n"
    )


def test_fmt_check_lists_the_files_that_would_change_and_writes_nothing(cli, workdir):
    (workdir / "channels.d" / "a.yaml").write_text(SCRAMBLED)
    (workdir / "channels.d" / "b.yaml").write_text(CANONICAL)
    result = cli("fmt", "--check")
    assert result.code == 1
    assert result.out == "channels.d/a.yaml\n"
    assert result.err == ("error: 1 file(s) not in the canonical layout; run 'channelsync fmt'\n")
    assert (workdir / "channels.d" / "a.yaml").read_text() == SCRAMBLED
    assert cli("fmt").code == 0
    assert cli("fmt", "--check").code == 0


def test_fmt_takes_files_and_folders_and_writes_atomically(cli, workdir):
    path = workdir / "elsewhere.yaml"
    path.write_text(SCRAMBLED)
    path.chmod(0o640)
    inode = path.stat().st_ino
    assert cli("fmt", str(path)).out == f"formatted {path}\n"
    assert path.stat().st_ino != inode  # a new file renamed over the old one
    assert path.stat().st_mode & 0o777 == 0o640
    missing = cli("fmt", "nowhere.yaml")
    assert (missing.code, missing.err) == (
        1,
        "nowhere.yaml:1:1: error: does not exist; give a file or folder\n",
    )


def test_fmt_reports_a_syntax_error_with_its_position_and_leaves_the_file(cli, workdir):
    broken = workdir / "channels.d" / "broken.yaml"
    text = "kind: EmailScript\nname: x\nqueues: [a, b\nother: 1\n"
    broken.write_text(text)
    (workdir / "channels.d" / "fine.yaml").write_text(SCRAMBLED)
    result = cli("fmt")
    assert result.code == 1
    assert result.err.startswith("channels.d/broken.yaml:4:6: error: YAML syntax error: ")
    assert result.out == "formatted channels.d/fine.yaml\n"  # the other files are formatted
    assert broken.read_text() == text


def test_fmt_refuses_fifos_and_does_not_follow_links(cli, workdir):
    folder = workdir / "channels.d"
    os.mkfifo(folder / "pipe.yaml")
    (workdir / "real.yaml").write_text(SCRAMBLED)
    (folder / "link.yaml").symlink_to(workdir / "real.yaml")
    result = cli("fmt")
    assert result.code == 1
    assert result.err == (
        "channels.d/link.yaml:1:1: warning: is a symbolic link: not formatted (fmt formats "
        "the file it points to on its own)\n"
        "channels.d/pipe.yaml:1:1: error: is a FIFO (named pipe), not a regular file; only "
        "regular files are read\n"
    )
    assert (workdir / "real.yaml").read_text() == SCRAMBLED


def test_fmt_leaves_invisible_characters_escaped(cli, workdir):
    path = workdir / "channels.d" / "hidden.yaml"
    text = 'queues: [Support]\nkind: EmailScript\nname: "Sales\\u202e"\n'
    path.write_text(text)
    result = cli("fmt")
    assert (result.code, result.err) == (
        0,
        "channels.d/hidden.yaml:1:1: warning: not formatted: it has invisible characters "
        "written as escapes (kept so)\n",
    )
    assert path.read_text() == text


def test_fmt_orders_a_registered_kind_by_its_model(cli, workdir, queue_kind):
    path = workdir / "channels.d" / "queue.yaml"
    path.write_text("max_wait_minutes: 5\nscript: S\nname: Q\nkind: EmailQueue\n")
    assert cli("fmt").code == 0
    assert path.read_text() == "kind: EmailQueue\nname: Q\nscript: S\nmax_wait_minutes: 5\n"


def _plan(cli) -> str:
    """The JSON plan against an empty tenant, positions left out (keys move, lines with them)."""
    result = cli("plan", "--format", "json")
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    plan["warnings"] = sorted(re.sub(r"\.yaml:\d+:\d+:", ".yaml:", w) for w in plan["warnings"])
    return json.dumps(plan)


def _clean_fixtures() -> list[str]:
    """The corpus files the loader reads without an error (fmt refuses the others)."""
    import tempfile

    from channelsync.loader import load_config

    clean = []
    for path in sorted(CORPUS.glob("*.y*ml")):
        with tempfile.TemporaryDirectory() as folder:
            shutil.copy(path, folder)
            if not load_config(Path(folder)).errors:
                clean.append(path.name)
    return clean


@pytest.mark.parametrize("source", ["examples", "tenant", *_clean_fixtures()])
def test_fmt_never_changes_the_plan(cli, workdir, source, monkeypatch):
    """Every example, the shared test tenant's config and every corpus file that loads
    cleanly: scrambled key order first (fmt's real work), then formatted; the plan is the
    same before and after, and a second fmt changes nothing."""
    from tests.tenant_config import BASE, SECRETS, write

    folder = workdir / "channels.d"
    if source == "examples":
        shutil.rmtree(folder)
        shutil.copytree(EXAMPLES, folder)
    elif source == "tenant":
        for key, value in SECRETS.items():
            monkeypatch.setenv(key, value)
        write(workdir, BASE)
    else:
        shutil.copy(CORPUS / source, folder)
    _reverse_keys(folder)
    before = _plan(cli)
    assert cli("fmt").code == 0
    assert _plan(cli) == before
    assert cli("fmt", "--check").code == 0
    if source == "examples":  # in the canonical layout already: restored byte for byte
        for path in EXAMPLES.rglob("*.yaml"):
            assert (folder / path.relative_to(EXAMPLES)).read_text() == path.read_text()


def _reverse_keys(folder: Path) -> None:
    """Each document's top-level keys in reverse order (comments kept by the round trip)."""
    import io

    from channelsync.yamlsource import round_trip

    yaml = round_trip(preserve_quotes=True)
    for path in folder.rglob("*.yaml"):
        docs = list(yaml.load_all(path.read_text()))
        for doc in docs:
            for key in reversed(list(doc)):
                doc.move_to_end(key)
        stream = io.StringIO()
        yaml.dump_all(docs, stream)
        path.write_text(stream.getvalue())


def _every_fixture() -> list[str]:
    """Every YAML file of the shipped examples and of the suite (the corpus, good and bad),
    and the init template's example, as paths relative to the repository root."""
    root = EXAMPLES.parent
    found = [*EXAMPLES.rglob("*.y*ml"), *(root / "tests").rglob("*.y*ml")]
    found += (root / "src/channelsync/gitops/templates/channels.d").rglob("*.y*ml")
    return sorted(str(p.relative_to(root)) for p in found)


@pytest.mark.parametrize("fixture", _every_fixture())
def test_fmt_is_idempotent_over_every_example_and_fixture(cli, workdir, fixture):
    """The first fmt formats the file (or refuses it and leaves it as it was); a second
    changes nothing and --check passes."""
    path = workdir / "channels.d" / Path(fixture).name
    original = (EXAMPLES.parent / fixture).read_bytes()
    path.write_bytes(original)
    first = cli("fmt", str(path))
    if first.code != 0:
        assert path.read_bytes() == original, first.err
        assert first.err.startswith(str(path)), first.err
        return
    once = path.read_bytes()
    assert cli("fmt", str(path)).code == 0
    assert path.read_bytes() == once
    check = cli("fmt", "--check", str(path))
    assert (check.code, check.out) == (0, "")


def test_fmt_keeps_patches_and_variables_and_never_changes_an_environments_plan(
    cli, workdir, monkeypatch
):
    """An environment repository (tests/envrepo.py), its keys scrambled: fmt without PATH
    formats the folders of every environment; 'patch: true' and each ${var:...} stay as
    written; plan --all-envs is the same before and after; a second fmt changes nothing."""
    from tests import envrepo

    for key, value in envrepo.SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CHANNELSYNC_ENV", raising=False)
    envrepo.write(workdir)
    _reverse_keys(workdir / "channels.d")
    assert (workdir / "channels.d/prod/script.yaml").read_text().startswith("queues:")

    def plan() -> str:
        result = cli("plan", "--all-envs", "--format", "json")
        assert result.code == 0, result.err
        return re.sub(r"\.yaml:\d+:\d+:", ".yaml:", result.out)

    before = plan()
    formatted = cli("fmt")
    assert formatted.code == 0, formatted.err
    assert "formatted channels.d/prod/script.yaml\n" in formatted.out
    assert "formatted channels.d/staging/smoke.yaml\n" in formatted.out
    assert plan() == before
    assert (workdir / "channels.d/prod/script.yaml").read_text() == (
        "kind: EmailScript\nname: Support Script\npatch: true\nqueues: [Support, Escalations]\n"
    )
    support = (workdir / "channels.d/common/support.yaml").read_text()
    for reference in ("${var:enabled}", "${var:imap_host}", "${var:port}", "@${var:imap_host}"):
        assert reference in support
    assert cli("fmt", "--check").code == 0


def test_fmt_of_one_environment_formats_its_folders_only(cli, workdir, monkeypatch):
    from tests import envrepo

    monkeypatch.delenv("CHANNELSYNC_ENV", raising=False)
    envrepo.write(workdir)
    _reverse_keys(workdir / "channels.d")
    check = cli("fmt", "--check", "--env", "staging")
    assert check.code == 1
    assert check.out == (
        "channels.d/common/script.yaml\nchannels.d/common/support.yaml\n"
        "channels.d/staging/smoke.yaml\n"
    )


def test_the_environment_layout_init_writes_is_canonical(cli, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    assert cli("init", "repo", "--env", "staging", "--env", "prod").code == 0
    monkeypatch.chdir(workdir / "repo")
    check = cli("fmt", "--check")
    assert (check.code, check.out) == (0, "")


def _text_fixtures() -> dict[str, str]:
    """The config documents tests write from Python strings (the Agent documents among them)."""
    from tests import envrepo, tenant_config
    from tests.contract.test_contract import AGENTS
    from tests.http import conftest as served

    found = {f"envrepo:{name}": text for name, text in envrepo.FILES.items()}
    found.update({f"tenant_config:{name}": text for name, text in tenant_config.BASE.items()})
    found.update(
        {
            "contract.AGENTS": AGENTS,
            "http.SERVER": served.SERVER,
            "http.CHANNEL": served.CHANNEL.format(i=1),
        }
    )
    return found


@pytest.mark.parametrize("name", sorted(_text_fixtures()))
def test_fmt_is_idempotent_over_the_documents_tests_write(cli, workdir, name):
    text = _text_fixtures()[name]
    path = workdir / "channels.d" / "fixture.yaml"
    path.write_text(text)
    assert cli("fmt", str(path)).code == 0
    once = path.read_text()
    check = cli("fmt", "--check", str(path))
    assert (check.code, check.out, path.read_text()) == (0, "", once)
