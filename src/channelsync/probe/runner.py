"""Which checks a config needs, and running them all concurrently, each within its timeout.

A thread pool keeps one code path for one check and for hundreds: the work is waiting on
sockets, and the standard library's clients (imaplib, poplib, smtplib) are blocking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from channelsync import kinds, log
from channelsync.defaults import BUILTIN_SMTP_SERVER, PROBE_CONCURRENCY, PROBE_TIMEOUT
from channelsync.probe.check import (
    Attempt,
    Check,
    Login,
    OAuthSettings,
    ProbeFailure,
    Result,
)
from channelsync.secrets import Resolver, SecretRef, SecretUnavailable, parse_ref

if TYPE_CHECKING:
    from channelsync.bindings import Bindings, Endpoint
    from channelsync.loader import Loaded

__all__ = ["Check", "Result", "checks_for", "run_check", "run_checks"]

DEFAULT_CONCURRENCY = PROBE_CONCURRENCY
DEFAULT_TIMEOUT = PROBE_TIMEOUT

Progress = Callable[[int, int], None]


def checks_for(
    resources: Sequence[Loaded], *, servers: Sequence[Loaded] | None = None
) -> list[Check]:
    """The checks for ``resources``, in their order.

    A channel gets an incoming check, and an outgoing one when it overrides the SMTP account;
    a channel that does not override sends through its server's check, which is not repeated.
    An agent that overrides gets an outgoing check of its server without the login: the
    agent's password is entered in the console by the agent, never held by channelsync.
    ``servers`` are where overridden servers are looked up (default: ``resources``), so that a
    caller can test some channels of a larger config.
    """
    known = {s.name: s for s in (servers if servers is not None else resources)}
    known.update((r.name, r) for r in resources if r.kind == "SmtpServer")
    checks: list[Check] = []
    for item in resources:
        if item.kind == "SmtpServer":
            if item.name != BUILTIN_SMTP_SERVER:
                checks.append(_outgoing(item, None, None))
            continue
        if item.kind == "EmailChannel":
            checks.append(_incoming(item))
        if kinds.OUTGOING_SERVER not in kinds.get(item.kind).references:
            continue
        out = item.data.get("outgoing")
        if out and out.get("override") and out["server"] != BUILTIN_SMTP_SERVER:
            server = known.get(out["server"])
            if server is not None and server.kind == "SmtpServer":
                checks.append(_outgoing(server, item, out))
    return checks


def _incoming(item: Loaded) -> Check:
    incoming = item.data["incoming"]
    oauth = incoming.get("oauth") if incoming.get("auth") == "microsoft-exchange" else None
    return Check(
        kind=item.kind,
        name=item.name,
        check="incoming",
        host=incoming["server"],
        port=incoming["port"],
        protocol=incoming["protocol"],
        base_dir=item.base_dir,
        user=incoming["user"],
        password=incoming.get("password"),
        oauth=OAuthSettings(
            oauth["tenant_id"],
            oauth["client_id"],
            oauth["client_secret"],
            oauth["authority"],
            oauth["scope"],
        )
        if oauth
        else None,
        ca_file=(incoming.get("tls") or {}).get("ca_file"),
        allow_insecure_auth=bool(incoming.get("allow_insecure_auth")),
        origin=item,
    )


def _outgoing(server: Loaded, channel: Loaded | None, out: dict[str, Any] | None) -> Check:
    data = server.data
    owner = channel or server
    account = out if out is not None else data
    user = account.get("user")
    return Check(
        kind=owner.kind,
        name=owner.name,
        check="outgoing",
        host=data["host"],
        port=data["port"],
        protocol={"starttls": "smtp-starttls", "ssl": "smtp-ssl"}.get(data["security"], "smtp"),
        base_dir=server.base_dir,
        user=user,
        password=account.get("password"),
        ca_file=(data.get("tls") or {}).get("ca_file"),
        allow_insecure_auth=bool(
            data.get("allow_insecure_auth") or account.get("allow_insecure_auth")
        ),
        sender=channel.data["email"] if channel else (user if user and "@" in user else None),
        login_skipped=_own_password(owner.kind) if out is not None else None,
        origin=channel if out is not None else server,
    )


def _own_password(kind: str) -> str | None:
    """Why a resource's own account is not logged in to: its password is entered in the
    console by the resource itself (an agent, in Agent Console > Profile)."""
    console = kinds.get(kind).console
    if not console.own_password:
        return None
    return (
        f"login skipped: the {console.noun} enters the password of its own mail account in "
        f"{console.own_password} and channelsync holds none; the server's reachability and "
        "TLS were tested"
    )


def run_checks(
    checks: Sequence[Check],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Progress | None = None,
    send_test_message: str | None = None,
    bindings: Bindings | None = None,
    secrets: Resolver | None = None,
) -> list[Result]:
    """Every check's result, in the order of ``checks``; never raises for a failed check.

    With ``bindings``, a check sends a secret only to the endpoints bound to it. ``secrets``
    is the run's resolver (default: one for these checks)."""
    if not checks:
        return []
    resolver = secrets or Resolver()
    results: list[Result | None] = [None] * len(checks)
    done = 0
    workers = max(1, min(concurrency, len(checks)))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="probe")
    try:
        futures = {
            pool.submit(
                run_check,
                check,
                timeout=timeout,
                send_test_message=send_test_message,
                bindings=bindings,
                secrets=resolver,
            ): i
            for i, check in enumerate(checks)
        }
        for future in as_completed(futures):
            result = results[futures[future]] = future.result()
            log.note(
                "connection test",
                kind=result.kind,
                name=result.name,
                check=result.check,
                endpoint=result.endpoint,
                ok=result.ok,
                ms=result.elapsed_ms,
            )
            done += 1
            if progress is not None:
                progress(done, len(checks))
    except BaseException:
        # Ctrl-C: stop at once, not after the checks under way time out (the process
        # exits without waiting for their threads)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [r for r in results if r is not None]


