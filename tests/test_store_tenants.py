"""Many tenants in one SQLite store: the upgrade of a single-tenant file, isolation, the
`tenant` and `keys rotate` commands, and envelope encryption per tenant."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from channelsync.targets.base import Operation, TargetError
from channelsync.targets.sqlite import SCHEMA_VERSION, SqliteStore, SqliteTarget
from channelsync.tenant.sealing import Sealer

DB = Path(".channelsync") / "tenant.db"
URL = f"sqlite:///{DB}"

# The schema of the single-tenant versions (user_version 0), as they wrote it.
V0_SCHEMA = """
CREATE TABLE resources (
    kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, secrets BLOB,
    etag TEXT NOT NULL, email TEXT, updated_at REAL NOT NULL, PRIMARY KEY (kind, name)
);
CREATE UNIQUE INDEX channel_email ON resources (email) WHERE email IS NOT NULL;
CREATE TABLE apply_lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, since TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    action TEXT NOT NULL, fields TEXT NOT NULL
);
CREATE TABLE http_writes (
    key TEXT PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    action TEXT NOT NULL
);
"""


def as_single_tenant_file(path: Path) -> None:
    """Turn a store into the file a single-tenant version left: today's tables without a
    tenant column, user_version 0, secrets sealed directly by the key file."""
    new = sqlite3.connect(path)
    rows = new.execute(
        "SELECT kind, name, body, secrets, etag, email, updated_at FROM resources"
    ).fetchall()
    audit = new.execute("SELECT id, at, actor, kind, name, action, fields FROM audit").fetchall()
    new.close()
    path.unlink()
    for end in ("-wal", "-shm"):
        Path(f"{path}{end}").unlink(missing_ok=True)
    old = sqlite3.connect(path)
    old.executescript(V0_SCHEMA)
    with old:
        old.executemany("INSERT INTO resources VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        old.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)", audit)
        old.execute("INSERT INTO http_writes VALUES ('k-1', 0, 'SmtpServer', 'Relay', 'create')")
    old.close()


def fingerprint_of_file(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def apply(cli: Any) -> Any:
    return cli("apply", "--auto-approve", "--skip-connection-tests")


def test_a_single_tenant_file_is_read_as_is_and_upgraded_by_the_first_writer(
    tenant: Path, cli: Any
) -> None:
    assert apply(cli).code == 0
    as_single_tenant_file(tenant / DB)
    before = fingerprint_of_file(tenant / DB)
    files = sorted(p.name for p in (tenant / DB).parent.iterdir())

    plan = cli("plan", "--detailed-exitcode")  # a reader: reads the old file, changes nothing
    assert plan.code == 0, plan.err
    assert "No changes." in plan.out
    assert cli("tenant", "list").out == "default\n"
    assert fingerprint_of_file(tenant / DB) == before
    assert sorted(p.name for p in (tenant / DB).parent.iterdir()) == files

    (tenant / "channels.d" / "script.yaml").write_text(
        "kind: EmailScript\nname: Support Script\nqueues: [Support, Billing, Sales]\n"
    )
    applied = apply(cli)
    assert applied.code == 0, applied.err
    assert "Apply complete: 1 updated." in applied.out
    db = sqlite3.connect(tenant / DB)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT name, data_key FROM tenants").fetchall() == [("default", None)]
    assert {r[0] for r in db.execute("SELECT tenant FROM resources")} == {"default"}
    assert db.execute("SELECT tenant, key FROM http_writes").fetchall() == [("default", "k-1")]
    actions = [r[0] for r in db.execute("SELECT action FROM audit ORDER BY id")]
    assert actions[-1] == "update" and actions.count("create") == 4
    db.close()
    assert cli("plan", "--detailed-exitcode").code == 0
    target = SqliteTarget(URL, readonly=True)
    try:  # the secrets sealed by the key file still unseal
        assert target.secret_values("SmtpServer", "Relay") == {"password": "relay-Secret-3ez"}
    finally:
        target.close()


def test_writers_opening_a_single_tenant_file_at_once_upgrade_it_once(
    tenant: Path, cli: Any
) -> None:
    assert apply(cli).code == 0
    rows = rows_of(URL, "default")
    as_single_tenant_file(tenant / DB)
    failures: list[BaseException] = []

    def open_and_close() -> None:
        try:
            SqliteStore(URL, readonly=False).close()
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert rows_of(URL, "default") == rows
    db = sqlite3.connect(tenant / DB)
    assert db.execute("SELECT name FROM tenants").fetchall() == [("default",)]
    db.close()


def test_a_store_of_a_newer_schema_is_refused(tenant: Path, cli: Any) -> None:
    assert apply(cli).code == 0
    db = sqlite3.connect(tenant / DB)
    db.execute("PRAGMA user_version = 99")
    db.close()
    for command in (("plan",), ("apply", "--auto-approve", "--skip-connection-tests")):
        result = cli(*command)
        assert result.code == 1
        assert result.err == (
            f"error: tenant database {DB} has schema version 99, newer than this channelsync "
            f"knows ({SCHEMA_VERSION}); upgrade channelsync\n"
        )


def script(name: str) -> Operation:
    return Operation("create", "EmailScript", name, body={"kind": "EmailScript", "queues": []})


def relay(password: str) -> Operation:
    body = {"kind": "SmtpServer", "host": "smtp.example.com", "user": "u", "password": password}
    return Operation("create", "SmtpServer", "Relay", body=body)


def channel(email: str) -> Operation:
    body = {
        "kind": "EmailChannel",
        "email": email,
        "incoming": {"server": "imap.example.com", "user": "u", "password": "imap-pw-1"},
    }
    return Operation("create", "EmailChannel", "Support", body=body)


def two_tenants(tmp_path: Path, cli: Any) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = cli("tenant", "add", "acme", "--store", url)
    assert result.code == 0, result.err
    store = SqliteStore(url, readonly=False)
    try:
        for name, password in (("default", "pw-default"), ("acme", "pw-acme")):
            rules = store.tenant(name)
            for op in (relay(password), channel("support@example.com")):
                rules.apply(op, actor="test")
    finally:
        store.close()
    return url


def rows_of(url: str, tenant: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return db.execute(
            "SELECT kind, name, body, secrets, etag FROM resources WHERE tenant = ?"
            " ORDER BY kind, name",
            (tenant,),
        ).fetchall()
    finally:
        db.close()


def test_each_tenant_sees_only_its_own_rows_and_unique_values(tmp_path: Path, cli: Any) -> None:
    url = two_tenants(tmp_path, cli)  # the same channel address in both: unique per tenant
    store = SqliteStore(url, readonly=True)
    try:
        assert store.tenants.names() == ["acme", "default"]
        for name, password in (("default", "pw-default"), ("acme", "pw-acme")):
            repo = store.repository(name)
            assert sorted(r.name for r in repo.all()) == ["Relay", "Support"]
            sealer = store.tenant(name).sealer
            assert sealer.unseal(repo.sealed("SmtpServer", "Relay")) == {"password": password}
        acme, default = (
            store.repository(n).get("SmtpServer", "Relay") for n in ("acme", "default")
        )
        assert acme is not None and default is not None
        assert acme.body["password"] != default.body["password"]  # keyed per tenant
        with pytest.raises(TargetError, match=r"^the tenant 'default' cannot be removed$"):
            store.tenants.remove("default")
    finally:
        store.close()


def test_tenant_add_list_remove(tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = two_tenants(tmp_path, cli)
    store = ("--store", url)
    assert cli("tenant", "list", *store).out == "acme\ndefault\n"
    again = cli("tenant", "add", "acme", *store)
    assert again.code == 1
    assert again.err == f"error: tenant 'acme' already exists in {tmp_path / 'store.db'}\n"
    bad = cli("tenant", "add", "Acme Corp", *store)
    assert bad.code == 1
    assert bad.err == (
        "error: 'Acme Corp' cannot name a tenant: use 1 to 63 lower-case letters, digits "
        "and '-', starting with a letter or digit\n"
    )
    monkeypatch.setattr("sys.stdin", None)  # no terminal to confirm on
    refused = cli("tenant", "remove", "acme", *store)
    assert refused.code == 1
    assert refused.err == (
        "error: refusing to remove tenant 'acme' without confirmation: no terminal to ask on. "
        "Rerun with --yes\n"
    )
    assert cli("tenant", "list", *store).out == "acme\ndefault\n"
    default_rows = rows_of(url, "default")
    removed = cli("tenant", "remove", "acme", "--yes", *store)
    assert removed.code == 0, removed.err
    assert rows_of(url, "acme") == []
    assert rows_of(url, "default") == default_rows
    assert cli("tenant", "list", *store).out == "default\n"
    unknown = cli("tenant", "remove", "acme", "--yes", *store)
    assert unknown.err == f"error: no tenant 'acme' in {tmp_path / 'store.db'} (tenants: default)\n"
    assert cli("tenant", "remove", "default", "--yes", *store).err == (
        "error: the tenant 'default' cannot be removed\n"
    )


def test_tenant_list_of_a_missing_store_creates_nothing(tmp_path: Path, cli: Any) -> None:
    result = cli("tenant", "list", "--store", f"sqlite:///{tmp_path / 'none' / 'store.db'}")
    assert result.code == 1
    assert result.err == (
        f"error: no store at {tmp_path / 'none' / 'store.db'} yet: 'channelsync tenant add' or "
        "'serve' creates it\n"
    )
    assert not (tmp_path / "none").exists()


def test_rotating_one_tenants_key_leaves_the_others_byte_identical(
    tmp_path: Path, cli: Any
) -> None:
    url = two_tenants(tmp_path, cli)
    default_rows, acme_rows = rows_of(url, "default"), rows_of(url, "acme")
    store = SqliteStore(url, readonly=True)
    old_key = store.tenants.data_key("acme")
    store.close()
    result = cli("keys", "rotate", "--tenant", "acme", "--store", url)
    assert result.code == 0, result.err
    assert result.err == (
        "Tenant 'acme' has a new data key; 2 resource(s) with secrets sealed again under it "
        "(their fingerprints and ETags changed: plan again before applying a saved plan). "
        "The other tenants are untouched.\n"
    )
    assert rows_of(url, "default") == default_rows
    rotated = rows_of(url, "acme")
    assert [r[3] for r in rotated] != [r[3] for r in acme_rows]  # sealed again
    assert [r[4] for r in rotated] != [r[4] for r in acme_rows]  # fingerprints, so ETags
    store = SqliteStore(url, readonly=True)
    try:
        assert store.tenants.data_key("acme") != old_key
        sealer = store.tenant("acme").sealer
        repo = store.repository("acme")
        assert sealer.unseal(repo.sealed("SmtpServer", "Relay")) == {"password": "pw-acme"}
        found = repo.get("SmtpServer", "Relay")
        assert found is not None and found.body["password"] == sealer.fingerprint("pw-acme")
        audit = store.root.connection.execute(
            "SELECT tenant, kind, action, fields FROM audit WHERE action = 'rotate-key'"
        ).fetchall()
        assert sorted(audit) == [
            ("acme", "EmailChannel", "rotate-key", '["incoming.password"]'),
            ("acme", "SmtpServer", "rotate-key", '["password"]'),
        ]
    finally:
        store.close()


def acme_state(url: str) -> tuple[Any, ...]:
    """Tenant acme's rows, sealed data key, and its relay's secrets as they unseal."""
    store = SqliteStore(url, readonly=True)
    try:
        sealed = store.repository("acme").sealed("SmtpServer", "Relay")
        secrets = store.tenant("acme").sealer.unseal(sealed)
        return rows_of(url, "acme"), store.tenants.data_key("acme"), secrets
    finally:
        store.close()


def test_a_failure_in_the_middle_of_a_rotation_leaves_the_old_key_and_secrets(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = two_tenants(tmp_path, cli)
    before = acme_state(url)
    sealed = Sealer.seal
    calls = []

    def crash_on_the_second(self: Sealer, kind: str, body: dict[str, Any]) -> bytes | None:
        calls.append(kind)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a Ctrl-C between two resources would
        return sealed(self, kind, body)

    monkeypatch.setattr(Sealer, "seal", crash_on_the_second)
    assert cli("keys", "rotate", "--tenant", "acme", "--store", url).code == 130
    assert len(calls) == 2
    assert acme_state(url) == before


KILLED_ROTATION = """
import os, signal, sys
from channelsync.cli import main
from channelsync.tenant.sealing import Sealer
sealed, calls = Sealer.seal, []
def seal(self, kind, body):
    calls.append(kind)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return sealed(self, kind, body)
