"""A kind that exists only in the tests: the whole of adding a kind is this file.

An email queue names the script that routes mail to it (a reference, like a channel's).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pytest
from pydantic import Field

from channelsync import kinds
from channelsync.defaults import DEFAULT_EMAIL_SCRIPT
from channelsync.model import Name, _Strict


class EmailQueue(_Strict):
    """An email queue: agents take the mail a script routes to it."""

    kind: Literal["EmailQueue"]
    name: Name = Field(title="Queue name")
    renamed_from: Name | None = None
    script: Name = Field(default=DEFAULT_EMAIL_SCRIPT, title="Email script")
    max_wait_minutes: int = Field(default=30, ge=1, le=1440, title="Maximum wait (minutes)")


QUEUE = kinds.Kind(
    "EmailQueue",
    collection="queues",
    model="tests.queue_kind:EmailQueue",
    console=kinds.Console(
        "email queue",
        "From the Configuration Menu, open Queues and go to the email queues",
        "click Add new email queue",
    ),
    references={("script",): "EmailScript"},
    word="queue",
)


@pytest.fixture
def queue_kind() -> Iterator[kinds.Kind]:
    """EmailQueue registered for one test, and gone after it."""
    kinds.register(QUEUE)
    try:
        yield QUEUE
    finally:
        kinds.unregister(QUEUE.name)
