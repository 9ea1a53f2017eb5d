"""The console over plain HTTP (no browser, no JavaScript): server-side sort and filter, CSRF,
roles, secrets in responses, drift reports, sessions."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from channelsync.console import sessions
from channelsync.server import tokens
from tests.console.conftest import REPOSITORY_URL, SECRETS, Served, csrf_of


def _names(html: str) -> list[str]:
    import re

    return re.findall(r'<td data-label="CHANNEL NAME"><a href="[^"]*">([^<]*)</a>', html)


def _clean(text: str) -> None:
    for value in SECRETS.values():
        for shown in (value, base64.b64encode(value.encode()).decode(), json.dumps(value)):
            assert shown not in text


def test_the_list_sorts_and_filters_without_javascript(served: Served) -> None:
    with served.session(served.read_token) as client:
        page = client.get("/channels", params={"sort": "-port", "enabled": "yes"})
        assert page.status_code == 200
        names = _names(page.text)
        assert names[-1] == "Sales Asia"  # port 143, the lowest of the enabled ones
        assert "Billing" not in names and "Team 10" not in names  # not enabled
        assert '<p class="count" id="count">5 of 7 channel(s)</p>' in page.text
        page = client.get("/channels", params={"outgoing": "tenant default"})
        assert _names(page.text) == ["Billing", "Sales Europe", "Team 2"]
        page = client.get("/channels", params={"outgoing": "Backup Relay"})
        assert _names(page.text) == ["Sales Asia", "Team 10"]
        page = client.get("/channels", params={"q": "POP.acme"})
        assert _names(page.text) == ["Sales Europe", "Team 10"]


def test_a_bad_sort_or_filter_is_one_line_on_the_page(served: Served) -> None:
    with served.session(served.read_token) as client:
        page = client.get("/channels", params={"sort": "colour"})
        assert page.status_code == 400
        assert (
            "cannot sort by &#39;colour&#39;: use one of name, email, protocol, incoming, port, "
            "outgoing, script, enabled, health, checked, latency" in page.text
        )
        page = client.get("/channels", params={"port": "abc"})
        assert page.status_code == 400
        assert "port is a number (wildcards * and ? allowed)" in page.text


def test_pages_need_a_session(served: Served) -> None:
    with httpx.Client(base_url=served.url) as client:
        for path in ("/channels", "/channels/Good%20Channel", "/smtp-servers", "/drift"):
            answer = client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/sign-in?next=")
        refused = client.post("/test/channels/Good%20Channel", data={"csrf": "x"})
        assert refused.status_code == 303  # to the sign-in page, nothing tested


def test_a_post_without_the_csrf_token_is_refused(served: Served) -> None:
    with served.session(served.write_token) as client:
        for form in ({}, {"csrf": "not-the-token"}):
            refused = client.post("/test/channels/Good%20Channel", data=form)
            assert refused.status_code == 403
            assert "The form is out of date; reload the page." in refused.text
            assert client.post("/sign-out", data=form).status_code == 403
        assert client.get("/channels").status_code == 200  # still signed in
    with httpx.Client(base_url=served.url) as client:  # the sign-in form has one too
        client.get("/sign-in")
        refused = client.post("/sign-in", data={"token": served.write_token})
        assert refused.status_code == 403
        assert "channelsync_session" not in refused.cookies


def test_a_read_token_cannot_press_test(served: Served) -> None:
    with served.session(served.read_token) as client:
        page = client.get("/channels/Billing")
        assert 'id="test-form"' not in page.text
        search = f"{REPOSITORY_URL}/search?q=name%3A%20Billing&amp;type=code"  # no file known yet
        assert f'<a href="{search}" id="source-link">' in page.text
        refused = client.post("/test/channels/Billing", data={"csrf": csrf_of(page.text)})
        assert refused.status_code == 403
        assert (
            "Token &#39;console-read&#39; has the read role; Test connection needs a token "
            "with the write role." in refused.text
        )
        assert "Not tested yet." in client.get("/channels/Billing").text


def test_test_connection_without_javascript_redirects_to_the_result(served: Served) -> None:
    with served.session(served.write_token) as client:
        page = client.get("/smtp-servers/Test%20Relay")
        pressed = client.post("/test/smtp-servers/Test%20Relay", data={"csrf": csrf_of(page.text)})
        assert pressed.status_code == 303
        assert pressed.headers["location"] == "/smtp-servers/Test%20Relay?tested=1#latest"
        shown = client.get(pressed.headers["location"]).text
        assert '<li class="ok" data-check="outgoing">' in shown
        listed = client.get("/smtp-servers").text
        assert "the tenant's default: <strong>VCC Internal</strong>" in listed


def test_no_response_holds_a_secret(served: Served) -> None:
    paths = ["/sign-in", "/channels", "/channels?sort=-health", "/smtp-servers", "/scripts",
             "/drift", "/console/static/console.js", "/console/static/console.css",
             "/v1/channels", "/v1/smtp-servers", "/v1/audit"]  # fmt: skip
    with served.session(served.write_token) as client:
        listed = client.get("/channels").text
        paths += [f"/channels/{name.replace(' ', '%20')}" for name in _names(listed)]
        paths += ["/smtp-servers/Test%20Relay", "/smtp-servers/Backup%20Relay",
                  "/scripts/Support%20Script"]  # fmt: skip
        for name in ("Bad%20Channel", "Good%20Channel", "Team%202"):
            page = client.get(f"/channels/{name}")
            answer = client.post(f"/test/channels/{name}", data={"csrf": csrf_of(page.text)})
            _clean(answer.text + json.dumps(dict(answer.headers)))
        headers = {"Authorization": f"Bearer {served.read_token}"}
        for path in paths:
            answer = client.get(path, headers=headers if path.startswith("/v1") else None)
            assert answer.status_code == (303 if path == "/sign-in" else 200), path
            _clean(answer.text + json.dumps(dict(answer.headers)))
    _clean(served.log.read_text())


def test_the_page_headers_keep_the_console_to_itself(served: Served) -> None:
    with served.session(served.read_token) as client:
        page = client.get("/channels")
        assert page.headers["content-security-policy"] == (
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
        )
        assert page.headers["cache-control"] == "no-store"
        assert "https://" not in page.text.replace(REPOSITORY_URL, "")  # no CDN, no outside asset


def test_a_revoked_token_ends_its_sessions(served: Served) -> None:
    token = tokens.add(served.tokens, "short-lived", "read")
    with served.session(token) as client:
        assert client.get("/channels").status_code == 200
        tokens.revoke(served.tokens, "short-lived")
        assert client.get("/channels").status_code == 303


def test_sessions_expire(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    path = tmp_path / "tokens.json"
    token = tokens.add(path, "t", "read")
    table = sessions.Sessions(tokens.TokenStore(path))
    found = table.sign_in(token, "default")
    assert found is not None
    session = found[0]
    assert table.lookup(session.id) is not None
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + sessions.IDLE_SECONDS + 1)
    assert table.lookup(session.id) is None
    assert table.sign_in("cst_wrong", "default") is None


def _report(**extra: Any) -> dict[str, Any]:
    return {
        "format_version": 1,
        "target": "https://tenant.example.test",
        "summary": {"create": 0, "update": 1, "rename": 0, "delete": 0, "no_op": 8},
        "changes": [
            {"kind": "EmailChannel", "name": "Good Channel", "action": "update",
             "previous_name": None, "followers": [], "temporary_email": None,
             "fields": [
                 {"path": "enabled", "before": False, "after": True, "sensitive": False},
                 {"path": "incoming.password", "before": "hmac-sha256:aa", "after":
                  "hmac-sha256:bb", "sensitive": True},
             ]},
        ],
        "warnings": [],
        "apply_needs": [],
        "drift": True,
        "ignored": 0,
        **extra,
    }  # fmt: skip


def test_a_posted_drift_report_shows_on_the_drift_page(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as api:
        _post_reports(served, api)


def _post_reports(served: Served, api: httpx.Client) -> None:
    write = {"Authorization": f"Bearer {served.write_token}"}
    read = {"Authorization": f"Bearer {served.read_token}"}
    body = _report(repository="acme/channels", repository_url=REPOSITORY_URL)
    assert api.post("/v1/drift-reports", json=body, headers=read).status_code == 403
    posted = api.post("/v1/drift-reports", json=body, headers=write)
    assert posted.status_code == 201, posted.text
    assert posted.json() == {"repository": "acme/channels", "drift": True, "changes": 1}
    bad = api.post("/v1/drift-reports", json={"repository": "x"}, headers=write)
    assert bad.status_code == 422
    assert bad.json() == {
        "error": "changes and summary missing: post 'channelsync drift --format json'"
    }
    unsafe = api.post(
        "/v1/drift-reports",
        json=_report(repository="x", repository_url="javascript:alert(1)"),
        headers=write,
    )
    assert unsafe.status_code == 422
    escaping = api.post(
        "/v1/drift-reports",
        json=_report(repository="x", files={"EmailChannel/A": "../../etc/passwd"}),
        headers=write,
    )
    assert escaping.status_code == 422
    assert escaping.json() == {
        "error": "files: EmailChannel/A: a path relative to the repository root"
    }
    huge = api.post(
        "/v1/drift-reports", content=b"{" + b" " * (3 * 1024 * 1024) + b"}", headers=write
    )
    assert huge.status_code == 413
    with served.session(served.read_token) as client:
        page = client.get("/drift").text
    assert f'<a href="{REPOSITORY_URL}">acme/channels</a>' in page
    assert "<code>enabled</code>: tenant false → channels.d true" in page
    assert "<code>incoming.password</code>: (a secret differs)" in page
    assert "hmac-sha256:aa" not in page and "hmac-sha256:bb" not in page


def test_the_drift_workflow_step_posts_its_report_to_a_server_target(
    served: Served, tmp_path: Any
) -> None:
    import shutil
    import subprocess
    import sys

    checkout = tmp_path / "checkout"
    shutil.copytree(served.root / "channels.d", checkout / "channels.d")
    billing = checkout / "channels.d" / "other-4.yaml"
    billing.write_text(billing.read_text().replace("enabled: false", "enabled: true"))
    env = {
        **{k: v for k, v in served.env.items() if k not in SECRETS},
        "CHANNELSYNC_TARGET": served.url,
        "CHANNELSYNC_TOKEN": served.read_token,
        "CHANNELSYNC_REPORT_TOKEN": served.write_token,
        "CHANNELSYNC_SECRETS_JSON": json.dumps(SECRETS),
        "GITHUB_REPOSITORY": "acme/drifted",
        "GITHUB_SERVER_URL": "https://git.example.test",
        "RUNNER_TEMP": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "channelsync.gitops.ci", "drift-report"],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"drift report posted to {served.url}"
    with served.session(served.read_token) as client:
        page = client.get("/drift").text
    assert '<a href="https://git.example.test/acme/drifted">acme/drifted</a>' in page
    report = page[page.index("acme/drifted</a>") :]
    assert '<strong>update</strong> EmailChannel <a href="/channels/Billing">Billing</a>' in report
    assert "<code>enabled</code>: tenant false → channels.d true" in report
    _clean(page)
    with served.session(served.read_token) as client:
        billing = client.get("/channels/Billing").text
    link = "https://git.example.test/acme/drifted/blob/HEAD/channels.d/other-4.yaml"
    assert f'<a href="{link}" id="source-link">channels.d/other-4.yaml</a>' in billing


def test_an_unknown_resource_is_a_404_page(served: Served) -> None:
    with served.session(served.read_token) as client:
        page = client.get("/channels/No%20Such%20Channel")
        assert page.status_code == 404
        assert "email channel &#39;No Such Channel&#39; does not exist" in page.text


def test_the_session_cookie_is_secure_under_tls(tmp_path: Any) -> None:
    import ssl
    import subprocess
    import sys

    import trustme

    from tests import mailservers

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    path = tmp_path / "tokens.json"
    token = tokens.add(path, "t", "read")
    port = mailservers.free_port()
    argv = [sys.executable, "-m", "channelsync.server", "serve", "--target",
            f"sqlite:///{tmp_path}/tenant.db", "--tokens", str(path), "--port", str(port),
            "--tls-cert", str(tmp_path / "cert.pem"),
            "--tls-key", str(tmp_path / "key.pem")]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        mailservers.wait_for_port(port, timeout=30)
        url = f"https://127.0.0.1:{port}"
        trust = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with httpx.Client(base_url=url, verify=trust, timeout=30) as client:
            form = client.get("/sign-in")
            signed = client.post("/sign-in", data={"csrf": csrf_of(form.text), "token": token})
            assert signed.status_code == 303
            cookie = next(
                c for c in signed.headers.get_list("set-cookie") if c.startswith(sessions.COOKIE)
            )
            assert "; HttpOnly" in cookie and "; Secure" in cookie
            assert "SameSite=strict" in cookie and token not in cookie
            assert client.get("/channels").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_large_tenant_shows_the_first_rows_and_long_filters_are_refused() -> None:
    from channelsync.console import views

    channels = [
        {"name": f"Channel {i}", "email": f"c{i}@acme.test", "script": "S", "enabled": True,
         "incoming": {"protocol": "imap-ssl", "server": "imap.acme.test", "port": 993}}
        for i in range(views.MAX_ROWS + 500)
    ]  # fmt: skip
    table = views.channel_table(channels, "VCC Internal", {}, {"sort": "-name"})
    assert (table.matched, len(table.rows), table.total) == (2500, 2000, 2500)
    assert table.rows[0]["name"] == "Channel 2499"
    refused = views.channel_table(channels, "VCC Internal", {}, {"q": "x" * 201})
    assert refused.error == "a filter, search or sort is at most 200 characters"
    assert refused.rows == []
    long_sort = views.channel_table(channels, "VCC Internal", {}, {"sort": "x" * 201})
    assert long_sort.error == "a filter, search or sort is at most 200 characters"


@pytest.mark.parametrize(
    ("params", "shown"),
    [
        ({"sort": "\u202egnp.exe"}, "cannot sort by '\\u202Egnp.exe': use one of name,"),
        ({"port": "9\u202e9"}, "bad filter 'port=*9\\u202E9*': port is a number"),
    ],
)
def test_a_bad_sort_or_filter_shows_hidden_characters_as_escapes(
    params: dict[str, str], shown: str
) -> None:
    from channelsync.console import views

    table = views.channel_table([], "VCC Internal", {}, params)
    assert table.error is not None and table.error.startswith(shown)
    assert "\u202e" not in table.error


@pytest.mark.parametrize(
    "target", ["//evil.test/x", "/\t/evil.test", "https://evil.test/", "/\\evil.test", ""]
)
def test_sign_in_goes_back_only_to_a_path_of_this_server(served: Served, target: str) -> None:
    with httpx.Client(base_url=served.url) as client:
        form = client.get("/sign-in")
        signed = client.post(
            "/sign-in",
            data={"csrf": csrf_of(form.text), "token": served.read_token, "next": target},
        )
        assert signed.status_code == 303
        assert signed.headers["location"] == "/channels"


def test_the_sort_is_a_choice_of_the_filter_form_too(served: Served) -> None:
    """On a phone the table's header is hidden (each row is a card): the form sorts."""
    with served.session(served.read_token) as client:
        page = client.get("/channels", params={"sort": "-port"}).text
    assert '<option value="-port" selected>Port ▼</option>' in page
    assert page.count('<option value="-') == 11  # every column, both ways


