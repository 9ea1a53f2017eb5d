"""Target drivers, found by URL scheme in the ``channelsync.targets`` entry-point group.

The built-in drivers register the same way (see pyproject.toml), so a third-party package
adds a scheme by declaring, for example::

    [project.entry-points."channelsync.targets"]
    acme = "acme_channelsync:AcmeTarget"

A driver class is called as ``Driver(url, readonly=bool)`` and must satisfy
``channelsync.targets.api.Target`` (``api`` re-exports all a driver needs).
"""

from __future__ import annotations

from typing import Any

from channelsync.argtypes import TARGET_ENV, from_env
from channelsync.defaults import DEFAULT_TARGET
from channelsync.errors import ChannelsyncError
from channelsync.targets.base import Absent, Target

ENTRY_POINT_GROUP = "channelsync.targets"
TOKEN_ENV = "CHANNELSYNC_TOKEN"
DEFAULT_URL = DEFAULT_TARGET


def token_variable(environment: str) -> str:
    """The variable with an environment's own API token, read before ``CHANNELSYNC_TOKEN``:
    ``CHANNELSYNC_TOKEN_PROD`` for ``prod`` (upper case, any other character as ``_``), as the
    GitOps workflows name the repository secret. One variable per environment lets one
    process (``plan --all-envs``) reach tenants whose tokens are scoped to each."""
    import re

    return f"{TOKEN_ENV}_{re.sub(r'[^A-Z0-9]', '_', environment.upper())}"


def _authority(url: str) -> tuple[str, str, str]:
    """``url`` as (scheme and slashes, authority, rest). Any number of slashes or backslashes
    may follow the scheme (``https:/u:pw@h``, ``https:///u:pw@h``, ``https:\\\\u:pw@h``): URL
    parsers differ on those, so each counts as the start of an authority."""
    head, sep, rest = url.partition(":")
    if not sep:
        head, rest = "", url
    authority = rest.lstrip("/\\")
    prefix = head + sep + rest[: len(rest) - len(authority)]
    end = min((i for i in (authority.find(c) for c in "/?#") if i >= 0), default=len(authority))
    return prefix, authority[:end], authority[end:]


def has_credentials(url: str) -> bool:
    """Whether ``url`` names a user (``scheme://USER[:PASSWORD]@host``), however many slashes
    follow the scheme."""
    return "@" in _authority(url)[1]


def without_userinfo(url: str) -> str:
    """``url`` fit to show: a user name and password in it are replaced by ``***``."""
    prefix, authority, rest = _authority(url)
    if "@" not in authority:
        return url
    return f"{prefix}***@{authority.rsplit('@', 1)[1]}{rest}"


def refuse_credentials(url: str) -> None:
    """A target URL never carries a user name or password: it is shown in plans, logs and
    PR comments. The error does not repeat the URL."""
    if has_credentials(url):
        raise ChannelsyncError(
            "the target URL carries credentials (USER[:PASSWORD]@HOST); remove them from the "
            f"URL: an API token goes in {TOKEN_ENV}, never in the URL"
        )


def target_url(explicit: str | None) -> str:
    return explicit or from_env(TARGET_ENV) or DEFAULT_URL


def _drivers() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def absent(target: Target) -> str | None:
    """Why ``target`` names no tenant yet ("no tenant at PATH yet: ..."), or None.

    A driver says so as an ``Absent`` one; any other always names a tenant.
    """
    found = target.absent if isinstance(target, Absent) else None
    return found if isinstance(found, str) else None


def open_target(url: str, *, readonly: bool = False, environment: str | None = None) -> Target:
    """``environment``: the environment of the project file this target is for; the
    ``channelsync serve`` driver then takes its token from ``token_variable(environment)``
    when that is set."""
    refuse_credentials(url)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":  # the embedded default: no entry-point scan on the hot path
        from channelsync.targets.sqlite import SqliteTarget

        return SqliteTarget(url, readonly=readonly)
    extra: dict[str, Any] = {}
    if scheme in ("http", "https"):  # built in too: the entry-point scan costs ~20 ms a plan
        from channelsync.targets.http import HttpTarget

        driver: Any = HttpTarget
        if environment is not None:
            extra["environment"] = environment
    else:
        drivers = _drivers()
        entry = drivers.get(scheme)
        if entry is None:
            known = ", ".join(sorted(drivers)) or "none"
            raise ChannelsyncError(
                f"no target driver for '{scheme or url}' (installed drivers: {known}); "
                f"use e.g. {DEFAULT_TARGET}"
            )
        try:
            driver = entry.load()
        except Exception as exc:
            raise ChannelsyncError(f"target driver '{scheme}' failed to load: {exc}") from None
    try:
        target: Target = driver(url, readonly=readonly, **extra)
    except ValueError:  # the driver could not parse the URL; do not echo it (credentials?)
        raise ChannelsyncError(f"bad target URL for the '{scheme}' driver") from None
    return target