def run_check(
    check: Check,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    send_test_message: str | None = None,
    bindings: Bindings | None = None,
    secrets: Resolver | None = None,
) -> Result:
    from channelsync.probe.diagnose import diagnose

    attempt = Attempt(check, timeout, resolver=secrets)
    error = None
    if check.login_skipped is not None:
        attempt.warnings.append(check.login_skipped)
    try:
        login = _login(attempt, bindings)
        _protocol(check.protocol)(attempt, login, send_test_message)
    except Exception as exc:  # every failure becomes a diagnosis; nothing escapes a check
        error = diagnose(exc, attempt)
    return Result(
        kind=check.kind,
        name=check.name,
        check=check.check,
        host=check.host,
        port=check.port,
        protocol=check.protocol,
        ok=error is None,
        elapsed_ms=attempt.elapsed_ms(),
        tls=attempt.tls,
        error=error,
        warnings=attempt.warnings,
        messages=attempt.messages,
        queue_id=attempt.queue_id,
        unseen=attempt.unseen,
        oldest=attempt.oldest,
    )


def _protocol(protocol: str) -> Callable[[Attempt, Login | None, str | None], None]:
    if protocol.startswith("imap"):
        from channelsync.probe import imap

        return imap.probe
    if protocol.startswith("pop3"):
        from channelsync.probe import pop3

        return pop3.probe
    from channelsync.probe import smtp

    return smtp.probe


def _login(attempt: Attempt, bindings: Bindings | None) -> Login | None:
    """Resolved credentials; an unreadable or unbound secret fails the check before any
    connection."""
    from channelsync.bindings import NOT_BOUND, mail_endpoint, token_endpoint

    check = attempt.check
    attempt.step("secrets")
    mail = mail_endpoint(check.host, check.port)
    if check.oauth is not None:
        settings = check.oauth
        # the client secret goes to the token endpoint, the token it buys to the mail server
        token_at = token_endpoint(settings.authority, settings.tenant_id)
        if token_at is None and bindings is not None:
            from channelsync.targets import without_userinfo

            where = without_userinfo(f"{settings.authority.rstrip('/')}/{settings.tenant_id}")
            raise ProbeFailure(
                NOT_BOUND,
                f"the token endpoint {where} is "
                "not a plain https:// URL, so its destination is uncertain; nothing was sent",
                "write incoming.oauth.authority as https://host[:port] and tenant_id as the "
                "Directory (tenant) ID",
            )
        field = "incoming.oauth.client_secret"
        endpoints = [e for e in (token_at, mail) if e is not None]
        secret = _resolve(attempt, settings.client_secret, field, bindings, endpoints)
        from channelsync.probe.oauth import acquire_token

        token = acquire_token(attempt, check.oauth, secret)
        attempt.step("connect")
        return Login(check.user or "", token=token)
    if check.password is None:
        return None
    field = "incoming.password" if check.check == "incoming" else "password"
    if check.kind == "EmailChannel" and check.check == "outgoing":
        field = "outgoing.password"
    password = _resolve(attempt, check.password, field, bindings, [mail])
    attempt.step("connect")
    return Login(check.user or "", password=password)


def _resolve(
    attempt: Attempt,
    reference: str,
    field: str,
    bindings: Bindings | None,
    endpoints: list[Endpoint],
) -> str:
    """The secret's value (read through the run's resolver), once it is known to be bound to
    every endpoint it will reach."""
    from channelsync.bindings import NOT_BOUND

    ref = parse_ref(reference)
    if ref is None:
        raise ProbeFailure(
            "secret_unavailable",
            f"{field} is not a secret reference",
            "use ${env:NAME} or ${file:PATH}",
        )
    resolver = attempt.resolver or Resolver()
    try:
        found = resolver.source(ref.source)
    except SecretUnavailable as exc:  # not through validate: a source not installed
        raise _unavailable(attempt, field, ref, exc, "run 'channelsync validate'") from None
    refused = bindings.refusal(ref, attempt.check.base_dir, field, endpoints) if bindings else None
    if refused is not None:
        raise ProbeFailure(NOT_BOUND, *refused)
    try:
        return attempt.secret(resolver.resolve(ref, attempt.check.base_dir))
    except SecretUnavailable as exc:
        raise _unavailable(attempt, field, ref, exc, found.hint(ref.name)) from None


def _unavailable(
    attempt: Attempt, field: str, ref: SecretRef, exc: SecretUnavailable, hint: str
) -> ProbeFailure:
    origin = attempt.check.origin
    where = ""
    if origin is not None:  # the reference's position: reading it again only now
        at = origin.diagnostic(tuple(field.split(".")), "error", "")
        where = f"{at.file}:{at.line}:{at.column}: "
    return ProbeFailure(
        "secret_unavailable", f"{where}{field} {ref}: {exc}; nothing was sent to the server", hint
    )
