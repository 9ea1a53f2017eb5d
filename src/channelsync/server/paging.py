"""Paging: the ``limit`` parameter, opaque ``after`` cursors, and pages spliced from stored JSON."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from channelsync.server.http import ApiError

DEFAULT_PAGE = 500
MAX_PAGE = 2000


def cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def after(request: Request, size: int) -> list[Any] | None:
    """The ``after`` cursor's values (``size`` of them), or None on the first page."""
    text = request.query_params.get("after")
    if not text:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise ApiError(400, "bad paging cursor; start again without 'after'") from None
    if not isinstance(values, list) or len(values) != size:
        raise ApiError(400, "bad paging cursor; start again without 'after'")
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
