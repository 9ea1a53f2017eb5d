"""Real mail servers on loopback for the connection tests and the benchmark.

Dovecot (IMAP, IMAPS, POP3, POP3S; passwords and XOAUTH2 through an oauth2 passdb), Postfix
(submission with STARTTLS, SMTPS, and a port without STARTTLS), a token-introspection IdP for
Dovecot and an Entra-ID-like token service for msal, all on free ports under one state folder.
Settings follow /work/shared/recipes/mail-servers.md (anvil penalty off, Postfix quick start).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
import trustme

USER = "testuser@example.test"
PASSWORD = "testpass"
GOOD_TOKEN = "good-token-123"
TOKENS = {GOOD_TOKEN: USER, "other-user-token": "someoneelse@example.test"}
TENANT = "test-tenant"
# client_id -> (client secret, access token it gets)
CLIENTS = {"good-client": ("good-secret", GOOD_TOKEN), "other-client": ("other-secret", "x")}
BINARIES = ("dovecot", "postfix")
INBOX_MESSAGES = 2
# Postfix delivers mail for this domain into Dovecot (dovecot-lda); other domains are discarded.
DELIVERED_DOMAIN = "acme.test"
ACME_USERS = tuple(
    f"{name}@acme.test" for name in ("support", "sales", "backlog", "cleanup", "quiet", "pop")
)
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"
NEEDS_ROOT = "the mail-server fixture must run as root"
CI_NOTE = "(CI runs .ci/run with sudo)"


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.02)


# --- HTTP services in threads --------------------------------------------------------------


class _Json(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        pairs = urllib.parse.parse_qs(self.rfile.read(length).decode())
        return {k: v[0] for k, v in pairs.items()}

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Introspection(_Json):
    """RFC 7662 introspection, as Dovecot's oauth2 passdb calls it."""

    def do_POST(self) -> None:
        user = TOKENS.get(self.form().get("token", ""))
        self.reply(200, {"active": True, "username": user} if user else {"active": False})


class _TokenService(_Json):
    """Enough of Entra ID for msal: OpenID discovery and the client-credentials grant."""

    def do_GET(self) -> None:
        tenant = self.path.strip("/").split("/")[0]
        if tenant != TENANT or not self.path.endswith("/.well-known/openid-configuration"):
            self.reply(
                400,
                {
                    "error": "invalid_tenant",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                },
            )
            return
        port = cast("tuple[str, int]", self.server.server_address)[1]
        base = f"https://localhost:{port}/{tenant}"
        self.reply(
            200,
            {
                "issuer": f"{base}/v2.0",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            },
        )

    def do_POST(self) -> None:
        form = self.form()
        client = CLIENTS.get(form.get("client_id", ""))
        if client is None:
            self.reply(
                400,
                {
                    "error": "unauthorized_client",
                    "error_description": "AADSTS700016: Application with identifier "
                    f"'{form.get('client_id')}' was not found in the directory.",
                    "error_codes": [700016],
                },
            )
        elif form.get("client_secret") != client[0]:
            self.reply(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. "
                    "Ensure the secret being sent in the request is the client secret value.",
                    "error_codes": [7000215],
                },
            )
        else:
            self.reply(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": client[1]})


def _serve(
    handler: type[BaseHTTPRequestHandler], ctx: ssl.SSLContext | None
) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if ctx is not None:
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True, name=handler.__name__).start()
    return server


# --- the servers ------------------------------------------------------------------------------


