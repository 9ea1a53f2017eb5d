"""The console under many tenants, over plain HTTP against a real `channelsync serve`: a
session is bound to a tenant its token reaches, other tenants' pages are 404 (as a tenant
that does not exist), Test connection and drift reports are per tenant."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from channelsync.server import tokens
from tests import mailservers
from tests.console.conftest import csrf_of
from tests.monitor.conftest import Serve, seed


class Tenants:
    def __init__(self, root: Path, mail: mailservers.MailServers) -> None:
        db = root / "tenant.db"
        port, ca = mail.ports["imaps"], mail.ca_file
        url = seed(db, ca, port, ["Default Support"])
        seed(db, ca, port, ["Acme Support"], tenant="acme")
        seed(db, ca, port, ["Globex Support"], tenant="globex")
        path = root / "tokens.json"
        self.acme = tokens.add(path, "acme-write", "write", ["acme"])
        self.operator = tokens.add(path, "operator", "read", ["*"])
        with pytest.MonkeyPatch.context() as patch:  # the server trusts the test CA
            patch.setenv("SSL_CERT_FILE", str(ca))
            self.server = Serve(root, url, path)


@pytest.fixture(scope="module")
def served(
    mail: mailservers.MailServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tenants]:
    found = Tenants(tmp_path_factory.mktemp("tenants"), mail)
    yield found
    found.server.stop()


@contextlib.contextmanager
def _client(served: Tenants) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.server.base, follow_redirects=False, timeout=60) as c:
        yield c


def _sign_in(client: httpx.Client, token: str, **form: str) -> httpx.Response:
    page = client.get("/sign-in", params={"next": form["next"]} if "next" in form else {})
    return client.post("/sign-in", data={"csrf": csrf_of(page.text), "token": token, **form})


def test_a_token_scoped_to_one_tenant_signs_in_to_that_tenant(served: Tenants) -> None:
    with _client(served) as client:
        signed = _sign_in(client, served.acme)
        assert signed.status_code == 303
        assert signed.headers["location"] == "/tenants/acme/channels"
        page = client.get("/tenants/acme/channels").text
        assert ">Acme Support</a>" in page
        assert "Default Support" not in page and "Globex Support" not in page
        assert '<strong id="tenant-name">acme</strong>' in page
        assert 'href="/tenants/acme/smtp-servers"' in page
        root = client.get("/channels/Acme%20Support?x=1")  # a root link: the session's tenant
        assert root.status_code == 303
        assert root.headers["location"] == "/tenants/acme/channels/Acme%20Support?x=1"


def test_another_tenant_s_pages_are_404_as_a_tenant_that_does_not_exist(
    served: Tenants,
) -> None:
    with _client(served) as client:
        _sign_in(client, served.acme)
        other = client.get("/tenants/globex/channels/Globex%20Support")
        missing = client.get("/tenants/nosuch/channels/Globex%20Support")
        assert other.status_code == missing.status_code == 404
        assert "no tenant &#39;globex&#39; on this server" in other.text
        assert other.text.replace("globex", "nosuch") == missing.text
        assert "Globex Support</" not in other.text
        csrf = csrf_of(client.get("/tenants/acme/channels").text)
        test = client.post("/tenants/globex/test/channels/Globex%20Support", data={"csrf": csrf})
        assert test.status_code == 404


def test_sign_in_to_a_tenant_the_token_does_not_reach_is_refused_as_no_tenant(
    served: Tenants,
) -> None:
    with _client(served) as client:
        refused = _sign_in(client, served.acme, tenant="globex")
        unknown = _sign_in(client, served.acme, tenant="nosuch")
        assert refused.status_code == unknown.status_code == 404
        assert "no tenant &#39;globex&#39; on this server" in refused.text
        assert "no tenant &#39;nosuch&#39; on this server" in unknown.text
        assert "channelsync_session" not in refused.headers.get("set-cookie", "")
        assert client.get("/tenants/acme/channels").status_code == 303  # not signed in


def test_an_operator_token_picks_its_tenant(served: Tenants) -> None:
    with _client(served) as client:
        signed = _sign_in(client, served.operator, tenant="globex")
        assert signed.headers["location"] == "/tenants/globex/channels"
        assert ">Globex Support</a>" in client.get("/tenants/globex/channels").text
        assert client.get("/tenants/acme/channels").status_code == 404
    with _client(served) as client:
        form = client.get("/sign-in", params={"next": "/tenants/acme/channels"}).text
        assert 'id="tenant" name="tenant" type="text" autocomplete="off" value="acme"' in form
        signed = _sign_in(client, served.operator, next="/tenants/acme/channels?sort=name")
        assert signed.headers["location"] == "/tenants/acme/channels?sort=name"
    with _client(served) as client:
        assert _sign_in(client, served.operator).headers["location"] == "/channels"
        assert ">Default Support</a>" in client.get("/channels").text


def test_test_connection_in_a_tenant_records_in_that_tenant_s_history(served: Tenants) -> None:
    with _client(served) as client:
        _sign_in(client, served.acme)
        page = "/tenants/acme/channels/Acme%20Support"
        csrf = csrf_of(client.get(page).text)
        pressed = client.post("/tenants/acme/test/channels/Acme%20Support", data={"csrf": csrf})
        assert pressed.status_code == 303
        assert pressed.headers["location"] == f"{page}?tested=1#latest"
        shown = client.get(page).text
        assert '<td data-label="By">console:acme-write</td>' in shown
        assert '<span class="health ok">ok</span>' in shown
        listed = client.get("/tenants/acme/channels").text
        assert listed.count('<span class="health ok">ok</span>') == 1
    with _client(served) as client:
        _sign_in(client, served.operator)
        assert "console:acme-write" not in client.get("/channels/Default%20Support").text


def _report(name: str) -> dict[str, Any]:
    return {
        "summary": {"update": 1},
        "changes": [{"kind": "EmailChannel", "name": name, "action": "update", "fields": []}],
        "drift": True,
        "repository": f"{name} repo",
    }


def test_drift_reports_are_kept_per_tenant(served: Tenants) -> None:
    with _client(served) as client:
        answer = client.post(
            "/v1/tenants/acme/drift-reports",
            json=_report("Acme Support"),
            headers={"Authorization": f"Bearer {served.acme}"},
        )
        assert answer.status_code == 201, answer.text
        _sign_in(client, served.acme)
        assert "Acme Support repo" in client.get("/tenants/acme/drift").text
    with _client(served) as client:
        _sign_in(client, served.operator)
        assert "Acme Support repo" not in client.get("/drift").text


@pytest.mark.timeout(600)
def test_in_the_browser_an_operator_types_a_tenant_and_stays_in_it(
    browser: Any, served: Tenants
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(condition: Any) -> Any:
        return WebDriverWait(browser, 60).until(condition)

    base = served.server.base
    browser.delete_all_cookies()
    browser.get(f"{base}/channels")
    wait(lambda d: "/sign-in" in d.current_url)
    browser.find_element(By.ID, "token").send_keys(served.operator)
    browser.find_element(By.ID, "tenant").send_keys("globex")
    browser.find_element(By.ID, "sign-in").click()
    wait(lambda d: d.find_elements(By.ID, "tenant-name"))
    assert browser.current_url == f"{base}/tenants/globex/channels"
    assert browser.find_element(By.ID, "tenant-name").text == "globex"
    browser.find_element(By.LINK_TEXT, "Globex Support").click()
    wait(lambda d: d.current_url.endswith("/Globex%20Support"))
    assert browser.current_url == f"{base}/tenants/globex/channels/Globex%20Support"
    browser.find_element(By.LINK_TEXT, "SMTP servers").click()
    wait(lambda d: d.current_url.endswith("/smtp-servers"))
    assert browser.current_url == f"{base}/tenants/globex/smtp-servers"
    browser.get(f"{base}/tenants/acme/channels")  # the session's tenant is globex
    assert "no tenant 'acme' on this server" in browser.find_element(By.ID, "message").text
