"""The console's routes: server-rendered pages (Jinja2), sign-in, Test connection, drift.

Every page works without JavaScript (links sort, forms filter and test, POST answers with a
redirect); ``static/console.js`` only updates the page in place. Every POST carries the
session's CSRF token. Tenant scoping: every page is served at ``/tenants/{tenant}/...`` and,
for the tenant "default", at the root; a session is bound to one tenant its token reaches
(``Sessions.sign_in``), and any other tenant's pages are 404, as a tenant that does not exist.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from channelsync import kinds, listing
from channelsync.console import drift, history, live, views
from channelsync.console.history import NEEDS_SQLITE
from channelsync.console.sessions import (
    COOKIE,
    LOGIN_COOKIE,
    MAX_SESSIONS,
    SIGN_IN_FAILURES,
    Sessions,
    SignedIn,
    new_secret,
    same,
)
from channelsync.defaults import DEFAULT_TENANT
from channelsync.monitor.history import CheckResult
from channelsync.server.context import Context, no_tenant
from channelsync.server.http import ApiError
from channelsync.server.limits import Budget
from channelsync.server.store import Store
from channelsync.targets.base import TargetError
from channelsync.tenant.repository import valid_tenant_name

# Where each tenant's pages live: the tenant "default" also at the root. Every page, link
# and redirect takes its tenant and its prefix from the request (scope, base_of).
TENANT_PREFIXES = ("", "/tenants/{tenant}")
HISTORY_SHOWN = 50
AUDIT_SHOWN = 50
MAX_FORM = 16 * 1024
TESTS_AT_ONCE = 4  # Test connection presses running at the same time, server-wide
_HERE = Path(__file__).parent
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Console:
    """The console's state: templates and sessions (check results: the store's history)."""

    def __init__(self, ctx: Context, repository_url: str | None) -> None:
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        self.ctx = ctx
        self.repository_url = repository_url.rstrip("/") if repository_url else None
        self.sessions = Sessions(ctx.tokens)
        # failed sign-ins per client address, like the API's fingerprint budget per token
        self.sign_in_failures = Budget(SIGN_IN_FAILURES, max_keys=MAX_SESSIONS)
        self.testing = asyncio.Semaphore(TESTS_AT_ONCE)
        self.env = Environment(
            loader=FileSystemLoader(_HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(kinds=kinds, quote=quote, when=views.when)
        self.env.filters["upfirst"] = _upfirst

    async def open(self) -> None:
        def tables(store: Store) -> None:
            if store.sqlite is None:  # PostgreSQL: no check history or drift reports yet
                self.env.globals["no_history"] = NEEDS_SQLITE
                return
            drift.create_table(store.sqlite)
            history.ensure(store)

        await self.ctx.db(tables, tenant=DEFAULT_TENANT)  # at start-up: no request

    def page(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        signed: SignedIn | None = getattr(request.state, "signed_in", None)
        body = self.env.get_template(template).render(
            signed=signed,
            csrf=signed.session.csrf if signed else "",
            base=base_of(request),
            path=request.url.path,
            repository_url=self.repository_url,
            **values,
        )
        return Response(body, status, _SECURITY_HEADERS, media_type="text/html")

    def signed_in(self, request: Request) -> SignedIn | None:
        found = self.sessions.lookup(request.cookies.get(COOKIE))
        request.state.signed_in = found
        if found is not None:
            request.state.actor = found.session.token_name  # the access log names the token
        return found


Handler = Callable[[Request, SignedIn, str], Awaitable[Response]]


def mount(
    app: FastAPI,
    ctx: Context,
    *,
    repository_url: str | None = None,
) -> Console:
    """Add the console's routes to ``app``; call after ``ctx.open`` is a start-up hook."""
    console = Console(ctx, repository_url)
    app.state.console = console
    app.router.on_startup.append(console.open)
    app.mount("/console/static", StaticFiles(directory=_HERE / "static"), name="console-static")

    def page_route(path: str, handler: Handler) -> None:
        async def route(request: Request) -> Response:
            signed = console.signed_in(request)
            if signed is None:
                return _to_sign_in(request)
            tenant = scope(request)
            if signed.session.tenant != tenant:
                return _elsewhere(console, request, signed.session.tenant)
            ctx.bind(tenant)
            return await handler(request, signed, tenant)

        for prefix in TENANT_PREFIXES:
            app.add_api_route(prefix + path, route, methods=["GET"], include_in_schema=False)

    async def home(request: Request) -> Response:
        signed = console.signed_in(request)
        if signed is not None and "tenant" not in request.path_params:
            return _redirect(f"{tenant_base(signed.session.tenant)}/channels")
        return _redirect(f"{base_of(request)}/channels")

    for prefix in TENANT_PREFIXES:
        app.add_api_route(prefix + "/", home, methods=["GET"], include_in_schema=False)

    async def sign_in_form(request: Request) -> Response:
        if console.signed_in(request) is not None:
            return _redirect(_next(request.query_params.get("next")))
        return _sign_in_page(console, request, None, 200)

    async def sign_in(request: Request) -> Response:
        form = await _form(request)
        if not same(form.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
            return _sign_in_page(
                console, request, "The sign-in form expired; please try again.", 403
            )
        client = request.client.host if request.client else "-"
        wait = console.sign_in_failures.wait(client)
        if wait > 0:  # a token is not guessed here: each failure costs the address one unit
            refused = _sign_in_page(
                console,
                request,
                f"Too many failed sign-ins from this address; try again in {math.ceil(wait)} s.",
                429,
            )
            refused.headers["Retry-After"] = str(math.ceil(wait))
            return refused
        target = _next(form.get("next"))
        asked = form.get("tenant", "").strip() or _tenant_of(target) or None
        found = console.sessions.sign_in(form.get("token", ""), asked)
        if found is None:
            console.sign_in_failures.take(client, 1)
            return _sign_in_page(
                console,
                request,
                "That token is not valid here. Use a token from 'channelsync token add'.",
                401,
            )
        session, entry = found
        ctx.bind(session.tenant)
        try:
            if not valid_tenant_name(session.tenant) or not entry.reaches(session.tenant):
                raise no_tenant(session.tenant)
            await ctx.db(lambda store: store.name)
        except ApiError as exc:  # no such tenant, or one the token may not reach: alike
            console.sessions.sign_out(session.id)
            console.sign_in_failures.take(client, 1)  # tenant names are not guessed either
            return _sign_in_page(console, request, exc.message, 404)
        if (_tenant_of(target) or DEFAULT_TENANT) != session.tenant:
            target = f"{tenant_base(session.tenant)}/channels"
        response = _redirect(target)
        _set_cookie(request, response, COOKIE, session.id)
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    async def sign_out(request: Request) -> Response:
        signed = console.signed_in(request)
        if signed is None:
            return _redirect("/sign-in")
        form = await _form(request)
        if not same(form.get("csrf"), signed.session.csrf):
            return _refused(console, request, "The form is out of date; reload the page.")
        console.sessions.sign_out(signed.session.id)
        response = _redirect("/sign-in?signed_out=1")
        response.delete_cookie(COOKIE, path="/")
        return response

    app.add_api_route("/sign-in", sign_in_form, methods=["GET"], include_in_schema=False)
    app.add_api_route("/sign-in", sign_in, methods=["POST"], include_in_schema=False)
    app.add_api_route("/sign-out", sign_out, methods=["POST"], include_in_schema=False)

    async def channels(request: Request, signed: SignedIn, tenant: str) -> Response:
        def work(store: Store) -> tuple[list[dict[str, Any]], str, dict[str, list[CheckResult]]]:
            rows = store.kind_after("EmailChannel", "", 1_000_000)
            bodies = [_body(r) for r in rows]
            return bodies, store.default_name(), history.latest(store, "EmailChannel")

        bodies, default, latest = await ctx.db(work)

        def render() -> Response:  # thousands of rows: sorted and drawn off the event loop
            table = views.channel_table(bodies, default, latest, request.query_params)
            return console.page(
                request,
                "channels.html",
                status=200 if table.error is None else 400,
                table=table,
                sort_link=lambda c: views.sort_link(table, c),
                health_filter=views.HEALTH_FILTER,
                title="Channels",
            )

        return await asyncio.to_thread(render)

    async def resource_list(
        kind: kinds.Kind, request: Request, signed: SignedIn, tenant: str
    ) -> Response:
        def work(store: Store) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
            rows = [_body(r) for r in store.kind_after(kind.name, "", 1_000_000)]
            return rows, store.default_name(), history.latest(store, kind.name)

        rows, default, latest = await ctx.db(work)
        columns = _list_columns(kind.name)
        titles = _titles(kind.name)
        if kind.name == "Agent":  # the vendor's Users list: each agent's Outgoing Mail Server
            rows = listing.agent_rows(rows, default)
            titles = {**titles, "outgoing": titles["outgoing.server"]}
        items = [
            {
                "name": r["name"],
                "cells": [views.value_cell(views_get(r, c)) for c in columns],
                **views.health(latest.get(r["name"], [])),
            }
            for r in rows
        ]
        return console.page(
            request,
            "list.html",
            kind=kind,
            columns=[titles.get(c, c) for c in columns],
            items=items,
            default=default,
            title=_upfirst(kind.console.noun) + "s",
        )

    async def resource(
        kind: kinds.Kind, request: Request, signed: SignedIn, tenant: str
    ) -> Response:
        name = request.path_params["name"]

        def work(store: Store) -> dict[str, Any] | None:
            found = store.resource(kind.name, name)
            if found is None:
                return None
            return {
                "body": found[0],
                "default": store.default_name(),
                "results": history.recent(store, kind.name, name, HISTORY_SHOWN),
                "latest": history.latest(store, kind.name).get(name, []),
                "audit": store.audit_of(kind.name, name, AUDIT_SHOWN),
                "file": store.sqlite and drift.file_of(store.sqlite, tenant, kind.name, name),
            }

        data = await ctx.db(work)
        if data is None:
            return _not_found(console, request, f"{kind.console.noun} '{name}' does not exist")
        body = data["body"]
        outgoing = None
        if kind.name == "EmailChannel":
            outgoing = listing.rows([body], data["default"])[0]["outgoing"]
        elif kind.name == "Agent":
            outgoing = listing.agent_rows([body], data["default"])[0]["outgoing"]
        return console.page(
            request,
            "resource.html",
            kind=kind,
            name=name,
            properties=views.properties(kind.name, body),
            outgoing=outgoing,
            results=data["results"],
            latest=data["latest"],
            audit=views.audit_rows(data["audit"]),
            tested=kind.tested,
            file_url=data["file"],
            title=name,
        )

    async def test(kind: kinds.Kind, request: Request) -> Response:
        signed = console.signed_in(request)
        if signed is None:
            return _to_sign_in(request)
        form = await _form(request)
        if not same(form.get("csrf"), signed.session.csrf):
            return _refused(console, request, "The form is out of date; reload the page.")
        if not signed.can_test:
            return _refused(
                console,
                request,
                f"Token '{signed.session.token_name}' has the read role; Test connection "
                "needs a token with the write role.",
            )
        name = request.path_params["name"]
        tenant = scope(request)
        if signed.session.tenant != tenant:
            return _elsewhere(console, request, signed.session.tenant)
        ctx.bind(tenant)
        page = f"/{kind.collection}/{quote(name, safe='')}"
        if console.testing.locked():
            return console.page(
                request,
                "message.html",
                429,
                title="Busy",
                message="Other connection tests are running; try again in a moment.",
                back=page,
            )
        async with console.testing:
            try:
                prepared = await ctx.db(lambda store: live.prepare(store, kind.name, name))
            except TargetError as exc:  # e.g. the key file is gone: no secret can be read
                return console.page(
                    request, "message.html", 409, title="Cannot test", message=str(exc), back=page
                )
            if prepared is None:
                return _not_found(console, request, f"{kind.console.noun} '{name}' does not exist")
            results = await asyncio.to_thread(live.run, prepared)
        at = time.time()
        token_name = signed.session.token_name
        await ctx.db(lambda store: history.record(store, results, token_name, at))
        return _redirect(f"{base_of(request)}{page}?tested=1#latest")

    async def drift_page(request: Request, signed: SignedIn, tenant: str) -> Response:
        found = await ctx.db(
            lambda store: drift.reports(store.sqlite, tenant) if store.sqlite else []
        )
        return console.page(request, "drift.html", reports=found, title="Drift")

    async def post_drift(request: Request) -> Response:
        return await drift.post_report(ctx, scope(request), request)

    page_route("/channels", channels)
    page_route("/drift", drift_page)
    for kind in kinds.all_kinds():
        if kind.name != "EmailChannel":
            page_route(f"/{kind.collection}", functools.partial(resource_list, kind))
        page_route(f"/{kind.collection}/{{name:path}}", functools.partial(resource, kind))
        for prefix in TENANT_PREFIXES if kind.tested else ():
            app.add_api_route(
                f"{prefix}/test/{kind.collection}/{{name:path}}",
                _route(functools.partial(test, kind)),
                methods=["POST"],
                include_in_schema=False,
            )
    for prefix in ("/v1", "/v1/tenants/{tenant}"):
        app.add_api_route(
            f"{prefix}/drift-reports",
            post_drift,
            methods=["POST"],
            tags=["drift"],
            summary="Record a repository's last drift report (write role; for the console)",
            status_code=201,
        )
    return console


def scope(request: Request) -> str:
    """The request's tenant: its path's tenant segment, else the one tenant."""
    return str(request.path_params.get("tenant", DEFAULT_TENANT))


def base_of(request: Request) -> str:
    """The path prefix of the request's tenant ("" for the tenant "default" at the root)."""
    tenant = request.path_params.get("tenant")
    return "" if tenant is None else tenant_base(str(tenant))


def tenant_base(tenant: str) -> str:
    """Where a tenant's pages are (a session's own tenant, in the paths it links to)."""
    return "" if tenant == DEFAULT_TENANT else f"/tenants/{quote(tenant, safe='')}"


def _tenant_of(path: str) -> str | None:
    """The tenant a console path names (None: a path at the root, the tenant "default")."""
    from urllib.parse import unquote

    if not path.startswith("/tenants/"):
        return None
    return unquote(path.split("/")[2].split("?")[0])


def _elsewhere(console: Console, request: Request, own: str) -> Response:
    """A page of a tenant other than the session's: at the root, the same page of the
    session's tenant; under another tenant's path, 404 as for a tenant that does not exist
    (a session never learns which other tenants there are)."""
    if "tenant" not in request.path_params:
        query = f"?{request.url.query}" if request.url.query else ""
        return _redirect(f"{tenant_base(own)}{quote(request.url.path)}{query}")
    return console.page(
        request,
        "message.html",
        404,
        title="Not found",
        message=no_tenant(scope(request)).message,
        back=None,
    )


def _upfirst(text: str) -> str:
    """ "SMTP server" -> "SMTP server", "email channel" -> "Email channel"."""
    return text[:1].upper() + text[1:]


def _route(handler: Callable[[Request], Awaitable[Response]]) -> Any:
    async def route(request: Request) -> Response:
        return await handler(request)

    return route


def views_get(body: dict[str, Any], path: str) -> Any:
    return kinds.get_path(body, tuple(path.split(".")))


def _body(row: tuple[str, str, str, str]) -> dict[str, Any]:
    import json

    body: dict[str, Any] = json.loads(row[2])
    return body


def _list_columns(kind: str) -> list[str]:
    if kind == "SmtpServer":
        return ["host", "security", "port", "user", "default"]
    if kind == "EmailScript":
        return ["queues"]
    if kind == "Agent":
        return list(listing.AGENT_COLUMNS[1:])
    return []


def _titles(kind: str) -> dict[str, str]:
    from channelsync.document import field_titles

    return field_titles(kind)


async def _form(request: Request) -> dict[str, str]:
    try:
        raw = await drift.bounded_body(request, MAX_FORM)
    except ApiError:
        return {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), max_num_fields=20))


