"""The mail-server fixture itself: without root it fails with one clear line, not a traceback."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests import mailservers
from tests.dnsserver import DnsServer

REPO = Path(__file__).resolve().parent.parent.parent


def test_permission_error_is_a_clear_failure_and_cleans_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def chown(path: object, uid: int, gid: int) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted", str(path))

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(os, "chown", chown)
    with pytest.raises(pytest.fail.Exception) as failed:
        mailservers.start()
    message = str(failed.value)
    assert message.startswith("the mail-server fixture must run as root: [Errno 1] ")
    assert message.endswith(" (CI runs .ci/run with sudo)")
    assert "\n" not in message
    assert failed.value.pytrace is False  # the message alone, no traceback
    assert list(tmp_path.iterdir()) == []  # the state folder is gone


_CHILD = textwrap.dedent("""\
    import sys
    sys.path[:0] = [{repo!r}, {src!r}]
    from tests import mailservers
    try:
        servers = mailservers.start()
    except BaseException as exc:
        print(type(exc).__name__, getattr(exc, "pytrace", None), exc, sep="|")
    else:
        servers.stop()
        print("started")
""")


@pytest.mark.parametrize(
    ("uid", "cause"),
    [
        # GitHub's runner user: the chown to the mailbox owner fails (PermissionError)
        (1001, "[Errno 1] Operation not permitted: "),
        # the mailbox owner itself: the chown works, Dovecot refuses to start
        (65534, "Command '['dovecot', "),
    ],
)
def test_unprivileged_user_gets_the_clear_failure(tmp_path: Path, uid: int, cause: str) -> None:
    """For real: the fixture run as a user without root (dropped to ``uid`` when we are root)."""
    if uid == 65534 and mailservers.missing_binaries():
        pytest.skip("dovecot is not installed")
    code = _CHILD.format(repo=str(REPO), src=str(REPO / "src"))
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is needed to drop root")
        tmp_path.chmod(0o777)
        prefix = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    elif uid != 1001:
        pytest.skip("not root: runs once, as the current user")
    else:
        prefix = []
    done = subprocess.run(
        [*prefix, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr
    kind, pytrace, message = done.stdout.strip().split("|")
    assert kind == "Failed" and pytrace == "False", done.stdout
    assert message.startswith("the mail-server fixture must run as root: ")
    assert message.endswith(" (CI runs .ci/run with sudo)")
    if prefix:
        assert cause in message
    assert not list(tmp_path.glob("channelsync-mail-*"))


def _servers_command(action: str, pointer: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, mailservers.POINTER_ENV: str(pointer)}
    return subprocess.run(
        [sys.executable, "-m", "tests.mailservers", action],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_start_prints_a_config_that_channelsync_test_passes_and_stop_stops(
    tmp_path: Path,
) -> None:
    """The README's "Try the connection tests locally", for real."""
    if mailservers.missing_binaries():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("mail server binaries not installed (see .ci/run)")
        pytest.skip("mail server binaries not installed")
    if os.geteuid() != 0:
        pytest.skip(mailservers.NEEDS_ROOT)
    pointer = tmp_path / "mailservers.json"
    started = _servers_command("start", pointer)
    assert started.returncode == 0, started.stderr
    state = Path(json.loads(pointer.read_text())["state"])
    try:
        out = started.stdout.splitlines()
        assert out[0] == "Test mail servers are running on localhost (Dovecot and Postfix):"
        assert [line.split(" port ")[0].strip() for line in out[1:7]] == [
            "IMAP with STARTTLS",
            "IMAP over SSL",
            "POP3 with STLS",
            "POP3 over SSL",
            "SMTP with STARTTLS",
            "SMTP over SSL",
        ]
        assert out[7] == (
            "  user testuser@example.test, password testpass (a test account; mailbox with 2 "
            "messages)"
        )
        assert out[8] == f"  CA certificate: {state}/certs/ca.crt (use it as tls.ca_file)"
        config = state / "channels.d"
        assert out[-2:] == [
            f"  LOCAL_MAIL_PASSWORD=testpass channelsync test --dir {config}",
            "Stop the servers with: python -m tests.mailservers stop",
        ]
        assert (config / "local.yaml").read_text() in started.stdout
        assert _servers_command("start", pointer).stderr == (
            f"error: already running (state in {state}); stop them first with: "
            "python -m tests.mailservers stop\n"
        )
        tested = subprocess.run(
            [sys.executable, "-m", "channelsync", "test", "--dir", str(config)],
            env={**os.environ, "LOCAL_MAIL_PASSWORD": "testpass"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert tested.stdout.endswith("\n3 passed, 0 failed\n")
    finally:
        stopped = _servers_command("stop", pointer)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == "Test mail servers stopped.\n"
    assert not state.exists()
    again = _servers_command("stop", pointer)
    assert again.returncode == 1
    assert again.stderr == "error: no test mail servers are running (nothing to stop)\n"


def test_postfix_delivers_the_acme_domain_into_the_dovecot_mailbox(
    mail: mailservers.MailServers,
) -> None:
    import smtplib
    import ssl
    import time

    ctx = ssl.create_default_context(cafile=str(mail.ca_file))
    with smtplib.SMTP("localhost", mail.ports["submission"], timeout=10) as client:
        client.starttls(context=ctx)
        client.login(mailservers.USER, mailservers.PASSWORD)
        client.sendmail(
            "sales@acme.test", ["sales@acme.test"], b"Subject: fixture\r\n\r\ndelivered\r\n"
        )
    new = mail.maildir("sales@acme.test") / "new"
    deadline = time.monotonic() + 10
    while not (new.is_dir() and any(new.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    [delivered] = list(new.iterdir())
    message = delivered.read_bytes()
    assert b"\nDelivered-To: sales@acme.test\n" in message
    assert b"\nSubject: fixture\n" in message
    assert message.endswith(b"\n\ndelivered\n")


def test_dnsmasq_serves_the_test_zone(dns_server: DnsServer) -> None:
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = ["127.0.0.1"], dns_server.port
    assert [r.to_text() for r in resolver.resolve("acme.test", "MX")] == ["10 mail.acme.test."]
    assert [r.to_text() for r in resolver.resolve("1.0.0.127.in-addr.arpa", "PTR")] == [
        "mail.acme.test."
    ]
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("unknown.test", "A")