@dataclass
class MailServers:
    state: Path
    ca: trustme.CA
    ports: dict[str, int] = field(default_factory=dict)
    _http: list[ThreadingHTTPServer] = field(default_factory=list)
    _pids: list[int] = field(default_factory=list)

    @property
    def ca_file(self) -> Path:
        return self.state / "certs" / "ca.crt"

    @property
    def authority(self) -> str:
        return f"https://localhost:{self.ports['token']}"

    def issue(self, name: str, *hosts: str, **kwargs: Any) -> ssl.SSLContext:
        """A server-side TLS context with a leaf for ``hosts`` (kwargs: not_after, ...)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*hosts, **kwargs).configure_cert(ctx)
        return ctx

    def maildir(self, address: str) -> Path:
        local, domain = address.split("@")
        return self.state / "mail" / domain / local / "Maildir"

    def stop(self) -> None:
        for server in self._http:
            server.shutdown()
            server.server_close()
        self._http.clear()
        _stop_daemons(self.state, self._pids)


def _stop_daemons(state: Path, pids: list[int]) -> None:
    """Stop Dovecot and Postfix (their master pid files are in ``state``), then remove it."""
    for pidfile in (
        state / "dovecot" / "run" / "master.pid",
        state / "postfix" / "spool" / "pid" / "master.pid",
    ):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, 15)
            pids.append(pid)
    deadline = time.monotonic() + 5
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    shutil.rmtree(state, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def start(*, max_connections: int = 1000) -> MailServers:
    """Start everything; the caller must call ``stop()``.

    Needs root: the mailbox is chowned to the static userdb's uid, Postfix's queue to the
    postfix user, and Dovecot and ``postfix start`` refuse anyone else. Without it the test
    fails with one line saying so (``NEEDS_ROOT``), not a traceback.
    """
    state = Path(tempfile.mkdtemp(prefix="channelsync-mail-"))
    state.chmod(0o755)
    servers = MailServers(state, trustme.CA())
    try:
        _start(servers, max_connections)
    except (PermissionError, subprocess.CalledProcessError) as exc:
        servers.stop()
        # dovecot/postfix exiting non-zero for a non-root user is the same problem (a user
        # whose uid is the mailbox owner's gets past the chown and fails there)
        if isinstance(exc, PermissionError) or os.geteuid() != 0:
            pytest.fail(f"{NEEDS_ROOT}: {exc} {CI_NOTE}", pytrace=False)
        raise
    except BaseException:
        servers.stop()
        raise
    return servers


def _start(servers: MailServers, max_connections: int) -> None:
    s = servers.state
    for folder in ("certs", "dovecot", "postfix/etc", "postfix/spool", "postfix/data", "logs"):
        (s / folder).mkdir(parents=True)
    leaf = servers.ca.issue_cert("localhost", "127.0.0.1")
    servers.ca.cert_pem.write_to_path(str(servers.ca_file))
    leaf.private_key_pem.write_to_path(str(s / "certs" / "server.key"))
    (s / "certs" / "server.crt").write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    (s / "certs" / "server.key").chmod(0o600)

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)
    servers._http.append(_serve(_Introspection, None))
    servers._http.append(_serve(_TokenService, ctx))
    servers.ports["idp"] = servers._http[0].server_address[1]
    servers.ports["token"] = servers._http[1].server_address[1]
    for name in ("imap", "imaps", "pop3", "pop3s", "submission", "smtps", "smtp_plain"):
        servers.ports[name] = free_port()

    _mailbox(s)
    _start_dovecot(servers, max_connections)
    _start_postfix(servers)
    for name in ("imap", "imaps", "pop3", "pop3s", "submission", "smtps", "smtp_plain"):
        wait_for_port(servers.ports[name])


def _mailbox(s: Path) -> None:
    new = s / "mail" / "example.test" / "testuser" / "Maildir" / "new"
    for folder in ("cur", "new", "tmp"):
        (new.parent / folder).mkdir(parents=True)
    for i in range(INBOX_MESSAGES):
        (new / f"{1700000000 + i}.M{i}P1.test").write_text(
            f"From: a@example.test\nTo: {USER}\nSubject: message {i}\n\nbody {i}\n"
        )
    for path in [s / "mail", *(s / "mail").rglob("*")]:
        os.chown(path, 65534, 65534)


def _start_dovecot(servers: MailServers, max_connections: int) -> None:
    s, p = servers.state, servers.ports
    d = s / "dovecot"
    (d / "passwd").write_text(
        "".join(f"{user}:{{PLAIN}}{PASSWORD}\n" for user in (USER, *ACME_USERS))
    )
    # the LDA runs as the pipe's user (nobody): a config of its own without the root-only key
    (d / "lda.conf").write_text(
        f"base_dir = {d}/run\nmail_location = maildir:{s}/mail/%d/%n/Maildir:INDEX=MEMORY\n"
        f"log_path = {s}/logs/lda.log\nssl = no\n"
    )
    (s / "logs" / "lda.log").touch()
    os.chown(s / "logs" / "lda.log", 65534, 65534)
    (d / "oauth2.conf.ext").write_text(
        "introspection_mode = post\n"
        f"introspection_url = http://127.0.0.1:{p['idp']}/introspect\n"
        "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
    )
    (d / "dovecot.conf").write_text(f"""\
