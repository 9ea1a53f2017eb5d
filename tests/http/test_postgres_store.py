"""The PostgreSQL store itself: migrations, refusals, a password never shown, the lock as a
lease row (no session lock), and the store's tenants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from channelsync.server import tokens
from channelsync.targets.base import LockInfo, Operation, TargetError
from channelsync.targets.postgresql import SCHEMA_VERSION, PostgresStore, redact
from channelsync.tenant import lease
from channelsync.tenant.repository import Row
from channelsync.tenant.rules import Tenant
from channelsync.tenant.sealing import Keys, Sealer
from tests.http.conftest import Server
from tests.pgserver import PASSWORD


@pytest.fixture
def served(tmp_path: Path) -> tuple[Path, Path]:
    """A tokens file and where the store's key goes."""
    tokens.add(tmp_path / "tokens.json", "ci", "write")
    return tmp_path / "tokens.json", tmp_path / "store.key"


def _serve(cli: Any, url: str, *args: str) -> Any:
    return cli("serve", "--store", url, *args)


def test_migrate_creates_the_schema_once_and_never_shows_the_password(
    cli: Any, pg_url: str
) -> None:
    first = _serve(cli, pg_url, "--migrate")
    assert first.code == 0, first.err
    assert first.err == f"channelsync serve: {redact(pg_url)}: schema applied migration(s) 1\n"
    assert ":***@127.0.0.1:" in first.err
    again = _serve(cli, pg_url, "--migrate")
    assert again.err == f"channelsync serve: {redact(pg_url)}: schema up to date\n"
    assert PASSWORD not in first.out + first.err + again.out + again.err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
        assert conn.execute("SELECT name FROM tenants").fetchall() == [("default",)]


def test_serve_without_the_schema_says_to_migrate(
    cli: Any, pg_url: str, served: tuple[Path, Path]
) -> None:
    tokens_file, key = served
    refused = _serve(cli, pg_url, "--tokens", str(tokens_file), "--key-file", str(key))
    assert refused.code == 1
    assert refused.err == (
        f"error: the store {redact(pg_url)} has no channelsync schema yet: run 'channelsync "
        "serve --store URL --migrate' first, or start with --migrate-on-start\n"
    )
    assert not key.exists()


def test_serve_refuses_a_schema_newer_than_it_knows(
    cli: Any, pg_url: str, served: tuple[Path, Path]
) -> None:
    assert _serve(cli, pg_url, "--migrate").code == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version VALUES (%s, 0)", (SCHEMA_VERSION + 1,))
    tokens_file, key = served
    newer = (
        f"the store {redact(pg_url)} has schema version {SCHEMA_VERSION + 1}, newer than this "
        f"channelsync knows ({SCHEMA_VERSION}): refusing to run; upgrade channelsync (every "
        "replica to the same release)"
    )
    refused = _serve(cli, pg_url, "--tokens", str(tokens_file), "--key-file", str(key))
    assert (refused.code, refused.err) == (1, f"error: {newer}\n")
    migrating = _serve(cli, pg_url, "--migrate")
    assert (migrating.code, migrating.err) == (1, f"error: {newer}\n")


def test_a_postgresql_store_needs_its_key_file(cli: Any, pg_url: str) -> None:
    refused = _serve(cli, pg_url, "--migrate-on-start")
    assert refused.code == 1
    assert refused.err == (
        "error: a postgresql:// store needs --key-file FILE: the key that seals its secrets "
        "(every replica uses a copy of the same file; it is made on first use)\n"
    )


