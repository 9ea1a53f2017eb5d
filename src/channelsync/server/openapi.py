"""The OpenAPI document of the REST API, built from the app and the resource models.

The resource schemas are the pydantic models of ``channelsync.model`` (the same source as
the YAML JSON Schema), with one change: secret fields carry the secret value on PUT, not a
``${env:...}`` reference, and show its fingerprint on GET. ``schemas/openapi.json`` is this
document; ``tests/http/test_openapi.py`` fails when it is stale. Regenerate with::

    python -m channelsync.server.openapi --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from channelsync.fsio import write_atomic

COMMITTED = Path("schemas") / "openapi.json"
SECRET_DESCRIPTION = (
    "Secret (write-only): PUT carries the value; GET returns its hmac-sha256 fingerprint."
)


def _secret_fields(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("writeOnly"):
            node.pop("pattern", None)
            node["description"] = SECRET_DESCRIPTION
        for value in node.values():
            _secret_fields(value)
    elif isinstance(node, list):
        for value in node:
            _secret_fields(value)


def document() -> dict[str, Any]:
    from pydantic.json_schema import models_json_schema

    from channelsync import kinds
    from channelsync.server import wire
    from channelsync.server.app import create_app

    app = create_app("sqlite:///unused.db", Path("unused-tokens.json"))
    doc = app.openapi()
    models = [
        *(k.model_class() for k in kinds.all_kinds()),
        wire.Lock,
        wire.DefaultSmtpServer,
        wire.FingerprintRequest,
        wire.BatchRequest,
    ]
    _, defs = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(defs["$defs"])
    _secret_fields(schemas)
    doc["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "read or write token"}
    }
    doc["security"] = [{"bearer": []}]
    return doc


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    path = Path(argv[argv.index("--out") + 1]) if "--out" in argv else COMMITTED
    text = render(document())
    if "--write" in argv:
        write_atomic(path, text)
        print(f"wrote {path}")
        return 0
    if "--check" in argv:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            print(f"{path}: stale; run 'python -m channelsync.server.openapi --write'")
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
