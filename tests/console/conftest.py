"""A real `channelsync serve` over a tenant applied from YAML, the real mail servers, and
headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from channelsync.server import tokens
from tests import mailservers

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
REPOSITORY_URL = "https://git.example.test/acme/channels"
WRONG_PASSWORD = "Wrong-Secret-42x"
# every secret value the tenant holds: no page or response may contain one
SECRETS = {
    "CONSOLE_GOOD_PASSWORD": mailservers.PASSWORD,
    "CONSOLE_WRONG_PASSWORD": WRONG_PASSWORD,
    "CONSOLE_OTHER_PASSWORD": "other-Pa55-9c1e77",
}
# the channels of the list tests: names with numbers (natural sort), every protocol
OTHERS = [
    ("Team 2", "team2@acme.test", "imap-ssl", "imap.acme.test", True),
    ("Team 10", "team10@acme.test", "pop3", "pop.acme.test", False),
    ("Sales Europe", "sales.eu@acme.test", "pop3-ssl", "pop.acme.test", True),
    ("Sales Asia", "sales.asia@acme.test", "imap", "mail.acme.test", True),
    ("Billing", "billing@acme.test", "imap-ssl", "imap.acme.test", False),
]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """In CI a missing browser or server fails the test; on a developer's machine it skips."""
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def _channel(name: str, email: str, protocol: str, host: str, port: int, enabled: bool,
             password: str, ca: Path, outgoing: str) -> str:  # fmt: skip
    return f"""\
kind: EmailChannel
name: {name}
email: {email}
script: Support Script
enabled: {str(enabled).lower()}
incoming:
  server: {host}
  protocol: {protocol}
  port: {port}
  user: {mailservers.USER}
  password: ${{env:{password}}}
  tls:
    ca_file: {ca}
{outgoing}"""


def write_config(folder: Path, mail: mailservers.MailServers) -> None:
    ca = mail.ca_file
    folder.mkdir(parents=True)
    (folder / "shared.yaml").write_text(f"""\
kind: SmtpServer
name: Test Relay
host: localhost
security: starttls
port: {mail.ports["submission"]}
user: {mailservers.USER}
password: ${{env:CONSOLE_GOOD_PASSWORD}}
tls:
  ca_file: {ca}
---
kind: SmtpServer
name: Backup Relay
host: relay.acme.test
security: ssl
port: 465
user: backup@acme.test
password: ${{env:CONSOLE_OTHER_PASSWORD}}
---
kind: EmailScript
name: Support Script
queues: [Support, Sales]
---
kind: Agent
name: Dana Agent
email: dana@acme.test
outgoing:
  server: Backup Relay
  override: true
---
kind: Agent
name: Eli Agent
email: eli@acme.test
""")
    relay = "outgoing:\n  server: Test Relay\n"
    good = _channel("Good Channel", "support@acme.test", "imap-ssl", "localhost",
                    mail.ports["imaps"], True, "CONSOLE_GOOD_PASSWORD", ca, relay)  # fmt: skip
    bad = _channel("Bad Channel", "sales@acme.test", "imap-ssl", "localhost",
                   mail.ports["imaps"], True, "CONSOLE_WRONG_PASSWORD", ca, relay)  # fmt: skip
    (folder / "good.yaml").write_text(good)
    (folder / "bad.yaml").write_text(bad)
    override = (
        "outgoing:\n  server: Backup Relay\n  override: true\n  user: o@acme.test\n"
        "  password: ${env:CONSOLE_OTHER_PASSWORD}\n"
    )
    for i, (name, email, protocol, host, enabled) in enumerate(OTHERS):
        port = {"imap": 143, "imap-ssl": 993, "pop3": 110, "pop3-ssl": 995}[protocol]
        outgoing = override if i % 2 else ""
        text = _channel(name, email, protocol, host, port, enabled, "CONSOLE_OTHER_PASSWORD",
                        ca, outgoing)  # fmt: skip
        (folder / f"other-{i}.yaml").write_text(text)


class Served:
    """`channelsync serve` with a write and a read token over an applied tenant."""

    def __init__(self, root: Path, mail: mailservers.MailServers) -> None:
        self.root = root
        self.port = mailservers.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = root / "tenant.db"
        self.tokens = root / "tokens.json"
        self.log = root / "serve.log"
        self.write_token = tokens.add(self.tokens, "console-write", "write")
        self.read_token = tokens.add(self.tokens, "console-read", "read")
        self.env = {**os.environ, **SECRETS}
        write_config(root / "channels.d", mail)
        applied = subprocess.run(
            [sys.executable, "-m", "channelsync", "apply", "--dir", str(root / "channels.d"),
             "--target", f"sqlite:///{self.db}", "--auto-approve", "--skip-connection-tests"],
            capture_output=True, text=True, env=self.env, timeout=120,
        )  # fmt: skip
        assert applied.returncode == 0, applied.stderr
        argv = [sys.executable, "-m", "channelsync.server", "serve", "--target",
                f"sqlite:///{self.db}", "--port", str(self.port), "--tokens", str(self.tokens),
                "--repository-url", REPOSITORY_URL]  # fmt: skip
        serve_env = {k: v for k, v in os.environ.items() if k not in SECRETS}
        # tls.ca_file is the config's own setting, never stored in a tenant: the server trusts
        # its system's CAs, here the test CA through SSL_CERT_FILE
        serve_env["SSL_CERT_FILE"] = str(mail.ca_file)
        with self.log.open("ab") as log:  # the server knows the secrets only from its store
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=serve_env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/v1/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("channelsync serve did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    @contextlib.contextmanager
    def session(self, token: str) -> Iterator[httpx.Client]:
        """An HTTP client signed in to the console with ``token`` (no browser)."""
        with httpx.Client(base_url=self.url, follow_redirects=False, timeout=60) as client:
            form = client.get("/sign-in")
            signed = client.post("/sign-in", data={"csrf": csrf_of(form.text), "token": token})
            assert signed.status_code == 303, signed.text
            yield client


def csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


@pytest.fixture(scope="session")
def mail() -> Iterator[mailservers.MailServers]:
    missing = mailservers.missing_binaries()
    if missing:
        unavailable(f"mail server binaries not installed: {', '.join(missing)} (see .ci/run)")
    servers = mailservers.start()
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="module")
def served(
    mail: mailservers.MailServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("console"), mail)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()):
        unavailable("chromium and chromium-driver are not installed (apt-get; see .ci/run)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,900", "--disable-extensions", "--no-first-run",
                 # tests never touch the internet: none of Chromium's own background calls
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps", "--no-default-browser-check",
                 "--disable-features=Translate,OptimizationHints,MediaRouter"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.artefacts = tmp_path_factory.mktemp("console-screenshots")
    try:
        yield driver
    finally:
        driver.quit()
