"""A real `channelsync serve` under attack: idle and slowloris connections, huge bodies,
malformed input. Each of these took the server down or made it log a traceback before."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.http.conftest import Server

ERROR_BODY = {"error"}


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Server]:
    """A server the test starts itself, with its own options."""
    (tmp_path / "server").mkdir()
    served = Server(tmp_path / "server")
    try:
        yield served
    finally:
        served.stop()


def _log_lines(server: Server) -> list[str]:
    """The server's log without the access lines (one JSON object per request)."""
    return [line for line in server.log.read_text().splitlines() if not line.startswith("{")]


def _open_fds(server: Server) -> int:
    assert server.proc is not None
    return len(os.listdir(f"/proc/{server.proc.pid}/fd"))


def test_idle_and_slowloris_connections_cannot_keep_a_request_out(bare: Server) -> None:
    # Before: 400 idle connections exhausted a 256-descriptor server, the real request timed
    # out, and the log grew by 900,000 lines (a traceback per failed accept).
    bare.start("--request-timeout", "2", nofile=256)
    port = bare.port
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(400)]
    slow = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        slow.append(sock)
    try:
        started = time.monotonic()
        answer = httpx.get(f"{bare.url}/v1/health", timeout=5)
        assert answer.status_code == 200
        assert time.monotonic() - started < 2
        assert _open_fds(bare) < 256
        time.sleep(2.5)  # the slow ones had --request-timeout to send a whole request
        for sock in slow[-5:]:
            sock.settimeout(2)
            assert sock.recv(100) == b""  # closed by the server
    finally:
        for sock in idle + slow:
            sock.close()
    bare.stop()
    lines = _log_lines(bare)
    assert not any("Traceback" in line for line in lines)
    assert len(lines) < 30, lines
    assert "closed the longest idle connection: " in "\n".join(lines)
    assert "closed a connection that sent no whole request within 2 s" in lines


def test_a_body_over_the_limit_is_413_before_it_is_read(bare: Server) -> None:
    # Before: a 20 MiB body was read into memory and answered 200.
    bare.start("--max-body", "1000")
    headers = {"Authorization": f"Bearer {bare.read_token}"}
    with socket.create_connection(("127.0.0.1", bare.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/fingerprints HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n"
            b"Authorization: Bearer " + bare.read_token.encode() + b"\r\n\r\n"
        )
        answer = _read_to_close(sock)  # at once: the server did not wait for 50 MB
    assert answer.startswith("HTTP/1.1 413 ")
    assert answer.endswith(
        '{"error":"the request body is larger than 1000 bytes (the server\'s --max-body)"}'
    )

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 100

    chunked = httpx.post(f"{bare.url}/v1/fingerprints", headers=headers, content=chunks())
    assert chunked.status_code == 413
    small = httpx.post(f"{bare.url}/v1/fingerprints", headers=headers, json={"values": ["a"]})
    assert small.status_code == 200


def _read_to_close(sock: socket.socket) -> str:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data.decode()


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MALFORMED = [
    # (method, path, body, status, error)
    ("POST", "/v1/fingerprints", b"[" * 100_000 + b"]" * 100_000, 400,
     "the request body is nested more than 32 levels deep"),
    ("POST", "/v1/fingerprints", b"[" * 40 + b"]" * 40, 400,
     "the request body is nested more than 32 levels deep"),
    ("POST", "/v1/fingerprints", b'{"values": ["\\ud800"]}', 400,
     "the request body holds a lone surrogate (an unpaired \\uD800-\\uDFFF escape)"),
    ("PUT", "/v1/lock", b'{"holder":"a","host":"h","pid":1e400,"since":"x"}', 400,
     "the request body holds a number too large for a double (1e400)"),
    ("PUT", "/v1/lock", b'{"holder":"a","host":"h","pid":NaN,"since":"x"}', 400,
     "the request body holds NaN, which is not a JSON number"),
    ("PUT", "/v1/lock", b'{"holder":"a","host":"h","pid":1e300,"since":"x"}', 422, None),
    ("PUT", "/v1/lock", b'{"holder":"a","host":"h","pid":' + b"9" * 30 + b',"since":"x"}', 400,
     "the request body holds a number of more than 20 digits"),
    ("PUT", "/v1/lock", b'{"holder":"a","host":"h","pid":true,"since":"x"}', 422, None),
    ("PUT", "/v1/lock", b"\xff\xfe", 400, "the request body is not JSON (UTF-8)"),
    ("GET", "/v1/audit?after=" + _cursor(b'["x"]'), b"", 400, None),
    ("GET", "/v1/audit?after=" + _cursor(b"[1000000000000000000000000000000]"), b"", 400, None),
    ("GET", "/v1/audit?after=" + _cursor(b"[1e400]"), b"", 400, None),
    ("GET", "/v1/audit?after=" + _cursor(b"[-1]"), b"", 400, None),
    ("GET", "/v1/resources?after=" + _cursor(b"[{}, []]"), b"", 400, None),
    ("GET", "/v1/resources?after=" + _cursor(b"[1, 2]"), b"", 400, None),
    ("GET", "/v1/channels?after=" + _cursor(b'["a", "\\udfff"]'), b"", 400, None),
    ("GET", "/v1/channels?after=" + "A" * 5000, b"", 400, None),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "error"), MALFORMED)