Sealer.seal = seal
main(["keys", "rotate", "--tenant", "acme", "--store", sys.argv[1]])
"""


def test_a_rotation_killed_in_the_middle_leaves_the_old_key_and_secrets(
    tmp_path: Path, cli: Any
) -> None:
    url = two_tenants(tmp_path, cli)
    before = acme_state(url)
    assert before[2] == {"password": "pw-acme"}
    killed = subprocess.run([sys.executable, "-c", KILLED_ROTATION, url], timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert acme_state(url) == before


def test_the_default_tenant_sealed_by_the_key_file_gets_a_data_key_on_rotation(
    tenant: Path, cli: Any
) -> None:
    assert apply(cli).code == 0
    store = SqliteStore(URL, readonly=True)
    assert store.tenants.data_key("default") is None  # sealed by the key file itself
    store.close()
    result = cli("keys", "rotate", "--tenant", "default")
    assert result.code == 0, result.err
    assert "3 resource(s) with secrets sealed again" in result.err
    store = SqliteStore(URL, readonly=True)
    assert store.tenants.data_key("default") is not None
    store.close()
    assert cli("plan", "--detailed-exitcode").code == 0  # fingerprints follow the new key
    target = SqliteTarget(URL, readonly=True)
    try:
        assert target.secret_values("SmtpServer", "Relay") == {"password": "relay-Secret-3ez"}
    finally:
        target.close()


def test_rotation_waits_for_no_apply_and_names_an_unknown_tenant(tenant: Path, cli: Any) -> None:
    assert apply(cli).code == 0
    unknown = cli("keys", "rotate", "--tenant", "acme")
    assert unknown.code == 1
    assert unknown.err == f"error: no tenant 'acme' in {DB} (tenants: default)\n"
    db = sqlite3.connect(tenant / DB)
    with db:
        db.execute(
            "INSERT INTO apply_lock VALUES ('default', 'other', 'elsewhere.example', 7,"
            " '2026-01-01T00:00:00Z', 1e12)"
        )
    db.close()
    locked = cli("keys", "rotate", "--tenant", "default")
    assert locked.code == 1
    assert locked.err.startswith("error: tenant 'default' is locked by an apply (")
    assert locked.err.endswith("); rotate its key once that apply is done\n")
