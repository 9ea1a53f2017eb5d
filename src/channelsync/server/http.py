"""HTTP helpers every handler shares: errors as JSON, compact JSON bodies, ETags, headers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

LOCK_HEADER = "Channelsync-Lock"


class ApiError(Exception):
    """A refusal with its HTTP status; the app turns it into ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type="application/json")


def etag_header(etag: str) -> dict[str, str]:
    return {"ETag": f'"{etag}"'}


def unquote(value: str) -> str:
    """An entity tag as sent in If-Match (quoted, maybe weak) as the bare tag."""
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


async def json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise ApiError(400, "the request body is not JSON") from None
