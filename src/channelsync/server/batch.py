"""``POST /v1/batch``: many resource writes in one request and one commit.

An apply of 1,000 creates was 1,000 PUTs, each a round trip, a commit and a log line. A batch
carries the same writes as items, each exactly as its PUT or DELETE would be (validated the
same way, with its own ``If-Match`` and ``Idempotency-Key``, its own audit entry), applied in
order in one transaction, each item a savepoint of it. The first item that fails is undone
alone and ends the batch: the items before it are committed, the ones after it are not
attempted (424). The answer has one result per item, in order.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from channelsync import kinds
from channelsync.server import metrics, resources
from channelsync.server.context import Acting, Context, acting, current_tenant, request_digest
from channelsync.server.http import ApiError, json_body, json_response
from channelsync.server.store import Store
from channelsync.server.tokens import TokenEntry

MAX_ITEMS = 1000
ACTIONS = ("create", "update", "rename", "delete")
ITEM_SHAPE = (
    'each item is {"action": create|update|rename|delete, "kind": KIND, "name": NAME, '
    '"if_match": ETAG (not for create), "renamed_from": OLD (rename), "body": {...} (not for '
    'delete), "idempotency_key": KEY (optional)}'
)


class _Item:
    """One checked item: what its PUT or DELETE would carry."""

    def __init__(self, raw: Any, index: int) -> None:
        where = f"item {index}"
        if not isinstance(raw, dict):
            raise ApiError(422, f"{where}: {ITEM_SHAPE}")
        action, kind, name = raw.get("action"), raw.get("kind"), raw.get("name")
        if action not in ACTIONS or kind not in kinds.names() or not isinstance(name, str):
            raise ApiError(422, f"{where}: {ITEM_SHAPE}")
        texts = [raw.get(k) for k in ("if_match", "renamed_from", "idempotency_key")]
        if not all(t is None or isinstance(t, str) for t in texts):
            raise ApiError(422, f"{where}: {ITEM_SHAPE}")
        self.action: str = action
        self.kind: str = kind
        self.name: str = name
        self.if_match: str | None = raw.get("if_match")
        self.renamed_from: str | None = raw.get("renamed_from") if action == "rename" else None
        self.key: str | None = raw.get("idempotency_key")
        if action == "rename" and not self.renamed_from:
            raise ApiError(422, f"{where}: a rename needs renamed_from")
        if action != "create" and self.if_match is None:
            raise ApiError(428, f"{where}: {action} needs if_match: ETAG")
        self.raw_body = raw.get("body")
        self.body: dict[str, Any] | None = None
        self.invalid: ApiError | None = None  # this item's failure, in its turn
        if action != "delete":
            try:
                resources.check_name(kind, name)
                self.body = resources.checked_body(kind, name, self.raw_body)
            except ApiError as exc:
                self.invalid = exc

    def acting(self, base: Acting, entry: TokenEntry) -> Acting:
        collection = kinds.get(self.kind).collection
        method = "DELETE" if self.action == "delete" else "PUT"
        query = [("renamed_from", self.renamed_from)] if self.renamed_from else []
        digest = request_digest(
            entry, method, f"/v1/{collection}/{self.name}", query, self.raw_body
        )
        return Acting(base.actor, self.key, base.holder, digest)

    def run(self, store: Store, who: Acting) -> Response:
        if self.invalid is not None:
            raise self.invalid
        if self.action == "delete":
            return resources.delete_one(store, self.kind, self.name, self.if_match, who)
        assert self.body is not None
        if_none_match = "*" if self.action == "create" else None
        if_match = None if self.action == "create" else self.if_match
        return resources.put_one(
            store, self.kind, self.name, self.body, self.renamed_from, if_match, if_none_match, who
        )


def _result(answer: Response) -> dict[str, Any]:
    out: dict[str, Any] = {"status": answer.status_code}
    etag = answer.headers.get("etag")
    if etag is not None:
        out["etag"] = etag.strip('"')
    if answer.headers.get("idempotent-replay") == "true":
        out["replayed"] = True
    return out


async def batch(ctx: Context, request: Request) -> Response:
    entry = ctx.auth(request, "write")
    raw = await json_body(request)
    listed = raw.get("items") if isinstance(raw, dict) else None
    if not isinstance(listed, list) or not listed:
        raise ApiError(422, 'the body must be {"items": [ITEM, ...]}; ' + ITEM_SHAPE)
    if len(listed) > MAX_ITEMS:
        raise ApiError(413, f"at most {MAX_ITEMS} items per batch")
    items = [_Item(item, index) for index, item in enumerate(listed)]
    base = acting(entry, request, raw)
    if base.key is not None:
        raise ApiError(400, "a batch carries an idempotency_key per item, not the header")
    who = [item.acting(base, entry) for item in items]

    def work(store: Store) -> Response:
        results: list[dict[str, Any]] = []
        with store.batch():
            for index, item in enumerate(items):
                try:
                    with store.batch():  # a savepoint: this item alone is undone on failure
                        results.append(_result(item.run(store, who[index])))
                except ApiError as exc:
                    if store.undone():
                        raise ApiError(
                            503,
                            f"item {index}: {exc.message}; and the database undid the whole "
                            "batch: nothing in it was applied, send it again",
                        ) from None
                    results.append({"status": exc.status, "error": exc.message})
                    skipped = {"status": 424, "error": f"not attempted: item {index} failed"}
                    results.extend(dict(skipped) for _ in items[index + 1 :])
                    break
        metrics.BATCHES.labels(current_tenant()).inc()
        return json_response({"results": results})

    return await ctx.db(work)