def test_the_agents_list_shows_each_agent_s_outgoing_mail_server(served: Served) -> None:
    """The vendor's Users list: where each agent's mail goes, as `list --kind agent` says."""
    import re

    with served.session(served.read_token) as client:
        page = client.get("/agents")
        assert page.status_code == 200
        assert '<a href="/agents" aria-current="page">Agents</a>' in page.text
        assert '<p class="count" id="count">2 agent(s)</p>' in page.text
        header = re.search(r"<thead>(.*?)</thead>", page.text, re.S)
        assert header is not None
        assert re.findall(r'<th scope="col">([^<]*)</th>', header.group(1))[:3] == [
            "NAME",
            "EMAIL ADDRESS",
            "OUTGOING MAIL SERVER",
        ]
        cells = re.findall(
            r'<td data-label="(?:Email Address|Outgoing Mail Server)">([^<]*)<', page.text
        )
        assert cells == [
            "dana@acme.test",
            "Backup Relay (override)",
            "eli@acme.test",
            "VCC Internal (tenant default)",  # no server is marked default
        ]
        dana = client.get("/agents/Dana%20Agent").text
        assert (
            '<tr><th scope="row">Outgoing mail server (in use)</th><td>Backup Relay (override)'
            "</td></tr>" in dana
        )


