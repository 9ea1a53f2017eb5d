"""Secrets come from pluggable sources, found by name, and are read at most once per run."""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channelsync import secrets
from channelsync.bindings import NOT_BOUND, load
from channelsync.loader import load_config
from channelsync.probe.runner import checks_for, run_checks
from channelsync.secrets import ENTRY_POINT_GROUP, Resolver, SecretRef, SecretUnavailable
from tests import secret_plugin
from tests.entry_points import register
from tests.http.conftest import Server
from tests.mailservers import PASSWORD, MailServers
from tests.probe.conftest import channel, write
from tests.probe.test_secret_bindings import bindings_file

SRC = Path(__file__).resolve().parents[2] / "src" / "channelsync"


@pytest.fixture
def counting_source(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What installing a package declaring ``count = "tests.secret_plugin:CountingSource"``
    in the ``channelsync.secrets`` entry points does, without installing one."""
    register(monkeypatch, ENTRY_POINT_GROUP, "count", "tests.secret_plugin:CountingSource")
    secrets.reload_sources()
    secret_plugin.VALUES.clear()
    secret_plugin.READS.clear()
    yield
    secrets.reload_sources()


@pytest.fixture
def tenant_dir(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(config_dir.parent)
    return config_dir


@pytest.fixture
def http_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    (tmp_path / "server").mkdir()
    served = Server(tmp_path / "server")
    served.start()
    monkeypatch.setenv("CHANNELSYNC_TOKEN", served.write_token)
    try:
        yield served
    finally:
        served.stop()


def _imaps(mail: MailServers, password: str) -> dict[str, Any]:
    return {**channel("imap-ssl", mail.ports["imaps"], password=password), "enabled": True}


def test_builtin_sources_register_through_the_entry_point_group() -> None:
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert {k: found.get(k) for k in secrets.BUILTIN_SOURCES} == secrets.BUILTIN_SOURCES


def test_a_plan_over_http_an_apply_and_its_gate_read_each_secret_once(
    counting_source: None,
    mail: MailServers,
    http_server: Server,
    tenant_dir: Path,
    mail_ca: Path,
    cli: Any,
) -> None:
    secret_plugin.VALUES["mailbox"] = PASSWORD
    write(tenant_dir, _imaps(mail, "${count:mailbox}"))
    target = ("--target", http_server.url, "--dir", "channels.d")
    result = cli("apply", *target, "--auto-approve")
    assert result.code == 0, result.err
    assert "Apply complete: 1 created." in result.out
    assert "connection tests: 1 passed" in result.err
    # the plan fingerprints it (the remote target's batch, then the comparison), apply sends
    # it, the gate logs in with it: one read
    assert secret_plugin.READS == {"mailbox": 1}
    assert PASSWORD not in result.out + result.err
    secret_plugin.READS.clear()
    again = cli("plan", *target, "--detailed-exitcode")
    assert again.code == 0, again.out + again.err  # the plugin's secret converges
    assert secret_plugin.READS == {"mailbox": 1}


def test_an_unreadable_plugin_secret_names_the_source_hint(
    counting_source: None, mail: MailServers, tenant_dir: Path, mail_ca: Path, cli: Any
) -> None:
    write(tenant_dir, _imaps(mail, "${count:missing}"))
    result = cli("test", "--dir", "channels.d")
    assert result.code == 1
    assert "incoming.password ${count:missing}: counted secret missing is not set" in result.out
    assert "put missing in the counting source" in result.out
    assert secret_plugin.READS == {"missing": 1}


def test_a_binding_matches_a_plugin_reference_before_its_value_is_read(
    counting_source: None, mail: MailServers, config_dir: Path, mail_ca: Path
) -> None:
    secret_plugin.VALUES["mailbox"] = PASSWORD
    write(config_dir, _imaps(mail, "${count:mailbox}"))
    config = load_config(config_dir)
    assert not config.errors, [str(d) for d in config.errors]
    elsewhere = bindings_file(config_dir.parent, ("${count:mailbox}", ["imap.example.com:993"]))
    bound = load(elsewhere, config_dir.parent)
    [refused] = run_checks(checks_for(config.resources), timeout=5, bindings=bound)
    assert refused.error is not None and refused.error.code == NOT_BOUND
    assert secret_plugin.READS == {}  # refused before the value was read
    endpoint = f"localhost:{mail.ports['imaps']}"
    right = bindings_file(config_dir.parent, ("${count:mailbox}", [endpoint]))
    [passed] = run_checks(
        checks_for(config.resources), timeout=5, bindings=load(right, config_dir.parent)
    )
    assert passed.ok, passed.error
    assert secret_plugin.READS == {"mailbox": 1}


def _relay(config_dir: Path, reference: str) -> None:
    (config_dir / "c.yaml").write_text(
        f"kind: SmtpServer\nname: Relay\nhost: smtp.example.com\nuser: relay\n"
        f"password: {reference}\n"
    )


def test_validate_names_an_unknown_source_with_its_position_and_a_guess(
    counting_source: None, config_dir: Path, cli: Any
) -> None:
    _relay(config_dir, "${cuont:relay}")
    result = cli("validate", "--dir", str(config_dir))
    assert result.code == 1
    assert (
        f"{config_dir / 'c.yaml'}:5:11: error: password: unknown secret source 'cuont'; "
        "did you mean ${count:relay}?"
    ) in result.out
    _relay(config_dir, "${vault:relay}")
    result = cli("validate", "--dir", str(config_dir))
    assert "unknown secret source 'vault'; installed sources: count, env, file" in result.out
    _relay(config_dir, "${count:relay}")
    assert cli("validate", "--dir", str(config_dir)).code == 0


def test_a_misspelt_builtin_source_gets_a_guess(config_dir: Path, cli: Any) -> None:
    _relay(config_dir, "${fiel:relay.txt}")
    result = cli("validate", "--dir", str(config_dir))
    assert result.code == 1
    assert (
        "5:11: error: password: unknown secret source 'fiel'; did you mean ${file:relay.txt}?"
    ) in result.out


def test_the_resolver_reads_a_secret_once_across_threads_and_remembers_failures(
    counting_source: None,
) -> None:
    secret_plugin.VALUES["shared"] = "s3cret"
    resolver = Resolver()
    ref = SecretRef("count", "shared")
    threads = [threading.Thread(target=resolver.resolve, args=(ref,)) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert resolver.resolve(ref) == "s3cret"
    missing = SecretRef("count", "missing")
    for _ in range(3):
        with pytest.raises(SecretUnavailable, match=r"^counted secret missing is not set$"):
            resolver.resolve(missing)
    assert secret_plugin.READS == {"shared": 1, "missing": 1}
    assert Resolver().resolve(ref) == "s3cret"  # a new run reads again
    assert secret_plugin.READS["shared"] == 2


def test_a_secret_file_is_read_once_however_it_is_spelt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "pw.txt").write_text("filed\n")
    opened: list[str] = []
    real_open = secrets.os.open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(secrets.os, "open", counting_open)
    resolver = Resolver(confine_to=tmp_path)
    assert resolver.resolve(SecretRef("file", "pw.txt"), tmp_path) == "filed"
    assert resolver.resolve(SecretRef("file", "../pw.txt"), tmp_path / "sub") == "filed"
    assert resolver.resolve(SecretRef("file", str(tmp_path / "pw.txt"))) == "filed"
    assert opened == [str(tmp_path / "pw.txt")]


def test_only_the_file_source_knows_what_a_file_reference_is() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "secret_sources.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if 'source == "file"' in line or 'source != "file"' in line or "file_path(" in line
    ]
    assert offenders == []


def test_a_failing_plugin_is_an_unreadable_secret_without_its_words(
    counting_source: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any, name: str, context: Any) -> str:
        raise RuntimeError("vault said: token s3cret-token expired")

    monkeypatch.setattr(secret_plugin.CountingSource, "read", broken)
    with pytest.raises(SecretUnavailable) as caught:
        Resolver().resolve(SecretRef("count", "relay"))
    assert str(caught.value) == "counted secret relay cannot be read (RuntimeError)"
