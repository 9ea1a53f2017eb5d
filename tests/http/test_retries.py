"""Retries against a tiny scripted HTTP server on loopback: what is resent and what is not."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from channelsync.targets.base import Operation
from channelsync.targets.http import HttpTarget, HttpTargetError

Reply = tuple[int, dict[str, str], dict[str, object]]
PAGE: Reply = (
    200,
    {},
    {
        "items": [{"etag": "e1", "resource": {"kind": "EmailScript", "name": "S", "queues": []}}],
        "next": None,
    },
)


class Scripted(ThreadingHTTPServer):
    """Answers each (method, path prefix) from a queue of replies; records every request."""

    def __init__(self, replies: dict[tuple[str, str], list[Reply]]) -> None:
        self.replies = replies
        self.seen: list[tuple[str, str]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Scripted

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self.server.seen.append((self.command, self.path))
        for (method, prefix), queue in self.server.replies.items():
            if method == self.command and self.path.startswith(prefix) and queue:
                status, headers, body = queue.pop(0) if len(queue) > 1 else queue[0]
                break
        else:
            status, headers, body = 404, {}, {"error": "not scripted"}
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {**headers, "Content-Type": "application/json"}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted({})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def target_for(server: Scripted) -> HttpTarget:
    return HttpTarget(
        f"http://127.0.0.1:{server.server_address[1]}", token="tok-0123456789", backoff=0.01
    )


def update_script(server: Scripted) -> None:
    target = target_for(server)
    body = {"kind": "EmailScript", "name": "S", "queues": ["A"]}
    try:
        target.apply(Operation("update", "EmailScript", "S", body=body, expected_etag="e1"))
    finally:
        target.close()


def test_read_is_retried_after_503_and_honours_retry_after(scripted: Scripted) -> None:
    scripted.replies[("GET", "/v1/resources")] = [
        (503, {"Retry-After": "0"}, {"error": "busy"}),
        (429, {"Retry-After": "0"}, {"error": "slow down"}),
        PAGE,
    ]
    target = target_for(scripted)
    try:
        live = target.read()
    finally:
        target.close()
    assert live[("EmailScript", "S")].etag == "e1"
    assert [m for m, _ in scripted.seen] == ["GET", "GET", "GET"]


def test_a_write_with_a_lost_outcome_is_checked_before_any_resend(scripted: Scripted) -> None:
    """503 on a PUT: ask /v1/writes/KEY first; it happened, so the PUT is not sent again."""
    scripted.replies[("PUT", "/v1/scripts/")] = [(503, {}, {"error": "proxy hiccup"})]
    scripted.replies[("GET", "/v1/writes/")] = [(200, {}, {"key": "k", "etag": "e2"})]
    update_script(scripted)
    assert [m for m, _ in scripted.seen] == ["PUT", "GET"]
    assert scripted.seen[1][1].startswith("/v1/writes/")


def test_a_write_that_did_not_happen_is_resent_with_the_same_key(scripted: Scripted) -> None:
    scripted.replies[("PUT", "/v1/scripts/")] = [(502, {}, {}), (200, {"ETag": '"e2"'}, {})]
    scripted.replies[("GET", "/v1/writes/")] = [(404, {}, {"error": "no such write"})]
    update_script(scripted)
    assert [m for m, _ in scripted.seen] == ["PUT", "GET", "PUT"]


def test_retries_give_up_with_one_clear_line(scripted: Scripted) -> None:
    scripted.replies[("GET", "/v1/resources")] = [(500, {}, {"error": "database is locked"})]
    target = target_for(scripted)
    try:
        with pytest.raises(HttpTargetError) as caught:
            target.read()
    finally:
        target.close()
    assert str(caught.value) == f"{target.url}: database is locked (500)"
    assert len(scripted.seen) == 5  # the first try and four retries


TOKEN = "TOKSECRET123"
ECHO = {"code": "bad_request", "message": f"you sent  with Bearer {TOKEN}"}


@pytest.mark.parametrize("command", [["drift"], ["export"], ["list", "--live"], ["plan"]])
def test_an_error_body_shows_only_its_message_without_the_token(
    command: list[str],
    scripted: Scripted,
    workdir: object,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scripted.replies[("GET", "/v1/")] = [(400, {}, {"error": ECHO})]
    url = f"http://127.0.0.1:{scripted.server_address[1]}"
    monkeypatch.setenv("CHANNELSYNC_TOKEN", TOKEN)
    result = cli(*command, "--target", url)
    assert (result.code, result.out, result.err) == (
        1,
        "",
        f"error: {url}: you sent with Bearer *** (400)\n",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "bad password S3cr3t-Pw-77 for x"}},
        {"error": "bad password " + base64.b64encode(b"S3cr3t-Pw-77").decode() + " for x"},
        {"message": "bad password s3cr3t-pw-77 for x"},
    ],
)
def test_an_apply_error_hides_the_secrets_it_was_sent(
    body: dict[str, object], scripted: Scripted
) -> None:
    scripted.replies[("PUT", "/v1/")] = [(400, {}, body)]
    target = target_for(scripted)
    doc = {"kind": "EmailChannel", "name": "C", "incoming": {"password": "S3cr3t-Pw-77"}}
    try:
        with pytest.raises(HttpTargetError) as raised:
            target.apply(Operation("create", "EmailChannel", "C", body=doc))
    finally:
        target.close()
    url = f"http://127.0.0.1:{scripted.server_address[1]}"
    assert str(raised.value) == f"{url}: bad password *** for x (400)"


def test_a_long_error_message_is_cut_and_hidden_characters_shown(scripted: Scripted) -> None:
    scripted.replies[("GET", "/v1/")] = [(400, {}, {"error": "\x1b[2J" + "word " * 500})]
    target = target_for(scripted)
    try:
        with pytest.raises(HttpTargetError) as raised:
            target.read()
    finally:
        target.close()
    url = f"http://127.0.0.1:{scripted.server_address[1]}"
    message = str(raised.value)
    assert message.startswith(f"{url}: \\u001B[2Jword word ")
    assert message.endswith(" [...] (400)") and len(message) < 400, message
