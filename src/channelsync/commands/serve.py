"""The `serve` and `token` subcommands; the CLI registers them with ``add_parsers``.

Only argument parsing lives at import time: FastAPI and uvicorn are imported inside
``cmd_serve``, so ``channelsync --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import socket

from channelsync import argtypes
from channelsync.commands.tenants import STORE_ENV
from channelsync.defaults import DEFAULT_TARGET, DEFAULT_TENANT, DEFAULT_TOKENS_FILE, TOKEN_ROLES
from channelsync.errors import ChannelsyncError
from channelsync.exitcodes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK

DEFAULT_PORT = 8765
MONITOR_NEEDS_SQLITE = (
    "--monitor-every needs a sqlite:///PATH store for now (the monitor keeps its check history "
    "in the SQLite file): serve the postgresql:// store without it"
)


def _tokens_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tokens",
        type=argtypes.path,
        default=DEFAULT_TOKENS_FILE,
        metavar="FILE",
        help=f"tokens file (default: {DEFAULT_TOKENS_FILE})",
    )


def add_parsers(subparsers: Any) -> None:
    """Register ``serve`` and ``token`` on the CLI's subparsers (argparse's _SubParsersAction)."""
    p = subparsers.add_parser(
        "serve", help="serve a tenant store over the REST API, with the web console at /"
    )
    argtypes.target_option(p, "store to serve")
    p.add_argument(
        "--store",
        type=argtypes.target,
        metavar="URL",
        help=f"store to serve: sqlite:///PATH or postgresql://USER@HOST/DB (default: "
        f"${STORE_ENV}, else --target)",
    )
    p.add_argument(
        "--key-file",
        type=argtypes.path,
        metavar="FILE",
        help="the key that seals a postgresql:// store's secrets (the same file for every "
        "replica; made on first use); a sqlite store keeps its key beside the file",
    )
    p.add_argument(
        "--migrate",
        action="store_true",
        help="create or upgrade the store's schema, then exit",
    )
    p.add_argument(
        "--migrate-on-start",
        action="store_true",
        help="create or upgrade the store's schema before serving",
    )
    p.add_argument(
        "--host",
        type=argtypes.host,
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1)",
    )
    p.add_argument(
        "--port", type=argtypes.port, default=DEFAULT_PORT, help=f"default: {DEFAULT_PORT}"
    )
    _tokens_option(p)
    p.add_argument(
        "--tls-cert", type=argtypes.path, metavar="FILE", help="PEM certificate (enables TLS)"
    )
    p.add_argument("--tls-key", type=argtypes.path, metavar="FILE", help="PEM private key")
    _monitor_options(p)
    p.add_argument(
        "--repository-url",
        type=argtypes.web_url,
        metavar="URL",
        help="the config repository (https://...); the console links resources to it",
    )
    _limit_options(p)
    p.set_defaults(handler=cmd_serve)

    p = subparsers.add_parser("token", help="manage the API tokens of 'channelsync serve'")
    tokens = p.add_subparsers(dest="token_command", metavar="ACTION")
    tokens.required = True
    q = tokens.add_parser("add", help="create a token and print it once")
    q.add_argument("name")
    q.add_argument("--role", choices=TOKEN_ROLES, required=True)
    q.add_argument(
        "--tenant",
        action="append",
        metavar="NAME",
        help="a tenant the token reaches (repeatable; '*': every tenant; default: default)",
    )
    _tokens_option(q)
    q.set_defaults(handler=cmd_token_add)
    q = tokens.add_parser("list", help="list token names, roles and tenants")
    _tokens_option(q)
    q.set_defaults(handler=cmd_token_list)
    q = tokens.add_parser("revoke", help="revoke a token by name")
    q.add_argument("name")
    _tokens_option(q)
    q.set_defaults(handler=cmd_token_revoke)

    from channelsync.commands.tenants import add_parsers as add_tenant_parsers

    add_tenant_parsers(subparsers)


def _monitor_options(p: argparse.ArgumentParser) -> None:
    from channelsync.defaults import PROBE_TIMEOUT

    g = p.add_argument_group("monitor (docs/monitor.md)")
    g.add_argument(
        "--monitor-every",
        type=argtypes.duration,
        metavar="DURATION",
        help="test every enabled channel and SMTP server on this schedule (e.g. 5m, 30s)",
    )
    g.add_argument(
        "--monitor-concurrency",
        type=argtypes.positive_int,
        default=8,
        metavar="N",
        help="checks this server runs at the same time (default 8)",
    )
    g.add_argument(
        "--monitor-timeout",
        type=argtypes.positive_seconds,
        default=PROBE_TIMEOUT,
        metavar="S",
        help=f"seconds allowed per check (default {PROBE_TIMEOUT:g})",
    )
    g.add_argument(
        "--alert",
        action="append",
        default=[],
        metavar="[TENANT=]REF",
        help="send alerts to the apprise URL in this secret reference, e.g. "
        "'${env:ALERT_URL}' (repeatable)",
    )
    g.add_argument(
        "--alert-after",
        type=argtypes.positive_int,
        default=2,
        metavar="N",
        help="results in a row that confirm a change before it is alerted (default 2)",
    )


def _monitor(args: argparse.Namespace, target: str) -> Any:
    """The monitor ``--monitor-every`` asks for (None without it); its alert URLs are read
    now, so a bad one stops the start."""
    if args.alert and not args.monitor_every:
        raise ChannelsyncError("--alert needs --monitor-every (alerts come from the monitor)")
    if not args.monitor_every:
        return None
    from channelsync.monitor.alerts import resolve_destinations
    from channelsync.monitor.service import Monitor, Settings

    settings = Settings(
        args.monitor_every,
        concurrency=args.monitor_concurrency,
        timeout=args.monitor_timeout,
        alert_after=args.alert_after,
        destinations=resolve_destinations(args.alert),
    )
    return Monitor(target, settings)


def _limit_options(p: argparse.ArgumentParser) -> None:
    """The bounds a hostile client meets (server/limits.py; defaults there, once)."""
    from channelsync.server import limits

    p.add_argument(
        "--max-body",
        type=argtypes.byte_count,
        default=limits.DEFAULT_MAX_BODY,
        metavar="BYTES",
        help=f"largest request body; larger ones get 413 (default: {limits.DEFAULT_MAX_BODY})",
    )
    p.add_argument(
        "--max-connections",
        type=argtypes.positive_int,
        default=limits.DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="open connections at most; a new one closes the longest idle one "
        f"(default: {limits.DEFAULT_MAX_CONNECTIONS})",
    )
    p.add_argument(
        "--request-timeout",
        type=argtypes.positive_seconds,
        default=limits.DEFAULT_REQUEST_TIMEOUT,
        metavar="SECONDS",
        help="time for a whole request (headers and body) to arrive "
        f"(default: {limits.DEFAULT_REQUEST_TIMEOUT:g})",
    )
    p.add_argument(
        "--metrics-token-file",
        type=argtypes.path,
        metavar="FILE",
        help="a file holding a token for GET /metrics alone (or set CHANNELSYNC_METRICS_TOKEN); "
        "API tokens are accepted too",
    )
    p.add_argument(
        "--fingerprint-rate",
        type=argtypes.per_minute,
        default=limits.DEFAULT_FINGERPRINT_RATE,
        metavar="N",
        help="secret values each token may fingerprint a minute; more get 429 "
        f"(default: {limits.DEFAULT_FINGERPRINT_RATE})",
    )


def cmd_token_add(args: argparse.Namespace) -> int:
    from channelsync.server import tokens

    scope = args.tenant or [DEFAULT_TENANT]
    token = tokens.add(args.tokens, args.name, args.role, scope)
    print(token)
    print(
        f"Token '{args.name}' ({args.role}, tenants: {', '.join(scope)}) added to "
        f"{args.tokens}. It is shown only now; "
        "store it as CHANNELSYNC_TOKEN in your CI secrets.",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace) -> int:
    from channelsync.render.tokens import text
    from channelsync.server import tokens

    entries = tokens.load(args.tokens)
    if not entries:
        print(f"no tokens in {args.tokens}", file=sys.stderr)
        return EXIT_OK
    sys.stdout.write(text(entries))
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from channelsync.server import tokens

    tokens.revoke(args.tokens, args.name)
    print(f"Token '{args.name}' revoked; the server stops accepting it at once.", file=sys.stderr)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from channelsync.console import drift
    from channelsync.server import limits, tokens
    from channelsync.server.accesslog import AccessLog, access_log
    from channelsync.server.app import create_app
    from channelsync.server.metrics import RequestMetrics
    from channelsync.server.store import KEY_FILE_NEEDED, Store
    from channelsync.targets.http import is_loopback
    from channelsync.targets.postgresql import is_postgres_url, redact

    target = _store_url(args)
    if args.migrate:
        return _migrate(target)
    if is_postgres_url(target):
        if args.key_file is None:
            raise ChannelsyncError(KEY_FILE_NEEDED)
        if args.monitor_every:
            raise ChannelsyncError(MONITOR_NEEDS_SQLITE)
        if args.migrate_on_start:
            _migrate(target)
    _check_bind_address(args.host, args.port)
    if not tokens.load(args.tokens):
        raise ChannelsyncError(
            f"refusing to start without tokens: {args.tokens} has none. Create one with: "
            f"channelsync token add NAME --role write --tokens {args.tokens}"
        )
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ChannelsyncError("--tls-cert and --tls-key go together")
    if args.tls_cert:
        _check_tls(args.tls_cert, args.tls_key)
    # a path, schema or key file it cannot use is refused before the server starts
    Store(target, key_file=args.key_file).close()
    monitor = _monitor(args, target)
    scheme = "https" if args.tls_cert else "http"
    if scheme == "http" and not is_loopback(args.host):
        print(
            f"WARNING: serving plain http on {args.host}: clients refuse to send tokens and "
            "secrets over it; use --tls-cert/--tls-key or a TLS-terminating proxy",
            file=sys.stderr,
        )
    sock = _listen(args.host, args.port)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.addFilter(limits.OncePerInterval(exempt=(access_log.name,)))
    app = create_app(
        target,
        args.tokens,
        fingerprint_rate=args.fingerprint_rate,
        metrics_hash=_metrics_hash(args.metrics_token_file),
        repository_url=args.repository_url,
        key_file=args.key_file,
    )
    if monitor is not None:
        from channelsync.monitor import routes

        routes.install(app, app.state.ctx, monitor)
    print(
        f"channelsync serve: {redact(target)} on {scheme}://{args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        AccessLog(RequestMetrics(limits.Guard(app, args.max_body, larger=drift.LARGER_BODIES))),
        http=limits.protocol(limits.connection_limit(args.max_connections), args.request_timeout),
        timeout_keep_alive=limits.KEEP_ALIVE_SECONDS,
        backlog=limits.ACCEPT_BATCH,
        h11_max_incomplete_event_size=limits.MAX_HEADER_BYTES,
        ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
        ssl_keyfile=str(args.tls_key) if args.tls_key else None,
        log_config=None,
        access_log=False,
        server_header=False,
    )
    try:
        _server_class()(config).run(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits 3 when it cannot start; errors here exit 1
        if exc.code not in (0, None):
            return EXIT_ERROR
    print("channelsync serve: stopped", file=sys.stderr)
    return EXIT_OK


def _metrics_hash(path: Path | None) -> str | None:
    """The hash of the metrics token, read from ``path`` or the environment (never an
    argument: the command line is visible to every user of the machine)."""
    from channelsync.server.metrics import METRICS_TOKEN_ENV
    from channelsync.server.tokens import digest

    token = os.environ.get(METRICS_TOKEN_ENV, "")
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ChannelsyncError(f"--metrics-token-file {path}: {reason}") from None
        if not token:
            raise ChannelsyncError(f"--metrics-token-file {path} is empty; put the token in it")
    return digest(token) if token else None


def _store_url(args: argparse.Namespace) -> str:
    """--store, else $CHANNELSYNC_STORE, else --target (and its own default); checked here,
    before anything starts. A postgresql:// URL may carry a password (it is never shown);
    a sqlite:/// one carries no credentials."""
    from channelsync.targets import refuse_credentials, target_url
    from channelsync.targets.postgresql import is_postgres_url
    from channelsync.targets.sqlite import path_from_url

    if args.store and args.target:
        raise ChannelsyncError("--store and --target both name the store to serve; give one")
    url: str = args.store or argtypes.from_env(STORE_ENV) or target_url(args.target)
    if is_postgres_url(url):
        return url
    refuse_credentials(url)
    if not url.lower().startswith("sqlite:"):
        raise ChannelsyncError(
            f"serve needs a sqlite:///PATH or postgresql://USER@HOST/DB store (e.g. "
            f"{DEFAULT_TARGET}), not a '{url.split(':', 1)[0]}' URL"
        )
    path_from_url(url)
    return url


