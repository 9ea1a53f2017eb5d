"""The `serve` and `token` subcommands; the CLI registers them with ``add_parsers``.

Only argument parsing lives at import time: FastAPI and uvicorn are imported inside
``cmd_serve``, so ``channelsync --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from channelsync.defaults import DEFAULT_TARGET
from channelsync.errors import ChannelsyncError
from channelsync.server.tokens import DEFAULT_TOKENS_FILE, ROLES

DEFAULT_PORT = 8765


def _tokens_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tokens",
        type=Path,
        default=DEFAULT_TOKENS_FILE,
        metavar="FILE",
        help=f"tokens file (default: {DEFAULT_TOKENS_FILE})",
    )


def add_parsers(subparsers: Any) -> None:
    """Register ``serve`` and ``token`` on the CLI's subparsers (argparse's _SubParsersAction)."""
    p = subparsers.add_parser("serve", help="serve a tenant store over the REST API")
    p.add_argument(
        "--target",
        metavar="URL",
        default=DEFAULT_TARGET,
        help=f"store to serve (default: {DEFAULT_TARGET})",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default: {DEFAULT_PORT}")
    _tokens_option(p)
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help="PEM certificate (enables TLS)")
    p.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key")
    p.set_defaults(handler=cmd_serve)

    p = subparsers.add_parser("token", help="manage the API tokens of 'channelsync serve'")
    tokens = p.add_subparsers(dest="token_command", metavar="ACTION")
    tokens.required = True
    q = tokens.add_parser("add", help="create a token and print it once")
    q.add_argument("name")
    q.add_argument("--role", choices=ROLES, required=True)
    _tokens_option(q)
    q.set_defaults(handler=cmd_token_add)
    q = tokens.add_parser("list", help="list token names and roles")
    _tokens_option(q)
    q.set_defaults(handler=cmd_token_list)
    q = tokens.add_parser("revoke", help="revoke a token by name")
    q.add_argument("name")
    _tokens_option(q)
    q.set_defaults(handler=cmd_token_revoke)


def cmd_token_add(args: argparse.Namespace) -> int:
    from channelsync.server import tokens

    token = tokens.add(args.tokens, args.name, args.role)
    print(token)
    print(
        f"Token '{args.name}' ({args.role}) added to {args.tokens}. It is shown only now; "
        "store it as CHANNELSYNC_TOKEN in your CI secrets.",
        file=sys.stderr,
    )
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from channelsync.server import tokens

    entries = tokens.load(args.tokens)
    if not entries:
        print(f"no tokens in {args.tokens}", file=sys.stderr)
        return 0
    width = max(len(e.name) for e in entries)
    for entry in entries:
        print(f"{entry.name:<{width}}  {entry.role:<5}  {entry.created}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from channelsync.server import tokens

    tokens.revoke(args.tokens, args.name)
    print(f"Token '{args.name}' revoked; the server stops accepting it at once.", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from channelsync.server import tokens
    from channelsync.server.accesslog import AccessLog
    from channelsync.server.app import create_app
    from channelsync.targets import refuse_credentials
    from channelsync.targets.http import is_loopback

    refuse_credentials(args.target)
    if not args.target.startswith("sqlite:"):
        raise ChannelsyncError(f"serve needs a sqlite:///PATH store, not {args.target}")
    if not tokens.load(args.tokens):
        raise ChannelsyncError(
            f"refusing to start without tokens: {args.tokens} has none. Create one with: "
            f"channelsync token add NAME --role write --tokens {args.tokens}"
        )
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ChannelsyncError("--tls-cert and --tls-key go together")
    scheme = "https" if args.tls_cert else "http"
    if scheme == "http" and not is_loopback(args.host):
        print(
            f"WARNING: serving plain http on {args.host}: clients refuse to send tokens and "
            "secrets over it; use --tls-cert/--tls-key or a TLS-terminating proxy",
            file=sys.stderr,
        )
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    app = create_app(args.target, args.tokens)
    print(
        f"channelsync serve: {args.target} on {scheme}://{args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        AccessLog(app),
        host=args.host,
        port=args.port,
        ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
        ssl_keyfile=str(args.tls_key) if args.tls_key else None,
        log_config=None,
        access_log=False,
        server_header=False,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m channelsync.server serve|token ...``: the same commands without the full CLI."""
    parser = argparse.ArgumentParser(prog="channelsync")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except ChannelsyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code
