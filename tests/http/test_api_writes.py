"""Writes through the REST API of a real `channelsync serve`: idempotency keys bound to their
request, writes normalised as the config is, hostile names, and the batch endpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from channelsync.document import tenant_form
from channelsync.errors import visible
from channelsync.server import tokens
from channelsync.targets.base import ConflictError, Operation
from channelsync.targets.http import HttpTarget
from tests.http.conftest import SECRETS, Server

SCRIPT = {"kind": "EmailScript", "name": "Support Script", "queues": ["Support"]}


def _writer(server: Server, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token or server.write_token}"}
    )


def test_an_idempotency_key_is_bound_to_its_request(server: Server) -> None:
    # Before: any write sent with a used key got the first write's outcome back (a replay),
    # whatever it was: another body, another resource, another token.
    other_token = tokens.add(server.tokens, "other-writer", "write")
    path = "/v1/scripts/Support Script"
    create = {"If-None-Match": "*", "Idempotency-Key": "key-1"}
    with _writer(server) as api, _writer(server, other_token) as other:
        assert api.put(path, json=SCRIPT, headers=create).status_code == 201
        again = api.put(path, json=dict(reversed(SCRIPT.items())), headers=create)
        assert again.status_code == 200  # the same request (keys in another order): a replay
        assert again.headers["idempotent-replay"] == "true"
        assert set(again.json()) == {"key", "kind", "name", "action", "etag"}
        refused = {
            "error": "this Idempotency-Key was sent with another request (token, method, path "
            "or body); use a new key for each write"
        }
        changed = {**SCRIPT, "queues": ["Billing"]}
        for answer in (
            api.put(path, json=changed, headers=create),
            api.put("/v1/scripts/Other", json={**SCRIPT, "name": "Other"}, headers=create),
            other.put(path, json=SCRIPT, headers=create),
            api.delete(path, headers={"If-Match": "*", "Idempotency-Key": "key-1"}),
        ):
            assert (answer.status_code, answer.json()) == (422, refused)
        bad_key = api.put(path, json=SCRIPT, headers={**create, "Idempotency-Key": "a b"})
        assert bad_key.status_code == 400
        assert bad_key.json() == {
            "error": "an Idempotency-Key is 1 to 200 visible ASCII characters"
        }
        outcome = api.get("/v1/writes/key-1")
        assert outcome.json()["action"] == "create"
        assert "request" not in outcome.json()


RELAY = {
    "kind": "SmtpServer",
    "name": "Relay",
    "host": "smtp.example.com",
    "user": "relay@example.com",
}
RELAY_YAML = """\
kind: SmtpServer
name: Relay
host: smtp.example.com
user: relay@example.com
password: ${env:RELAY_PASSWORD}
"""


def test_a_minimal_write_is_stored_normalised_and_shows_no_drift(
    server: Server, tmp_path: Path, secrets_env: dict[str, str]
) -> None:
    # Before: the server stored the body as sent, without the defaults the config fills
    # (port, security, default ...), so plan showed the same resource as changed forever.
    body = {**RELAY, "password": SECRETS["RELAY_PASSWORD"]}
    with _writer(server) as api:
        created = api.put("/v1/smtp-servers/Relay", json=body, headers={"If-None-Match": "*"})
    assert created.status_code == 201
    stored = created.json()
    expected = tenant_form("SmtpServer", {**RELAY, "password": "x"})
    assert set(stored) == set(expected)
    assert stored["port"] == expected["port"]
    (tmp_path / "channels.d").mkdir()
    (tmp_path / "channels.d" / "relay.yaml").write_text(RELAY_YAML)
    env = {**secrets_env, "CHANNELSYNC_TOKEN": server.read_token}
    plan = subprocess.run(
        [sys.executable, "-m", "channelsync", "plan", "--dir", str(tmp_path / "channels.d"),
         "--target", server.url, "--detailed-exitcode"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stdout + plan.stderr


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Relay\u202eyalp", "a bidirectional override (U+202E) at character 6"),
        ("Relay\x00", "a control character (U+0000) at character 6"),
        ("Re\u200blay", "an invisible format character (U+200B) at character 3"),
    ],
)
def test_names_with_hidden_characters_are_refused_as_the_loader_refuses_them(
    server: Server, name: str, problem: str
) -> None:
    body = {**RELAY, "name": name, "password": "pw-1"}
    with _writer(server) as api:
        answer = api.put(
            f"/v1/smtp-servers/{quote(name, safe='')}", json=body, headers={"If-None-Match": "*"}
        )
    assert answer.status_code == 422
    assert answer.json() == {
        "error": f"SmtpServer '{visible(name)}': name contains {problem}; remove it: it hides "
        "or reorders text in terminals, plans and pull request comments"
    }


def _script(name: str, queue: str = "Support") -> dict[str, object]:
    return {"kind": "EmailScript", "name": name, "queues": [queue]}


def test_a_batch_applies_in_order_commits_what_passed_and_reports_each_item(
    server: Server,
) -> None:
    # Before: 1,000 creates were 1,000 PUTs (a round trip, a commit and a log line each).
    with _writer(server) as api:
        first = api.put("/v1/scripts/Old", json=_script("Old"), headers={"If-None-Match": "*"})
        items = [
            {"action": "create", "kind": "EmailScript", "name": "A", "body": _script("A"),
             "idempotency_key": "batch-a"},
            {"action": "update", "kind": "EmailScript", "name": "Old", "body": _script("Old", "B"),
             "if_match": first.headers["etag"], "idempotency_key": "batch-old"},
            {"action": "update", "kind": "EmailScript", "name": "Old", "body": _script("Old", "C"),
             "if_match": first.headers["etag"], "idempotency_key": "batch-stale"},
            {"action": "create", "kind": "EmailScript", "name": "Never", "body": _script("Never"),
             "idempotency_key": "batch-never"},
        ]  # fmt: skip
        answer = api.post("/v1/batch", json={"items": items})
        assert answer.status_code == 200
        results = answer.json()["results"]
        assert [r["status"] for r in results] == [201, 200, 412, 424]
        assert (
            results[2]["error"] == "EmailScript 'Old' was changed in the tenant since it was read"
        )
        assert results[3] == {"status": 424, "error": "not attempted: item 2 failed"}
        assert api.get("/v1/scripts/A").status_code == 200
        assert api.get("/v1/scripts/Old").json()["queues"] == ["B"]
        assert api.get("/v1/scripts/Never").status_code == 404
        audit = [(e["name"], e["action"]) for e in api.get("/v1/audit").json()["items"]]
        assert audit == [("Old", "create"), ("A", "create"), ("Old", "update")]
        again = api.post("/v1/batch", json={"items": items}).json()["results"]  # a resend
        assert [(r["status"], r.get("replayed")) for r in again] == [
            (200, True), (200, True), (412, None), (424, None)
        ]  # fmt: skip
        bad = {"action": "create", "kind": "EmailScript", "name": "X", "body": {"queues": "Q"}}
        invalid = api.post("/v1/batch", json={"items": [bad]}).json()["results"]
        assert invalid[0]["status"] == 422
        assert invalid[0]["error"].startswith("EmailScript 'X': queues: ")
        shape = api.post("/v1/batch", json={"items": [{"action": "drop"}]})
        assert shape.status_code == 422
        assert shape.json()["error"].startswith('item 0: each item is {"action": ')


def test_the_http_target_applies_runs_in_batches_and_reports_the_failing_operation(
    server: Server,
) -> None:
    target = HttpTarget(server.url, token=server.write_token)
    try:
        ops = [Operation("create", "EmailScript", f"S{i}", body=_script(f"S{i}")) for i in range(3)]
        ops.append(Operation("create", "EmailScript", "S0", body=_script("S0")))
        ops.append(Operation("create", "EmailScript", "S9", body=_script("S9")))
        done, error = target.apply_many(ops)
        assert done == 3
        assert isinstance(error, ConflictError)
        assert str(error) == (
            f"{server.url}: EmailScript 'S0' already exists in the tenant (412); plan again"
        )
        assert sorted(name for _, name in target.read()) == ["S0", "S1", "S2"]
    finally:
        target.close()
    batches = [line for line in server.log.read_text().splitlines() if '"/v1/batch"' in line]
    assert len(batches) == 1


def test_a_server_without_the_batch_endpoint_gets_one_request_per_operation() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path == "/v1/batch":
            return httpx.Response(404, json={"error": "no such endpoint"})
        return httpx.Response(201, json={})

    target = HttpTarget("http://127.0.0.1:1", token="t", transport=httpx.MockTransport(answer))
    ops = [Operation("create", "EmailScript", f"S{i}", body=_script(f"S{i}")) for i in range(2)]
    assert target.apply_many(ops) == (2, None)
    assert target.apply_many(ops[:1]) == (1, None)
    target.close()
    assert seen == ["POST /v1/batch", "PUT /v1/scripts/S0", "PUT /v1/scripts/S1",
                    "PUT /v1/scripts/S0"]  # fmt: skip