@contextlib.contextmanager
def _bare_server(tmp_path: Any) -> Iterator[tuple[str, str]]:
    """`channelsync serve` over an empty tenant: its URL and a write token."""
    import subprocess
    import sys

    from tests import mailservers

    path = tmp_path / "tokens.json"
    token = tokens.add(path, "t", "write")
    port = mailservers.free_port()
    argv = [sys.executable, "-m", "channelsync.server", "serve", "--target",
            f"sqlite:///{tmp_path}/tenant.db", "--tokens", str(path),
            "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        mailservers.wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}", token
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_failed_sign_ins_are_limited_per_client_address(tmp_path: Any) -> None:
    def sign_in(client: httpx.Client, value: str) -> httpx.Response:
        form = client.get("/sign-in")
        return client.post("/sign-in", data={"csrf": csrf_of(form.text), "token": value})

    with _bare_server(tmp_path) as (url, token):
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(sessions.SIGN_IN_FAILURES):
                assert sign_in(client, f"cst_guess{i}").status_code == 401
            refused = sign_in(client, token)  # even the right token: nothing is tried
            assert refused.status_code == 429
            wait = int(refused.headers["retry-after"])
            assert 0 < wait <= 60 / sessions.SIGN_IN_FAILURES
            assert f"Too many failed sign-ins from this address; try again in {wait} s." in (
                refused.text
            )
            assert sessions.COOKIE not in refused.cookies
        other = httpx.HTTPTransport(local_address="127.0.0.2")  # another client address
        with httpx.Client(base_url=url, timeout=30, transport=other) as client:
            assert sign_in(client, token).status_code == 303


def test_a_drift_report_may_be_larger_than_max_body_up_to_2_mib(tmp_path: Any) -> None:
    from channelsync.console import drift

    files = {f"EmailChannel/Channel {i}": f"channels.d/channel-{i}.yaml" for i in range(10_000)}
    changes = [{"kind": "EmailChannel", "name": f"Channel {i}", "action": "update",
                "fields": [{"path": "script", "before": "Old", "after": "New"}]}
               for i in range(5000)]  # fmt: skip
    report = _report(changes=changes, files=files, repository="acme/channels")
    body = json.dumps(report).encode()
    assert 1024 * 1024 < len(body) < drift.MAX_BODY  # 10,000 channels' files: over 1 MiB
    with _bare_server(tmp_path) as (url, token), httpx.Client(base_url=url, timeout=60) as api:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        posted = api.post("/v1/drift-reports", content=body, headers=headers)
        assert posted.status_code == 201, posted.text
        larger = body[:-1] + b" " * drift.MAX_BODY + b"}"
        refused = api.post("/v1/drift-reports", content=larger, headers=headers)
        assert refused.status_code == 413
        assert refused.json() == {
            "error": f"the request body is larger than {drift.MAX_BODY} bytes"
        }
        other = api.put("/v1/channels/x", content=body, headers=headers)
        assert other.json()["error"].endswith("bytes (the server's --max-body)")


def test_the_sign_in_budget_forgets_the_oldest_client_beyond_its_bound() -> None:
    from channelsync.server.limits import Budget

    budget = Budget(2, max_keys=3)
    for who in ("a", "a", "b", "c", "d"):
        budget.take(who, 1)
    assert budget.wait("a") == 0  # forgotten: a full bucket again
    assert budget.wait("d") == 0
    budget.take("d", 1)
    assert budget.wait("d") > 0
    assert len(budget._buckets) == 3