protocols = imap pop3
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
instance_name = channelsync-test-{os.getpid()}-{p["imap"]}
log_path = {s}/logs/dovecot.log
info_log_path = {s}/logs/dovecot.log
ssl = yes
ssl_cert = <{s}/certs/server.crt
ssl_key = <{s}/certs/server.key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
mail_location = maildir:{s}/mail/%d/%n/Maildir:INDEX=MEMORY
default_process_limit = {max_connections}
default_client_limit = {max_connections * 2}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%Lu {d}/passwd
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {d}/oauth2.conf.ext
}}
userdb {{
  driver = static
  args = allow_all_users=yes uid=65534 gid=65534 home={s}/mail/%d/%n
}}
protocol imap {{
  mail_max_userip_connections = {max_connections}
}}
protocol pop3 {{
  mail_max_userip_connections = {max_connections}
}}
# high-performance mode: long-lived login and mail processes (the benchmark opens hundreds)
service imap-login {{
  service_count = 0
  process_min_avail = 2
  inet_listener imap {{
    port = {p["imap"]}
  }}
  inet_listener imaps {{
    port = {p["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  service_count = 0
  process_min_avail = 1
  inet_listener pop3 {{
    port = {p["pop3"]}
  }}
  inet_listener pop3s {{
    port = {p["pop3s"]}
    ssl = yes
  }}
}}
service imap {{
  service_count = 1000
  process_min_avail = 4
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0666
  }}
  unix_listener auth-userdb {{
    mode = 0666
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
""")
    with open(s / "logs" / "dovecot.stderr", "ab") as err:
        subprocess.run(
            ["dovecot", "-c", str(d / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            check=True,
            timeout=30,
        )


def _start_postfix(servers: MailServers) -> None:
    import pwd

    s, p = servers.state, servers.ports
    etc, spool = s / "postfix" / "etc", s / "postfix" / "spool"
    (etc / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {s}/postfix/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {s}/logs
maillog_file = {s}/logs/postfix.log
myhostname = localhost
mydomain = localdomain
myorigin = $myhostname
mydestination =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
local_recipient_maps =
smtputf8_enable = no
biff = no
default_transport = discard:test sink
relay_transport = discard:test sink
local_transport = discard:test sink
virtual_mailbox_domains = {DELIVERED_DOMAIN}
virtual_mailbox_maps = static:ok
virtual_transport = dovecot
smtpd_banner = $myhostname ESMTP test server
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
smtpd_tls_cert_file = {s}/certs/server.crt
smtpd_tls_key_file = {s}/certs/server.key
smtpd_tls_security_level = may
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {s}/dovecot/run/auth-postfix
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 100
smtpd_client_auth_rate_limit = 0
""")
    (etc / "master.cf").write_text(f"""\
{p["submission"]} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
{p["smtps"]} inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
{p["smtp_plain"]} inet n - n - - smtpd
  -o syslog_name=postfix/plain
  -o smtpd_tls_security_level=none
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
dovecot   unix  -       n       n       -       -       pipe
  flags=DRhu user=nobody:nogroup argv={DOVECOT_LDA} -c {s}/dovecot/lda.conf
  -f ${{sender}} -d ${{recipient}}
""")
    postfix = pwd.getpwnam("postfix")
    import grp

    postdrop = grp.getgrnam("postdrop").gr_gid
    os.chown(s / "postfix" / "data", postfix.pw_uid, -1)
    for q in (
        "active",
        "bounce",
        "corrupt",
        "defer",
        "deferred",
        "flush",
        "hold",
        "incoming",
        "private",
        "saved",
        "trace",
    ):
        (spool / q).mkdir(mode=0o700)
        os.chown(spool / q, postfix.pw_uid, 0)
    for q, mode in (("maildrop", 0o730), ("public", 0o710), ("pid", 0o755)):
        (spool / q).mkdir()
        (spool / q).chmod(mode)
        if q != "pid":
            os.chown(spool / q, postfix.pw_uid, postdrop)
    (spool / "quick-start").touch()
    old = time.time() - 10
    for name in ("main.cf", "master.cf"):
        os.utime(etc / name, (old, old))
    subprocess.run(
        ["postfix", "-c", str(etc), "start"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=30,
    )


# --- `python -m tests.mailservers start|stop`: the same servers for trying `channelsync test` ---

POINTER_ENV = "CHANNELSYNC_MAILSERVERS_STATE"  # where start records the running servers
SECRET_ENV = "LOCAL_MAIL_PASSWORD"
_LISTED = (
    ("imap", "IMAP with STARTTLS"),
    ("imaps", "IMAP over SSL"),
    ("pop3", "POP3 with STLS"),
    ("pop3s", "POP3 over SSL"),
    ("submission", "SMTP with STARTTLS"),
    ("smtps", "SMTP over SSL"),
)
LOCAL_CONFIG = """\
kind: EmailChannel
name: Local Test Channel
email: {user}
incoming:
  server: localhost
  protocol: imap-ssl
  port: {imaps}
  user: {user}
  password: ${{env:{secret}}}
  tls: {{ca_file: {ca}}}
outgoing:
  server: Local Test Relay
  override: true
  password: ${{env:{secret}}}
---
kind: SmtpServer
name: Local Test Relay
host: localhost
port: {submission}
security: starttls
user: {user}
password: ${{env:{secret}}}
tls: {{ca_file: {ca}}}
"""


def _pointer() -> Path:
    default = Path(__file__).resolve().parent.parent / ".channelsync" / "mailservers.json"
    return Path(os.environ.get(POINTER_ENV) or default)


def _running() -> Path | None:
    try:
        state = Path(json.loads(_pointer().read_text())["state"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if state.is_dir() else None


def cli_start() -> int:
    missing = missing_binaries()
    if missing:
        print(
            f"error: not installed: {', '.join(missing)}; install dovecot-imapd, dovecot-pop3d "
            "and postfix (as .ci/run does)",
            file=sys.stderr,
        )
        return 1
    running = _running()
    if running is not None:
        print(
            f"error: already running (state in {running}); stop them first with: "
            "python -m tests.mailservers stop",
            file=sys.stderr,
        )
        return 1
    try:
        servers = start()
    except pytest.fail.Exception as exc:  # start() reports a missing root this way
        print(f"error: {exc.msg}", file=sys.stderr)
        return 1
    config = servers.state / "channels.d" / "local.yaml"
    config.parent.mkdir()
    p = servers.ports
    yaml = LOCAL_CONFIG.format(user=USER, secret=SECRET_ENV, ca=servers.ca_file, **p)
    config.write_text(yaml, encoding="utf-8")
    _pointer().parent.mkdir(parents=True, exist_ok=True)
    _pointer().write_text(json.dumps({"state": str(servers.state)}) + "\n", encoding="utf-8")
    lines = ["Test mail servers are running on localhost (Dovecot and Postfix):"]
    lines += [f"  {label:<19} port {p[name]}" for name, label in _LISTED]
    lines += [
        f"  user {USER}, password {PASSWORD} (a test account; mailbox with "
        f"{INBOX_MESSAGES} messages)",
        f"  CA certificate: {servers.ca_file} (use it as tls.ca_file)",
        "",
        f"A config for them, in {config}:",
        "",
        yaml,
        "Try it:",
        f"  {SECRET_ENV}={PASSWORD} channelsync test --dir {config.parent}",
        "Stop the servers with: python -m tests.mailservers stop",
    ]
    print("\n".join(lines))
    return 0


def cli_stop() -> int:
    state = _running()
    if state is None:
        print("error: no test mail servers are running (nothing to stop)", file=sys.stderr)
        return 1
    _stop_daemons(state, [])
    _pointer().unlink(missing_ok=True)
    print("Test mail servers stopped.")
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tests.mailservers",
        description="Start or stop the test suite's Dovecot and Postfix on free loopback ports "
        "(as root), to try 'channelsync test' against real servers.",
    )
    parser.add_argument("action", choices=("start", "stop"))
    args = parser.parse_args(argv)
    return cli_start() if args.action == "start" else cli_stop()


if __name__ == "__main__":
    sys.exit(main())