def test_a_wrong_password_is_one_line_without_the_password(
    cli: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = pg_url.replace(PASSWORD, "Wr0ng-s3cret-pw")
    monkeypatch.setenv("CHANNELSYNC_STORE", wrong)
    refused = cli("serve", "--migrate")
    assert refused.code == 1
    assert refused.err.startswith(f"error: PostgreSQL store {redact(wrong)}: connection failed")
    assert 'password authentication failed for user "channelsync"' in refused.err
    assert "Wr0ng-s3cret-pw" not in refused.err and refused.err.count("\n") == 1


def test_store_and_target_together_are_a_usage_error(cli: Any, pg_url: str) -> None:
    refused = cli("serve", "--store", pg_url, "--target", "sqlite:///t.db", "--migrate")
    assert (refused.code, refused.err) == (
        1,
        "error: --store and --target both name the store to serve; give one\n",
    )


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_the_start_line_shows_the_store_without_its_password(server: Server) -> None:
    log = server.log.read_text()
    assert f"channelsync serve: {redact(str(server.database))} on " in log
    assert PASSWORD not in log


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_the_apply_lock_is_a_lease_row_not_a_session_lock(server: Server) -> None:
    from channelsync.targets.http import HttpTarget

    target = HttpTarget(server.url, token=server.write_token)
    try:
        with target.lock(LockInfo("apply-7", "ci-runner-3", 4242, "2026-01-01T00:00:00Z"), 5):
            assert server.query("SELECT holder, host, pid FROM apply_lock") == [
                ("apply-7", "ci-runner-3", 4242)
            ]
            assert server.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [
                (0,)
            ]
            idle = "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
            assert server.query(idle) == [(0,)]  # no transaction is held open for it
        assert server.query("SELECT count(*) FROM apply_lock") == [(0,)]
    finally:
        target.close()


@pytest.fixture
def store(pg_url: str) -> Any:
    opened = PostgresStore(pg_url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


def _tenant(store: PostgresStore, name: str, key: Path) -> Tenant:
    repo = store.repository(name)
    return Tenant(repo, Sealer(Keys.open(key, repo, readonly=False)))


def test_tenants_are_listed_added_and_removed_with_all_their_rows(
    store: PostgresStore, tmp_path: Path
) -> None:
    store.tenants.add("acme", None)
    assert store.tenants.names() == ["acme", "default"]
    with pytest.raises(
        TargetError, match=r"^tenant 'acme' already exists in postgresql://channelsync:\*\*\*@"
    ):
        store.tenants.add("acme", None)
    with pytest.raises(TargetError, match=r"^'Acme!' cannot name a tenant: use 1 to 63"):
        store.tenants.add("Acme!", None)
    script = {"kind": "EmailScript", "name": "S", "queues": ["A"]}
    for name in ("acme", "default"):
        _tenant(store, name, tmp_path / f"{name}.key").apply(
            Operation("create", "EmailScript", "S", body=script), actor="ci"
        )
    acme = store.repository("acme")
    assert [s.name for s in acme.all()] == ["S"] and len(acme.audit_after(0, 10)) == 1
    assert lease.try_take(acme, LockInfo.mine("x"), 60) is None
    store.tenants.set_data_key("acme", b"sealed-data-key")
    assert store.tenants.data_key("acme") == b"sealed-data-key"
    assert store.tenants.data_key("default") is None
    store.tenants.remove("acme")
    assert store.tenants.names() == ["default"]
    left = store.repository()
    assert [s.name for s in left.all()] == ["S"] and len(left.audit_after(0, 10)) == 1
    for table in ("resources", "apply_lock", "audit", "http_writes"):
        with store.connection() as conn:
            found = conn.execute(f"SELECT count(*) FROM {table} WHERE tenant = 'acme'")
            assert found.fetchone() == (0,)
    with pytest.raises(KeyError):
        store.tenants.data_key("acme")
    with pytest.raises(TargetError, match=r"^the tenant 'default' cannot be removed$"):
        store.tenants.remove("default")


def test_one_tenant_never_sees_another_tenants_rows(store: PostgresStore, tmp_path: Path) -> None:
    store.tenants.add("acme", None)
    channel_server = {"kind": "SmtpServer", "name": "Relay", "host": "smtp.example.com"}
    _tenant(store, "acme", tmp_path / "a.key").apply(
        Operation("create", "SmtpServer", "Relay", body=channel_server), actor="ci"
    )
    other = store.repository()
    assert other.get("SmtpServer", "Relay") is None and other.all() == []
    assert other.lock_row() is None and other.audit_after(0, 10) == []
    with pytest.raises(TargetError, match=r"^no tenant 'nobody' in postgresql://"):
        _tenant(store, "nobody", tmp_path / "n.key").apply(
            Operation("create", "SmtpServer", "Relay", body=channel_server), actor="ci"
        )


def test_migrate_of_a_sqlite_store_makes_it_and_exits(cli: Any, workdir: Path) -> None:
    done = cli("serve", "--target", "sqlite:///s/tenant.db", "--migrate")
    assert (done.code, done.err) == (0, "channelsync serve: sqlite:///s/tenant.db is up to date\n")
    assert (workdir / "s" / "tenant.db").is_file()


def test_a_key_file_that_does_not_open_the_stored_secrets_is_refused(
    pg_url: str, tmp_path: Path
) -> None:
    from channelsync.server.store import Store

    schema = PostgresStore(pg_url)
    schema.migrate()
    schema.close()
    store = Store(pg_url, key_file=tmp_path / "right.key")
    relay = {"kind": "SmtpServer", "name": "R", "host": "smtp.example.com", "password": "pw-1"}
    store.write(
        Operation("create", "SmtpServer", "R", body=relay), actor="ci", key=None, holder=None
    )
    store.close()
    Keys.create(tmp_path / "other.key", replace=False)
    with pytest.raises(TargetError) as caught:
        Store(pg_url, key_file=tmp_path / "other.key")
    assert str(caught.value) == (
        f"key file {tmp_path / 'other.key'} does not open the secrets stored in "
        f"{redact(pg_url)}: every replica needs a copy of the same key file (restore the "
        "right one)"
    )
    Store(pg_url, key_file=tmp_path / "right.key").close()


def test_a_missing_postgresql_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests import pgserver

    monkeypatch.setattr(pgserver, "binaries", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"^PostgreSQL is not installed"):
        pgserver.start()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"^PostgreSQL is not installed"):
        pgserver.start()


def test_serve_refuses_the_monitor_on_a_postgresql_store(
    cli: Any, pg_url: str, served: tuple[Path, Path]
) -> None:
    tokens_file, key = served
    refused = _serve(
        cli, pg_url, "--key-file", str(key), "--tokens", str(tokens_file), "--monitor-every", "5m"
    )
    assert (refused.code, refused.err) == (
        1,
        "error: --monitor-every needs a sqlite:///PATH store for now (the monitor keeps its "
        "check history in the SQLite file): serve the postgresql:// store without it\n",
    )


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_the_console_on_postgresql_says_check_history_and_drift_need_sqlite(
    server: Server,
) -> None:
    from tests.console.conftest import csrf_of

    note = "Check history and drift reports need the SQLite store for now."
    with httpx.Client(base_url=server.url, timeout=30) as client:
        report = {"repository": "acme/channels", "changes": [], "summary": {}, "drift": False}
        posted = client.post(
            "/v1/drift-reports",
            json=report,
            headers={"Authorization": f"Bearer {server.write_token}"},
        )
        assert (posted.status_code, posted.json()) == (501, {"error": note})
        form = client.get("/sign-in")
        signed = client.post(
            "/sign-in", data={"csrf": csrf_of(form.text), "token": server.read_token}
        )
        assert signed.status_code == 303, signed.text
        page = client.get("/drift")
        assert page.status_code == 200 and note in page.text


def test_the_tenant_commands_take_a_postgresql_store_with_its_key_file(
    cli: Any, store: PostgresStore, tmp_path: Path
) -> None:
    url, key = store.url, tmp_path / "store.key"
    refused = cli("tenant", "add", "acme", "--store", url)
    assert (refused.code, refused.err) == (
        1,
        "error: a postgresql:// store needs --key-file FILE: the key that seals its secrets "
        "(every replica uses a copy of the same file; it is made on first use)\n",
    )
    added = cli("tenant", "add", "acme", "--store", url, "--key-file", str(key))
    assert added.code == 0, added.err
    assert f"Tenant 'acme' added to {redact(url)}." in added.err and PASSWORD not in added.err
    assert cli("tenant", "list", "--store", url).out == "acme\ndefault\n"
    assert store.tenants.data_key("acme") is not None  # sealed by the key file
    rotated = cli("keys", "rotate", "--tenant", "acme", "--store", url, "--key-file", str(key))
    assert rotated.code == 0, rotated.err
    removed = cli("tenant", "remove", "acme", "--yes", "--store", url)
    assert removed.code == 0, removed.err
    assert store.tenants.names() == ["default"]


def test_an_agent_and_a_channel_may_share_an_address_but_two_channels_may_not(
    store: PostgresStore, tmp_path: Path
) -> None:
    repo = store.repository()
    with repo.transaction():
        repo.insert(Row("EmailChannel", "A", {"email": "x@acme.test"}, None, "x@acme.test"))
        repo.insert(Row("Agent", "Dana", {"email": "x@acme.test"}, None, "x@acme.test"))
    with pytest.raises(TargetError, match="unique_value"), repo.transaction():
        repo.insert(Row("EmailChannel", "B", {"email": "x@acme.test"}, None, "x@acme.test"))
    assert repo.unique_holder("EmailChannel", "x@acme.test", "B") == "A"
    assert repo.unique_holder("Agent", "x@acme.test", "B") == "Dana"
