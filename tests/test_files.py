"""No command loses the user's files or the tenant (issue 9, section 3).

Files are written atomically (a full disk leaves the old file as it was, and the error names
it); export never turns a missing or empty tenant into deleted config files; the key file is
created whole or not at all; read-only commands create and change nothing beside the tenant,
and work in a read-only folder.

The full disk is a real one (a 64 KiB tmpfs) and the read-only folder a real read-only bind
mount; both need root, so those tests are skipped elsewhere.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channelsync.fsio import PRIVATE, write_atomic
from tests.tenant_config import BASE, apply, edit_live, plan_json, write

TENANT = Path(".channelsync")


def _mount(*args: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")


def _umount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB file system (tmpfs), to be filled with ``fill``."""
    folder = tmp_path / "small"
    folder.mkdir()
    _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder))
    yield folder
    _umount(folder)


def fill(folder: Path) -> None:
    """Take every free byte of the file system ``folder`` is on."""
    fd = os.open(folder / ".filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Any]:
    """``read_only(folder)`` makes ``folder`` read-only in place (a read-only bind mount)."""
    mounted: list[Path] = []

    def make(folder: Path) -> None:
        folder = folder.resolve()
        _mount("--bind", str(folder), str(folder))
        mounted.append(folder)
        _mount("-o", "remount,ro,bind", str(folder))
        with pytest.raises(OSError, match="Read-only file system"):
            (folder / "probe").write_text("")

    yield make
    for folder in reversed(mounted):
        _umount(folder)


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry of ``folder`` (and the folder itself) with its size, mtime and mode."""
    out = {".": (0, folder.stat().st_mtime_ns, folder.stat().st_mode)}
    for entry in sorted(folder.iterdir()):
        st = entry.lstat()
        out[entry.name] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


# --- the atomic write ----------------------------------------------------------------


def test_a_full_disk_leaves_the_old_file_intact_and_names_it(small_disk: Path) -> None:
    target = small_disk / "plan.json"
    target.write_text("the old plan\n")
    fill(small_disk)
    with pytest.raises(OSError) as caught:
        write_atomic(target, "a new plan\n" * 100)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(target)
    assert target.read_text() == "the old plan\n"
    assert sorted(p.name for p in small_disk.iterdir()) == [".filler", "plan.json"]


def test_a_key_that_cannot_be_written_whole_leaves_no_key_file(small_disk: Path) -> None:
    fill(small_disk)
    with pytest.raises(OSError, match="No space left on device"):
        write_atomic(small_disk / "tenant.key", os.urandom(64), mode=PRIVATE, exclusive=True)
    assert [p.name for p in small_disk.iterdir()] == [".filler"]  # no empty key to trip on


def test_private_files_are_never_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[int] = []
    real_write = os.write

    def spy(fd: int, data: Any) -> int:
        modes.append(os.fstat(fd).st_mode & 0o777)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    target = tmp_path / "tokens.json"
    write_atomic(target, "one", mode=PRIVATE)
    target.chmod(0o644)
    write_atomic(target, "two", mode=PRIVATE)
    assert modes == [0o600, 0o600]
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_replaced_file_keeps_its_mode_and_a_new_one_follows_the_umask(tmp_path: Path) -> None:
    kept = tmp_path / "support.yaml"
    kept.write_text("old")
    kept.chmod(0o640)
    write_atomic(kept, "new")
    assert (kept.read_text(), kept.stat().st_mode & 0o777) == ("new", 0o640)
    old_umask = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new.yaml", "x")
    finally:
        os.umask(old_umask)
    assert (tmp_path / "new.yaml").stat().st_mode & 0o777 == 0o640


def test_a_symlinked_file_is_written_through_its_link(tmp_path: Path) -> None:
    (tmp_path / "real.yaml").write_text("old")
    (tmp_path / "link.yaml").symlink_to("real.yaml")
    write_atomic(tmp_path / "link.yaml", "new")
    assert (tmp_path / "link.yaml").is_symlink()
    assert (tmp_path / "real.yaml").read_text() == "new"


def test_an_exclusive_write_never_replaces_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    key = tmp_path / "tenant.key"
    key.write_bytes(b"k" * 64)
    with pytest.raises(FileExistsError) as caught:
        write_atomic(key, b"x" * 64, mode=PRIVATE, exclusive=True)
    assert caught.value.filename == str(key)
    assert key.read_bytes() == b"k" * 64
    assert [p.name for p in tmp_path.iterdir()] == ["tenant.key"]


@pytest.mark.parametrize(
    ("command", "old_file", "message"),
    [
        (
            ["plan", "--out", "{disk}/plan.json"],
            "plan.json",
            "error: cannot write plan file {disk}/plan.json: No space left on device\n",
        ),
        (
            ["init", "{disk}", "--force"],
            "channels.d/example.yaml",
            "error: {disk}/channels.d/example.yaml: No space left on device\n",
        ),
        (
            ["token", "add", "ci", "--role", "read", "--tokens", "{disk}/tokens.json"],
            "tokens.json",
            "error: cannot write tokens file {disk}/tokens.json: No space left on device\n",
        ),
        (
            ["schema", "--write", "--out", "{disk}"],
            "channelsync.schema.json",
            "error: {disk}/EmailChannel.schema.json: No space left on device\n",
        ),
    ],
    ids=["plan --out", "init", "token add", "schema --write"],
)
def test_every_command_that_writes_keeps_the_old_file_on_a_full_disk(
    tenant: Path, small_disk: Path, cli: Any, command: list[str], old_file: str, message: str
) -> None:
    disk = os.path.relpath(small_disk, tenant)
    old = small_disk / old_file
    old.parent.mkdir(parents=True, exist_ok=True)
    contents = {"tokens.json": '{"tokens": []}\n', "plan.json": '{\n  "format_version": 1\n}\n'}
    old.write_text(contents.get(old_file, "old\n"))
    before = old.read_text()
    fill(small_disk)
    result = cli(*[part.format(disk=disk) for part in command])
    assert result.code == 1
    assert result.err.endswith(message.format(disk=disk))
    assert old.read_text() == before
    leftovers = [p for p in small_disk.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_export_on_a_full_disk_keeps_the_config_file_and_names_it(
    tenant: Path, small_disk: Path, cli: Any
) -> None:
    config = small_disk / "cfg"
    shutil.copytree(tenant / "channels.d", config)
    disk = os.path.relpath(config, tenant)
    assert apply(cli, "--dir", disk).code == 0
    edit_live(tenant, "Support", lambda body: body.update(enabled=False))
    before = (config / "support.yaml").read_text()
    fill(small_disk)
    result = cli("export", "--dir", disk)
    assert result.code == 1
    assert result.err == f"error: {disk}/support.yaml: No space left on device\n"
    assert (config / "support.yaml").read_text() == before


def test_plan_out_replaces_only_a_saved_plan(tenant: Path, cli: Any) -> None:
    apply(cli)
    for victim in (".channelsync/tenant.db", "channels.d/support.yaml"):
        before = (tenant / victim).read_bytes()
        result = cli("plan", "--out", victim)
        assert result.code == 1
        assert result.err == (
            f"error: {victim} exists and is not a saved plan: not replacing it. Choose another "
            "--out path or remove that file\n"
        )
        assert (tenant / victim).read_bytes() == before
    assert cli("plan", "--out", "plan.json").code == 0
    assert cli("plan", "--out", "plan.json").code == 0  # an older saved plan is replaced
    assert cli("plan", "--out", "channels.d").err == (
        "error: cannot write plan file channels.d: Is a directory\n"
    )


def test_an_exclusive_write_works_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: str, target: Any) -> None:  # vfat, some network file systems
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    key = tmp_path / "tenant.key"
    write_atomic(key, b"k" * 64, mode=PRIVATE, exclusive=True)
    assert (key.read_bytes(), key.stat().st_mode & 0o777) == (b"k" * 64, 0o600)
    assert [p.name for p in tmp_path.iterdir()] == ["tenant.key"]
    with pytest.raises(FileExistsError):
        write_atomic(key, b"x" * 64, mode=PRIVATE, exclusive=True)
    assert key.read_bytes() == b"k" * 64


# --- export never loses the config ---------------------------------------------------


def test_export_without_a_tenant_refuses_and_changes_nothing(tenant: Path, cli: Any) -> None:
    before = snapshot(tenant / "channels.d")
    for extra in ([], ["--prune"]):
        result = cli("export", *extra)
        assert result.code == 1
        assert result.out == ""
        assert result.err == (
            "error: no tenant at .channelsync/tenant.db yet: apply will create it\n"
        )
    assert snapshot(tenant / "channels.d") == before
    assert not (tenant / ".channelsync").exists()


def test_export_of_an_empty_tenant_refuses_and_changes_nothing(tenant: Path, cli: Any) -> None:
    (tenant / "nothing").mkdir()
    assert apply(cli, "--dir", "nothing").code == 0  # an empty tenant
    before = snapshot(tenant / "channels.d")
    for extra in ([], ["--prune"]):
        result = cli("export", *extra)
        assert result.code == 1
        assert result.err == (
            "error: the tenant sqlite:///.channelsync/tenant.db is empty: there is nothing "
            "to export; the config files were left as they are\n"
        )
    assert snapshot(tenant / "channels.d") == before


def test_export_keeps_documents_the_tenant_lacks_unless_pruned(tenant: Path, cli: Any) -> None:
    apply(cli)
    extra = "kind: EmailScript\nname: Not Live\n"
    write(tenant, {"extra.yaml": extra})
    result = cli("export")
    assert result.code == 0
    assert result.out == (
        "would remove EmailScript 'Not Live' from channels.d/extra.yaml (not in the tenant)\n"
        "1 resource(s) not in the tenant were left in the config; rerun with --prune to "
        "remove them\n"
    )
    assert (tenant / "channels.d" / "extra.yaml").read_text() == extra
    result = cli("export", "--prune")
    assert result.out == (
        "removed EmailScript 'Not Live' (not in the tenant)\n"
        "removed channels.d/extra.yaml (no resource left in it)\n"
    )
    assert not (tenant / "channels.d" / "extra.yaml").exists()


# --- the key file --------------------------------------------------------------------


def test_an_empty_key_without_a_database_is_recreated(tenant: Path, cli: Any) -> None:
    (tenant / TENANT).mkdir()
    (tenant / TENANT / "tenant.key").write_bytes(b"")  # what a crash mid-creation left
    assert apply(cli).code == 0
    key = tenant / TENANT / "tenant.key"
    assert len(key.read_bytes()) == 64
    assert key.stat().st_mode & 0o777 == 0o600
    assert plan_json(cli)["summary"]["no_op"] == 4


def test_an_empty_key_beside_a_tenant_without_secrets_is_recreated(tenant: Path, cli: Any) -> None:
    (tenant / "scripts").mkdir()
    (tenant / "scripts" / "script.yaml").write_text(BASE["script.yaml"])
    assert apply(cli, "--dir", "scripts").code == 0
    (tenant / TENANT / "tenant.key").write_bytes(b"")
    assert plan_json(cli)["summary"] == {
        "create": 3,
        "update": 0,
        "rename": 0,
        "delete": 0,
        "no_op": 1,
    }
    assert apply(cli).code == 0
    assert len((tenant / TENANT / "tenant.key").read_bytes()) == 64
    assert plan_json(cli)["summary"]["no_op"] == 4


def test_an_empty_key_beside_a_tenant_with_secrets_stays_refused(tenant: Path, cli: Any) -> None:
    apply(cli)
    (tenant / TENANT / "tenant.key").write_bytes(b"")
    for command in (["plan"], ["apply", "--auto-approve", "--skip-connection-tests"]):
        result = cli(*command)
        assert result.code == 1
        assert result.err == (
            "error: key file .channelsync/tenant.key is damaged (0 bytes, expected 64); "
            "restore it from a backup\n"
        )
    assert (tenant / TENANT / "tenant.key").read_bytes() == b""


def test_the_key_file_appears_only_once_it_is_complete(
    tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tenant / TENANT / "tenant.key"
    seen: list[bool] = []
    real_write = os.write

    def spy(fd: int, data: Any) -> int:
        if len(data) == 64:
            seen.append(key.exists())
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    assert apply(cli).code == 0
    assert seen == [False]
    assert len(key.read_bytes()) == 64


# --- read-only commands --------------------------------------------------------------


def test_plan_without_a_tenant_warns_with_the_path_and_creates_nothing(
    tenant: Path, cli: Any
) -> None:
    result = cli("plan", "--target", "sqlite:///typo/tenant.db")
    assert result.code == 0
    assert "Plan: 4 to create, 0 to update, 0 to rename, 0 to delete, 0 unchanged." in result.out
    assert "warning: no tenant at typo/tenant.db yet: apply will create it\n" in result.out
    plan = plan_json(cli)
    assert plan["warnings"][0] == "no tenant at .channelsync/tenant.db yet: apply will create it"
    assert sorted(p.name for p in tenant.iterdir()) == ["channels.d"]


def test_a_plan_saved_without_a_tenant_applies(tenant: Path, cli: Any) -> None:
    assert cli("plan", "--out", "plan.json").code == 0
    assert not (tenant / TENANT).exists()
    result = cli("apply", "plan.json", "--skip-connection-tests")
    assert result.code == 0, result.err
    assert plan_json(cli)["summary"]["no_op"] == 4


@pytest.mark.parametrize("command", [["drift"], ["list", "--live"], ["export"]])
def test_reading_commands_refuse_a_tenant_that_is_not_there(
    tenant: Path, cli: Any, command: list[str]
) -> None:
    result = cli(*command, "--target", "sqlite:///typo/tenant.db")
    assert result.code == 1
    assert result.err == "error: no tenant at typo/tenant.db yet: apply will create it\n"
    assert sorted(p.name for p in tenant.iterdir()) == ["channels.d"]


READ_ONLY_COMMANDS = [
    ["plan"],
    ["plan", "--format", "json"],
    ["drift"],
    ["list", "--live"],
    ["export", "--dir", "exported"],
]


def test_read_only_commands_change_nothing_beside_the_tenant(tenant: Path, cli: Any) -> None:
    apply(cli)
    edit_live(tenant, "Support", lambda body: body.update(enabled=False))
    before = snapshot(tenant / TENANT)
    for command in READ_ONLY_COMMANDS:
        assert cli(*command).code in (0, 2), command
        assert snapshot(tenant / TENANT) == before, command


def test_read_only_commands_work_in_a_read_only_folder(
    tenant: Path, cli: Any, read_only: Any
) -> None:
    apply(cli)
    edit_live(tenant, "Support", lambda body: body.update(enabled=False))
    before = snapshot(tenant / TENANT)
    read_only(tenant / TENANT)
    for command in READ_ONLY_COMMANDS:
        result = cli(*command)
        assert result.code in (0, 2), (command, result.err)
        assert result.err == "", command
    assert cli("drift").code == 2
    assert "0 to create, 1 to update" in cli("plan").out
    assert snapshot(tenant / TENANT) == before


def test_a_reader_sees_what_a_writer_still_holds_in_its_log(tenant: Path, cli: Any) -> None:
    apply(cli)
    writer = sqlite3.connect(tenant / TENANT / "tenant.db")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # the change stays in the -wal file
    try:
        row = writer.execute("SELECT body FROM resources WHERE name = 'Support'").fetchone()
        body = json.loads(row[0])
        body["enabled"] = False
        writer.execute("UPDATE resources SET body = ? WHERE name = 'Support'", (json.dumps(body),))
        writer.commit()
        before = snapshot(tenant / TENANT)
        assert {"tenant.db-wal", "tenant.db-shm"} <= set(before)
        result = cli("drift")
        assert result.code == 2
        assert "~ enabled: false -> true" in result.out
        assert set(snapshot(tenant / TENANT)) == set(before)
    finally:
        writer.close()


def test_an_empty_log_left_behind_gets_no_new_side_file(tenant: Path, cli: Any) -> None:
    apply(cli)
    (tenant / TENANT / "tenant.db-wal").write_bytes(b"")
    before = snapshot(tenant / TENANT)
    assert cli("drift").code == 0
    assert snapshot(tenant / TENANT) == before


def test_an_unlocked_reader_reads_again_after_a_writer_changed_the_file(
    tenant: Path, cli: Any
) -> None:
    from channelsync.targets.sqlite import SqliteTarget

    apply(cli)
    reader = SqliteTarget("sqlite:///.channelsync/tenant.db", readonly=True)
    try:
        edit_live(tenant, "Support", lambda body: body.update(enabled=False))
        assert reader.read()[("EmailChannel", "Support")].data["enabled"] is False
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("args", "unset", "error"),
    [
        (
            ["--only", "Nope"],
            None,
            "error: --only: 'Nope' matches no resource. Give a resource name (or Kind/NAME) of "
            "the config or the tenant",
        ),
        (
            ["--auto-approve"],
            "RELAY_PASSWORD",
            "error: 1 secret(s) the plan needs cannot be read here; set them and apply again. "
            "Nothing was changed",
        ),
        (
            [],  # stdin is not a terminal here
            None,
            "error: refusing to apply without confirmation: no terminal to ask on. "
            "Review the plan and rerun with --auto-approve, or apply a saved plan",
        ),
    ],
    ids=["unknown-only", "unset-secret", "no-terminal"],
)
def test_a_refused_apply_creates_no_tenant(
    args: list[str],
    unset: str | None,
    error: str,
    tenant: Path,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if unset:
        monkeypatch.delenv(unset)
    before = sorted(p.name for p in tenant.iterdir())
    result = cli("apply", *args, "--target", "sqlite:///new/t.db")
    assert result.code == 1
    assert result.err.splitlines()[-1] == error
    assert sorted(p.name for p in tenant.iterdir()) == before  # no new/, t.db, t.key