def _redirect(location: str) -> Response:
    return RedirectResponse(location, 303, headers={"Cache-Control": "no-store"})


def _to_sign_in(request: Request) -> Response:
    path = quote(request.url.path)  # the decoded path, encoded again (a name may hold spaces)
    target = path + (f"?{request.url.query}" if request.url.query else "")
    return _redirect("/sign-in?" + urlencode({"next": target}))


def _next(target: str | None) -> str:
    """Only a path of this server is followed after sign-in: never //host, a scheme, a
    backslash, or a control character a browser would drop (/<TAB>/host is //host)."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and all(33 <= ord(c) < 127 and c != "\\" for c in target)
        and len(target) <= 2000
    ):
        return target
    return "/channels"


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def _sign_in_page(console: Console, request: Request, error: str | None, status: int) -> Response:
    login = request.cookies.get(LOGIN_COOKIE) or new_secret()
    response = console.page(
        request,
        "sign_in.html",
        status,
        login_csrf=login,
        error=error,
        signed_out=request.query_params.get("signed_out") == "1",
        next=_next(request.query_params.get("next")),
        tenant=_tenant_of(_next(request.query_params.get("next"))) or "",
        title="Sign in",
    )
    _set_cookie(request, response, LOGIN_COOKIE, login)
    return response


def _refused(console: Console, request: Request, message: str) -> Response:
    return console.page(request, "message.html", 403, title="Refused", message=message, back=None)


def _not_found(console: Console, request: Request, message: str) -> Response:
    return console.page(
        request, "message.html", 404, title="Not found", message=message, back="/channels"
    )
