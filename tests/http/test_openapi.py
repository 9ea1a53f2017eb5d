from __future__ import annotations

from pathlib import Path

from channelsync.server import openapi

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_document_is_current() -> None:
    committed = (ROOT / openapi.COMMITTED).read_text(encoding="utf-8")
    assert committed == openapi.render(openapi.document()), (
        "schemas/openapi.json is stale; run 'python -m channelsync.server.openapi --write'"
    )


def test_openapi_documents_secrets_as_write_only_values() -> None:
    schemas = openapi.document()["components"]["schemas"]
    password = schemas["Incoming"]["properties"]["password"]["anyOf"][0]
    assert password["writeOnly"] is True and "pattern" not in password
