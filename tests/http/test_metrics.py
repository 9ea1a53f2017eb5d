"""GET /metrics of a real `channelsync serve`: Prometheus text, behind a token, by route."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from channelsync.server.metrics import REGISTRY
from tests.http.conftest import Server

METRICS_TOKEN = "metrics-only-7d1c0a9e"


@pytest.fixture
def scraped(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "server").mkdir()
    served = Server(tmp_path / "server")
    token_file = tmp_path / "metrics.token"
    token_file.write_text(METRICS_TOKEN + "\n")
    served.start("--metrics-token-file", str(token_file))
    try:
        yield served
    finally:
        served.stop()


def _value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {sample} in:\n{text}")


def test_metrics_count_requests_by_route_writes_locks_and_resources(scraped: Server) -> None:
    write = {"Authorization": f"Bearer {scraped.write_token}"}
    with httpx.Client(base_url=scraped.url, headers=write) as api:
        assert api.get("/v1/channels/Secret Project Name").status_code == 404
        script = {"kind": "EmailScript", "name": "S", "queues": ["Q"]}
        assert api.put("/v1/scripts/S", json=script, headers={"If-None-Match": "*"}).is_success
        lock = {"holder": "one", "host": "h", "pid": 1, "since": "now"}
        assert api.put("/v1/lock", json=lock, headers={"If-None-Match": "*"}).status_code == 201
        other = {**lock, "holder": "two"}
        assert api.put("/v1/lock", json=other, headers={"If-None-Match": "*"}).status_code == 409
        assert api.post("/v1/batch", json={"items": []}).status_code == 422
    scrape = httpx.get(
        f"{scraped.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=")
    text = scrape.text
    route = 'channelsync_http_requests_total{method="GET",route="/v1/channels/{name:path}"'
    assert _value(text, route + ',status="404"}') == 1
    assert _value(text, 'channelsync_http_requests_total{method="PUT",route="/v1/lock",'
                  'status="409"}') == 1  # fmt: skip
    assert "Secret Project Name" not in text  # a route template, never the raw path
    assert _value(text, 'channelsync_writes_total{action="create",kind="EmailScript",'
                  'tenant="default"}') == 1  # fmt: skip
    assert _value(text, 'channelsync_lock_waits_total{tenant="default"}') == 1
    assert _value(text, 'channelsync_locks_taken_total{tenant="default"}') == 1
    assert _value(text, 'channelsync_resources{kind="EmailScript",tenant="default"}') == 1
    assert _value(text, 'channelsync_resources{kind="EmailChannel",tenant="default"}') == 0
    assert 'channelsync_http_request_duration_seconds_bucket{le="0.005",method="PUT"' in text
    log = scraped.log.read_text()
    assert METRICS_TOKEN not in log and scraped.write_token not in log


def test_metrics_need_the_metrics_token_or_an_api_token(scraped: Server) -> None:
    anonymous = httpx.get(f"{scraped.url}/metrics")
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "missing or unknown bearer token"}
    reader = {"Authorization": f"Bearer {scraped.read_token}"}
    assert httpx.get(f"{scraped.url}/metrics", headers=reader).status_code == 200
    metrics_only = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert httpx.get(f"{scraped.url}/v1/resources", headers=metrics_only).status_code == 401


def test_an_unreadable_metrics_token_file_is_one_line(tmp_path: Path) -> None:
    server = Server(tmp_path)
    missing = tmp_path / "none.token"
    result = subprocess.run(
        [sys.executable, "-m", "channelsync.server", "serve", "--target",
         f"sqlite:///{server.db}", "--port", str(server.port), "--tokens", str(server.tokens),
         "--metrics-token-file", str(missing)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --metrics-token-file {missing}: No such file or directory"
    )


def test_other_modules_add_collectors_to_the_one_registry() -> None:
    from prometheus_client import Gauge

    gauge = Gauge("channelsync_test_probe", "A collector of another module.", registry=REGISTRY)
    try:
        gauge.set(3)
        assert REGISTRY.get_sample_value("channelsync_test_probe") == 3
    finally:
        REGISTRY.unregister(gauge)
