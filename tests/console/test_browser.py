"""The console in a real browser: headless Chromium against a real `channelsync serve`, with
the real Dovecot and Postfix behind the Test connection button."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import SECRETS, Served

pytestmark = pytest.mark.timeout(600)
WAIT = 60
COLUMNS = ("name", "email", "protocol", "incoming", "port", "outgoing", "script", "enabled")


def _wait(driver: Any, condition: Any, timeout: float = WAIT) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def _sign_in(driver: Any, served: Served, token: str, path: str = "/channels") -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(served.url + path)
    _wait(driver, lambda d: "/sign-in" in d.current_url)
    _by_id(driver, "token").send_keys(token)
    _by_id(driver, "sign-in").click()
    _wait(driver, lambda d: d.find_elements(By.ID, "token-name"))
    _no_secret(driver.page_source)


def _no_secret(text: str) -> None:
    import base64

    for value in SECRETS.values():
        for shown in (value, base64.b64encode(value.encode()).decode()):
            assert shown not in text


def _column(driver: Any, key: str) -> list[str]:
    from selenium.webdriver.common.by import By

    index = COLUMNS.index(key) + 1
    cells = driver.find_elements(By.CSS_SELECTOR, f"#channels tbody tr td:nth-child({index})")
    return [c.text for c in cells]


def _natural(text: str) -> list[Any]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text)]


def test_sign_in_with_a_token_and_sign_out(browser: Any, served: Served) -> None:
    _sign_in(browser, served, served.write_token, "/channels?sort=-port")
    assert browser.current_url == served.url + "/channels?sort=-port"  # back where it was asked
    assert _by_id(browser, "token-name").text == "console-write"
    session = next(c for c in browser.get_cookies() if c["name"] == "channelsync_session")
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert served.write_token not in session["value"]
    _by_id(browser, "sign-out").click()
    _wait(browser, lambda d: "/sign-in" in d.current_url)
    assert _by_id(browser, "main").text.startswith("Sign in\nSigned out.")
    browser.get(served.url + "/channels")
    assert "/sign-in?next=%2Fchannels" in browser.current_url


def test_a_wrong_token_is_refused_without_echoing_it(browser: Any, served: Served) -> None:
    browser.delete_all_cookies()
    browser.get(served.url + "/sign-in")
    _by_id(browser, "token").send_keys("cst_not-a-real-token-123")
    _by_id(browser, "sign-in").click()
    error = _wait(browser, lambda d: _by_id(d, "sign-in-error"))
    assert error.text == "That token is not valid here. Use a token from 'channelsync token add'."
    assert "cst_not-a-real-token-123" not in browser.page_source


def test_the_channel_list_sorts_by_clicking_each_column_header(
    browser: Any, served: Served
) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(browser, served, served.read_token)
    names = _column(browser, "name")
    assert names == sorted(names, key=_natural)
    assert names.index("Team 2") < names.index("Team 10")  # numbers in names sort as numbers
    for key in (*COLUMNS, "health", "checked", "latency"):
        header = browser.find_element(By.CSS_SELECTOR, f'th[data-column="{key}"] a')
        header.click()
        _wait(browser, lambda d, k=key: re.search(f"sort=-?{k}$", d.current_url))
        if browser.current_url.endswith(f"sort=-{key}"):  # it was sorted by it already
            browser.find_element(By.CSS_SELECTOR, f'th[data-column="{key}"] a').click()
            _wait(browser, lambda d, k=key: d.current_url.endswith(f"sort={k}"))
        th = browser.find_element(By.CSS_SELECTOR, f'th[data-column="{key}"]')
        assert th.get_attribute("aria-sort") == "ascending"
        if key in COLUMNS:
            shown = _column(browser, key)
            assert shown == sorted(shown, key=_natural), key
    # a second click on the same header sorts the other way
    browser.find_element(By.CSS_SELECTOR, 'th[data-column="port"] a').click()
    _wait(browser, lambda d: d.current_url.endswith("sort=port"))
    browser.find_element(By.CSS_SELECTOR, 'th[data-column="port"] a').click()
    _wait(browser, lambda d: d.current_url.endswith("sort=-port"))
    ports = [int(p) for p in _column(browser, "port")]
    assert ports == sorted(ports, reverse=True)


def test_the_channel_list_filters_by_typing(browser: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(browser, served, served.read_token)
    total = len(_column(browser, "name"))
    _by_id(browser, "q").send_keys("sales")
    _wait(browser, lambda d: _by_id(d, "count").text == f"3 of {total} channel(s)")
    assert sorted(_column(browser, "name")) == ["Bad Channel", "Sales Asia", "Sales Europe"]
    assert "q=sales" in browser.current_url  # the view can be shared
    # and a column filter on top: only POP3 among them
    browser.find_element(By.CSS_SELECTOR, "#filters summary").click()
    _by_id(browser, "f-protocol").send_keys("pop3")
    _wait(browser, lambda d: _by_id(d, "count").text == f"1 of {total} channel(s)")
    assert _column(browser, "name") == ["Sales Europe"]
    assert "protocol=pop3" in browser.current_url
    browser.get(browser.current_url)  # the shared URL shows the same view
    assert _column(browser, "name") == ["Sales Europe"]


def test_test_connection_turns_a_wrong_password_into_auth_failed_in_place(
    browser: Any, served: Served
) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(browser, served, served.write_token, "/channels/Bad%20Channel")
    assert _by_id(browser, "never-tested").text == "Not tested yet."
    browser.execute_script("window.notReloaded = true")
    _by_id(browser, "test-button").click()
    failing = _wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, '#latest li.failing[data-check="incoming"]'),
    )[0]
    assert browser.execute_script("return window.notReloaded") is True  # in place
    assert "auth_failed [AUTHENTICATIONFAILED] Authentication failed." in failing.text
    assert (
        "Hint: check the user name and the password the secret reference points to" in failing.text
    )
    outgoing = browser.find_element(By.CSS_SELECTOR, '#latest li[data-check="outgoing"]')
    assert outgoing.get_attribute("class") == "ok"  # Postfix took the relay's account
    history = browser.find_elements(By.CSS_SELECTOR, "#checks tbody tr")
    assert [r.get_attribute("class") for r in history] == ["ok", "failing"]
    _no_secret(browser.page_source)
    _screenshot(browser, "console-channel.png")


def test_a_channel_page_shows_its_checks_and_the_list_its_health(
    browser: Any, served: Served
) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(browser, served, served.write_token, "/channels/Good%20Channel")
    _by_id(browser, "test-button").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#latest li.ok"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#checks tbody tr")
    assert len(rows) == 2
    assert all(r.get_attribute("class") == "ok" for r in rows)
    assert "console:console-write" in rows[0].text
    props = _by_id(browser, "properties").text
    assert "Password set · hmac-sha256:" in props
    assert "Outgoing mail server (in use) Test Relay" in props
    assert _by_id(browser, "audit").text.splitlines()[1].endswith("cli create " + (
        "email, enabled, incoming, kind, name, outgoing, script"
    ))  # fmt: skip
    browser.get(served.url + "/channels?sort=health")
    first = browser.find_elements(By.CSS_SELECTOR, "#channels tbody tr")[0]
    assert first.text.startswith("Bad Channel")  # failing first
    assert "incoming: auth_failed" in first.text
    _screenshot(browser, "console-channels.png")
    _no_secret(browser.page_source)


def test_a_read_token_cannot_press_test(browser: Any, served: Served) -> None:
    _sign_in(browser, served, served.read_token, "/channels/Good%20Channel")
    button = browser.find_element("css selector", "#test-needs-write button")
    assert button.get_attribute("disabled") is not None
    assert _by_id(browser, "test-needs-write").text.endswith(
        "Token 'console-read' has the read role; Test connection needs the write role."
    )
    assert not browser.find_elements("id", "test-form")


def test_the_layout_fits_1280_pixels_and_a_phone(browser: Any, served: Served) -> None:
    _sign_in(browser, served, served.read_token)
    fits = "const s = document.querySelector('.scroll'); return s.scrollWidth <= s.clientWidth"
    assert browser.execute_script(fits) is True  # every column at 1280 px, no scrolling
    try:
        browser.set_window_size(390, 844)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390 + 1  # no sideways scrolling: the rows become cards
    finally:
        browser.set_window_size(1280, 900)


def _screenshot(browser: Any, name: str) -> None:
    """Kept as test artefacts: in $CONSOLE_SCREENSHOTS (python -m tests.console.screenshots
    sets docs/screenshots), else in the browser fixture's folder of the pytest temp folder."""
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or browser.artefacts)
    folder.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(folder / name))


def test_the_console_works_from_the_keyboard(browser: Any, served: Served) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    def tab_to(text: str) -> Any:
        for _ in range(60):
            ActionChains(browser).send_keys(Keys.TAB).perform()
            active = browser.switch_to.active_element
            if active.text.startswith(text):
                return active
        raise AssertionError(f"Tab never reached {text!r}")

    _sign_in(browser, served, served.write_token, "/channels")
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.text == "Skip to content"
    header = tab_to("PORT")
    assert header.value_of_css_property("outline-style") == "solid"  # a visible focus
    header.send_keys(Keys.ENTER)
    _wait(browser, lambda d: d.current_url.endswith("sort=port"))
    browser.get(served.url + "/channels/Good%20Channel")
    before = len(browser.find_elements("css selector", "#checks tbody tr"))
    tab_to("Test connection").send_keys(Keys.ENTER)
    _wait(browser, lambda d: len(d.find_elements("css selector", "#checks tbody tr")) > before)