def _migrate(url: str) -> int:
    """Create or upgrade the store's schema (a sqlite store: by opening it)."""
    from channelsync.server.store import Store
    from channelsync.targets.postgresql import PostgresStore, is_postgres_url, redact

    if not is_postgres_url(url):
        Store(url).close()
        print(f"channelsync serve: {url} is up to date", file=sys.stderr)
        return EXIT_OK
    store = PostgresStore(url)
    try:
        applied = store.migrate()
    finally:
        store.close()
    done = f"applied migration(s) {', '.join(map(str, applied))}" if applied else "up to date"
    print(f"channelsync serve: {redact(url)}: schema {done}", file=sys.stderr, flush=True)
    return EXIT_OK


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts, so a busy port is one clear error."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ChannelsyncError(
            f"cannot serve on {host}:{port}: {os.strerror(exc.errno) if exc.errno else exc}; "
            "stop the process that "
            "uses it or choose another --port"
        ) from None


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but SIGTERM is a clean stop (exit 0), not re-raised at the end."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            import signal

            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM:
                self._captured_signals.remove(sig)

    return Server


def _check_bind_address(host: str, port: int) -> None:
    """A host that does not resolve, or is not this machine's, is a usage error, not uvicorn's
    startup failure (exit 3). Bound on a free port: whether ``port`` is taken is not asked here."""
    import socket

    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in found:
            with socket.socket(family, kind, proto) as probe:
                probe.bind((address[0], 0, *address[2:]))
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a valid name"
        raise ChannelsyncError(
            f"--host '{host}' cannot be bound: {reason}; use an IP address of this machine "
            "(127.0.0.1, or 0.0.0.0 for all interfaces)"
        ) from None


def _check_tls(cert: Path, key: Path) -> None:
    """The certificate and key load now, not inside uvicorn (which reports no file name)."""
    import ssl

    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not path.is_file():
            raise ChannelsyncError(f"{flag} {path}: no such file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ValueError):
        raise ChannelsyncError(
            f"--tls-cert {cert} and --tls-key {key} do not load as a PEM certificate and the "
            "private key of that certificate"
        ) from None


def main(argv: list[str] | None = None) -> int:
    """``python -m channelsync.server serve|token ...``: the same commands without the full CLI."""
    parser = argtypes.Parser(prog="channelsync")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except ChannelsyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code
