"""Paging: the ``limit`` parameter, opaque ``after`` cursors, and pages spliced from stored JSON."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from channelsync.server.http import ApiError, strict_json

DEFAULT_PAGE = 500
MAX_PAGE = 2000


def cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


BAD_CURSOR = "bad paging cursor; start again without 'after'"
MAX_CURSOR = 1000  # characters: two names of at most 200 characters, base64 of JSON escapes


def after(request: Request, size: int, kind: type[str] | type[int] = str) -> list[Any] | None:
    """The ``after`` cursor's values (``size`` of them, each a ``kind``: a name, or an id from
    0 to 2**63 - 1), or None on the first page. Any other cursor is 400."""
    text = request.query_params.get("after")
    if not text:
        return None
    if len(text) > MAX_CURSOR:
        raise ApiError(400, BAD_CURSOR)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        values = strict_json(raw, "the paging cursor")
    except (ValueError, ApiError):
        raise ApiError(400, BAD_CURSOR) from None
    if not isinstance(values, list) or len(values) != size:
        raise ApiError(400, BAD_CURSOR)
    for value in values:
        fits = isinstance(value, kind) and not isinstance(value, bool)
        if not fits or (isinstance(value, int) and not 0 <= value < 2**63):
            raise ApiError(400, BAD_CURSOR)
    return values


def limit(request: Request) -> int:
    text = request.query_params.get("limit", str(DEFAULT_PAGE))
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"limit must be a number from 1 to {MAX_PAGE}") from None
    if not 1 <= value <= MAX_PAGE:
        raise ApiError(400, f"limit must be a number from 1 to {MAX_PAGE}")
    return value


def resource_page(rows: list[tuple[str, str, str, str]], size: int) -> Response:
    """A page of (kind, name, body, etag) rows, one more than ``size`` if more follow.

    Spliced from the stored JSON text: no parse and re-dump of every body.
    """
    more = len(rows) > size
    rows = rows[:size]
    items = ",".join(f'{{"etag":{json.dumps(etag)},"resource":{body}}}' for *_, body, etag in rows)
    following = json.dumps(cursor([rows[-1][0], rows[-1][1]]) if more and rows else None)
    text = f'{{"items":[{items}],"next":{following}}}'
    return Response(text.encode(), media_type="application/json")