def test_malformed_input_is_a_documented_error_never_a_500(
    server: Server, method: str, path: str, body: bytes, status: int, error: str | None
) -> None:
    # Before: each of these was a plain-text 500 and a traceback in the log.
    headers = {"Authorization": f"Bearer {server.write_token}", "If-None-Match": "*"}
    answer = httpx.request(method, f"{server.url}{path}", headers=headers, content=body)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == ERROR_BODY
    if error is not None:
        assert answer.json()["error"] == error
    if path.startswith("/v1/audit") or "after=" in path:
        assert answer.json()["error"] == "bad paging cursor; start again without 'after'"
    assert not any("Traceback" in line for line in _log_lines(server))


def test_404_and_405_use_the_error_body_and_head_works_on_get_routes(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.read_token}"}
    missing = httpx.get(f"{server.url}/v2/nothing", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {"error": "no such endpoint; the endpoints are in docs/rest-api.md"}
    wrong = httpx.post(f"{server.url}/v1/health")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "POST is not allowed here; allowed: GET"}
    head = httpx.head(f"{server.url}/v1/resources", headers=headers)
    get = httpx.get(f"{server.url}/v1/resources", headers=headers)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]


@pytest.mark.parametrize("holder", ["a\x00b", "\u20ac-holder", 'with"quote', "x" * 201, 7])
def test_a_hostile_lock_holder_cannot_wedge_the_lock(server: Server, holder: object) -> None:
    # Before: a NUL holder was stored, its answer (the holder is the ETag header) broke, and
    # every GET /v1/lock after it dropped the connection until the lease ran out.
    headers = {"Authorization": f"Bearer {server.write_token}", "If-None-Match": "*"}
    body = {"holder": holder, "host": "h", "pid": 1, "since": "2026-01-01T00:00:00Z"}
    taken = httpx.put(f"{server.url}/v1/lock", headers=headers, json=body)
    assert taken.status_code == 422
    assert taken.json()["error"].startswith("the body must be {holder, host, pid, since}: ")
    assert httpx.get(f"{server.url}/v1/lock", headers=headers).status_code == 404
    good = httpx.put(f"{server.url}/v1/lock", headers=headers, json={**body, "holder": "ok"})
    assert good.status_code == 201
    assert good.headers["etag"] == '"ok"'
    assert json.loads(httpx.get(f"{server.url}/v1/lock", headers=headers).text)["holder"] == "ok"


def test_fingerprints_are_rate_limited_per_token(bare: Server) -> None:
    # Before: 200 guesses in a row were all answered (an HMAC oracle without a bound).
    bare.start("--fingerprint-rate", "60")  # one value a second, 60 at once
    values = {"values": [f"guess-{i}" for i in range(50)]}
    with httpx.Client(
        base_url=bare.url, headers={"Authorization": f"Bearer {bare.read_token}"}
    ) as reader:
        assert reader.post("/v1/fingerprints", json=values).status_code == 200
        refused = reader.post("/v1/fingerprints", json=values)
    assert refused.status_code == 429
    wait = refused.headers["retry-after"]
    assert 35 <= int(wait) <= 40  # 50 wanted, 10 left, one more each second
    assert refused.json() == {
        "error": f"token 'pr-plan' asked for more fingerprints than 60 a minute; "
        f"retry after {wait} s"
    }
    other = httpx.post(
        f"{bare.url}/v1/fingerprints",
        headers={"Authorization": f"Bearer {bare.write_token}"},
        json=values,
    )
    assert other.status_code == 200  # the budget is per token


def test_answers_on_a_kept_alive_connection_do_not_wait_for_a_delayed_ack(
    server: Server,
) -> None:
    # Before: every answer after the first on a connection took 44 ms (Nagle's algorithm held
    # the body until the client's delayed ACK of the headers): 1,040 PUTs took 52 s.
    headers = {"Authorization": f"Bearer {server.read_token}"}
    times = []
    with httpx.Client(base_url=server.url, headers=headers) as client:
        for _ in range(10):
            started = time.perf_counter()
            assert client.post("/v1/fingerprints", json={"values": ["v"]}).status_code == 200
            times.append(time.perf_counter() - started)
    assert min(times[1:]) < 0.02, times
