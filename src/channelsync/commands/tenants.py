"""The `tenant` and `keys` subcommands: the tenants of one store, and their data keys.

A store (``--store``, default ``$CHANNELSYNC_STORE`` or the embedded file) holds many
tenants; ``channelsync serve`` serves each at ``/v1/tenants/NAME`` (clients:
``--target https://HOST/tenants/NAME``). Removing one deletes everything it holds, so it asks
first, as apply does (or takes ``--yes``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from channelsync import argtypes
from channelsync.defaults import DEFAULT_TARGET
from channelsync.errors import ChannelsyncError, TargetError
from channelsync.exitcodes import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from channelsync.targets.postgresql import PostgresStore
    from channelsync.targets.sqlite import SqliteStore

STORE_ENV = "CHANNELSYNC_STORE"
CLI_ACTOR = "cli"


def _store_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        type=argtypes.target,
        metavar="URL",
        help=f"the store of tenants: sqlite:///PATH or postgresql://USER@HOST/DB (default: "
        f"${STORE_ENV} or {DEFAULT_TARGET})",
    )
    p.add_argument(
        "--key-file",
        type=argtypes.path,
        metavar="FILE",
        help="the key that seals a postgresql:// store's secrets (the file its replicas use); "
        "a sqlite store keeps its key beside the file",
    )


def add_parsers(subparsers: Any) -> None:
    """Register ``tenant`` and ``keys`` on the CLI's subparsers."""
    p = subparsers.add_parser("tenant", help="manage the tenants of a store")
    actions = p.add_subparsers(dest="tenant_command", metavar="ACTION")
    actions.required = True
    q = actions.add_parser("add", help="add a tenant (with a data key of its own)")
    q.add_argument("name")
    _store_option(q)
    q.set_defaults(handler=cmd_tenant_add)
    q = actions.add_parser("list", help="list the tenants, one name a line")
    _store_option(q)
    q.set_defaults(handler=cmd_tenant_list)
    q = actions.add_parser("remove", help="remove a tenant and everything it holds")
    q.add_argument("name")
    _store_option(q)
    q.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    q.set_defaults(handler=cmd_tenant_remove)

    p = subparsers.add_parser("keys", help="manage the sealing keys of a store's tenants")
    actions = p.add_subparsers(dest="keys_command", metavar="ACTION")
    actions.required = True
    q = actions.add_parser(
        "rotate", help="give a tenant a new data key and seal its secrets again under it"
    )
    q.add_argument("--tenant", required=True, metavar="NAME")
    _store_option(q)
    q.set_defaults(handler=cmd_keys_rotate)


@contextlib.contextmanager
def _opened(
    args: argparse.Namespace, *, readonly: bool, keys: bool = True
) -> Iterator[SqliteStore | PostgresStore]:
    """The store of ``--store``, closed after the block; SQLite's failures as one-line errors.
    A postgresql:// store opens with ``--key-file`` when ``keys`` are needed."""
    import sqlite3

    from channelsync.targets import refuse_credentials
    from channelsync.targets.postgresql import PostgresStore, is_postgres_url
    from channelsync.targets.sqlite import SqliteStore, path_from_url

    found = args.store or argtypes.from_env(STORE_ENV) or DEFAULT_TARGET
    if is_postgres_url(found):
        from channelsync.server.store import KEY_FILE_NEEDED

        if keys and args.key_file is None:
            raise ChannelsyncError(KEY_FILE_NEEDED)
        database = PostgresStore(found, key_file=args.key_file if keys else None, pool_size=2)
        try:
            if not keys:
                database.check_schema()
            yield database
        finally:
            database.close()
        return
    refuse_credentials(found)
    if not found.lower().startswith("sqlite:"):
        raise ChannelsyncError(
            f"--store needs a sqlite:///PATH store (e.g. {DEFAULT_TARGET}), not a "
            f"'{found.split(':', 1)[0]}' URL"
        )
    path = path_from_url(found)
    try:
        store = SqliteStore(found, readonly=readonly)
        try:
            yield store
        finally:
            store.close()
    except sqlite3.Error as exc:
        raise TargetError(f"tenant database {path}: {exc}") from None
    except OSError as exc:
        raise TargetError(f"tenant database {exc.filename or path}: {exc.strerror}") from None


def _unknown(store: SqliteStore | PostgresStore, name: str) -> ChannelsyncError:
    return ChannelsyncError(
        f"no tenant '{name}' in {store.path} (tenants: {', '.join(store.tenants.names())})"
    )


def cmd_tenant_add(args: argparse.Namespace) -> int:
    from channelsync.tenant.repository import check_tenant_name
    from channelsync.tenant.sealing import new_data_key

    check_tenant_name(args.name)
    with _opened(args, readonly=False) as store:
        store.tenants.add(args.name, new_data_key(store.master))
    print(
        f"Tenant '{args.name}' added to {store.path}. Serve it with 'channelsync serve'; "
        f"clients use --target https://HOST/tenants/{args.name} with a token made by: "
        f"channelsync token add NAME --role write --tenant {args.name}",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_tenant_list(args: argparse.Namespace) -> int:
    with _opened(args, readonly=True, keys=False) as store:
        if store.absent:
            raise ChannelsyncError(
                f"no store at {store.path} yet: 'channelsync tenant add' or 'serve' creates it"
            )
        names = store.tenants.names()
    sys.stdout.write("".join(f"{name}\n" for name in names))
    return EXIT_OK


def cmd_tenant_remove(args: argparse.Namespace) -> int:
    from channelsync.tenant.repository import cannot_remove

    cannot_remove(args.name)
    with _opened(args, readonly=False, keys=False) as store:
        if args.name not in store.tenants.names():
            raise _unknown(store, args.name)
        if not args.yes and not _confirm(args.name, str(store.path)):
            return EXIT_ERROR
        store.tenants.remove(args.name)
    print(
        f"Tenant '{args.name}' removed from {store.path}, with its resources, secrets, lock "
        "and audit; revoke its tokens with 'channelsync token revoke NAME'",
        file=sys.stderr,
    )
    return EXIT_OK


def _confirm(name: str, path: str) -> bool:
    if sys.stdin is None or not sys.stdin.isatty():
        print(
            f"error: refusing to remove tenant '{name}' without confirmation: no terminal to "
            "ask on. Rerun with --yes",
            file=sys.stderr,
        )
        return False
    question = (
        f"Remove tenant '{name}' and all its resources, secrets and audit from {path}? "
        "Only 'yes' is accepted: "
    )
    if input(question).strip() != "yes":
        print("Removal cancelled; nothing was changed.", file=sys.stderr)
        return False
    return True


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    with _opened(args, readonly=False) as store:
        try:
            tenant = store.tenant(args.tenant)
        except KeyError:
            raise _unknown(store, args.tenant) from None
        count = tenant.rotate_key(store.tenants, args.tenant, store.master, actor=CLI_ACTOR)
    print(
        f"Tenant '{args.tenant}' has a new data key; {count} resource(s) with secrets sealed "
        "again under it (their fingerprints and ETags changed: plan again before applying a "
        "saved plan). The other tenants are untouched.",
        file=sys.stderr,
    )
    return EXIT_OK
