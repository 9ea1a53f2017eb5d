"""HTTP helpers every handler shares: errors as JSON, compact JSON bodies, ETags, headers."""

from __future__ import annotations

import json
import math
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


MAX_DEPTH = 32  # objects and arrays inside each other; a resource needs four
MAX_DIGITS = 20  # of an integer: more than any count, port or pid


def _no_constant(text: str) -> Any:
    raise ApiError(400, f"the request body holds {text}, which is not a JSON number")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ApiError(400, f"the request body holds a number of more than {MAX_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ApiError(400, f"the request body holds a number too large for a double ({text[:30]})")
    return value


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_int=_int, parse_float=_float)


def strict_json(text: str | bytes, what: str = "the request body") -> Any:
    """JSON as RFC 8259 has it, bounded: no NaN or Infinity, no number that overflows, no
    nesting deeper than MAX_DEPTH, no lone surrogate (text that cannot be UTF-8 again)."""
    try:
        decoded = text.decode("utf-8") if isinstance(text, bytes) else text
        value = _DECODER.decode(decoded)
    except RecursionError:
        raise ApiError(400, f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, f"{what} is not JSON (UTF-8)") from None
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node, what)
            continue
        if not isinstance(node, dict | list):
            continue
        if depth >= MAX_DEPTH:
            raise ApiError(400, f"{what} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            for key, item in node.items():
                _check_text(key, what)
                stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in node)
    return value


def _check_text(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(
            400, f"{what} holds a lone surrogate (an unpaired \\uD800-\\uDFFF escape)"
        ) from None


async def json_body(request: Request) -> Any:
    return strict_json(await request.body())
