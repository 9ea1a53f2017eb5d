"""Wire models of the REST API that are not resources (pages, errors, lock, audit).

The resources themselves are the models of ``channelsync.model``: the OpenAPI document
references them, so the API and the YAML share one definition of every field. These models
only document responses; the server writes JSON directly for speed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Error(BaseModel):
    error: str = Field(description="One line a user can act on.")


class Item(BaseModel):
    etag: str = Field(description="The resource's current entity tag (unquoted).")
    resource: dict[str, Any] = Field(
        description="The resource in YAML field names; secrets as hmac-sha256 fingerprints."
    )


class Page(BaseModel):
    items: list[Item]
    next: str | None = Field(description="Opaque cursor for the next page; null on the last.")


class Lock(BaseModel):
    holder: str = Field(description="Opaque id of the apply holding the lock.")
    host: str
    pid: int
    since: str = Field(description="UTC time the lock was taken, ISO 8601.")


class DefaultSmtpServer(BaseModel):
    name: str = Field(description='An SmtpServer\'s name, or "VCC Internal".')


class AuditEntry(BaseModel):
    id: int
    at: str = Field(description="UTC time of the write, ISO 8601.")
    actor: str = Field(description="Name of the token that made the write.")
    kind: str
    name: str
    action: str = Field(
        description="create, update, rename, delete, set-default, or reset (a new default "
        "SMTP server reset the outgoing server)."
    )
    fields: list[str] = Field(description="Changed field paths; never values.")


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next: str | None


class FingerprintRequest(BaseModel):
    values: list[str] = Field(max_length=20000, description="Secret values (write-only).")


class Fingerprints(BaseModel):
    fingerprints: list[str] = Field(description="hmac-sha256 fingerprints, in request order.")


class WriteOutcome(BaseModel):
    key: str = Field(description="The Idempotency-Key the write was sent with.")
    kind: str
    name: str
    action: str
    etag: str | None = Field(description="The resource's entity tag after the write.")


class BatchItem(BaseModel):
    action: str = Field(description="create, update, rename or delete.")
    kind: str
    name: str
    if_match: str | None = Field(None, description="The ETag it must have (not for create).")
    renamed_from: str | None = Field(None, description="The old name (rename only).")
    body: dict[str, Any] | None = Field(None, description="The resource, as a PUT carries it.")
    idempotency_key: str | None = Field(None, description="As the Idempotency-Key header.")


class BatchRequest(BaseModel):
    items: list[BatchItem] = Field(max_length=1000)


class BatchResult(BaseModel):
    status: int = Field(
        description="What the item's own PUT or DELETE would answer; 424: "
        "not attempted because an earlier item failed."
    )
    etag: str | None = None
    error: str | None = None
    replayed: bool | None = None


class BatchResults(BaseModel):
    results: list[BatchResult] = Field(description="One per item, in order.")
