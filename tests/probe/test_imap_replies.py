"""The IMAP replies channelsync reads itself (pipelined LOGIN, EXAMINE, SEARCH, FETCH):
answers matched by tag in any order, literals and line counts bounded."""

from __future__ import annotations

import ast
import imaplib
import time
from collections.abc import Callable
from pathlib import Path

from channelsync.probe import imap as probe_imap
from tests.probe.conftest import Probe, channel, only
from tests.probe.responder import Responder, Script, imap

Responders = Callable[..., Responder]
Password = Callable[[str], str]


def _with_stats(fetch_reply: Callable[[str, str], str]) -> tuple[str, Script]:
    """The scripted IMAP server, answering SEARCH only together with FETCH (after it)."""
    greeting, base = imap()

    def script(line: str, state: dict[str, str]) -> str | None:
        tag, _, rest = line.partition(" ")
        if rest.upper().startswith("UID SEARCH"):
            state["search"] = tag
            return ""
        if rest.upper().startswith("FETCH"):
            return fetch_reply(state.pop("search", "?"), tag)
        return base(line, state)

    return greeting, script


def test_answers_to_pipelined_commands_are_matched_by_tag_in_any_order(
    probe: Probe, password: Password, responders: Responders
) -> None:
    server = responders(
        *_with_stats(
            lambda search, fetch: (
                '* 1 FETCH (INTERNALDATE "01-Dec-2026 10:00:00 +0000")\r\n'
                f"{fetch} OK FETCH completed\r\n* SEARCH 2 3\r\n{search} OK SEARCH completed\r\n"
            )
        )
    )
    result = only(probe(channel("imap", server.port, ca=False, allow_insecure_auth=True)))
    assert result.ok, result.error
    assert (result.messages, result.unseen) == (3, 2)
    assert result.oldest is not None and result.oldest.isoformat() == "2026-12-01T10:00:00+00:00"


def test_a_literal_over_the_bound_ends_the_check_without_reading_it(
    probe: Probe, password: Password, responders: Responders
) -> None:
    size = probe_imap.MAX_LITERAL + 1
    server = responders(*_with_stats(lambda search, fetch: f"* 1 FETCH (BODY[] {{{size}}}\r\n"))
    started = time.monotonic()
    result = only(probe(channel("imap", server.port, ca=False, allow_insecure_auth=True)))
    assert time.monotonic() - started < 5
    assert not result.ok
    assert result.error is not None
    assert f"a literal of {size:,} bytes" in result.error.message


def test_a_literal_within_the_bound_is_read_as_part_of_its_line(
    probe: Probe, password: Password, responders: Responders
) -> None:
    server = responders(
        *_with_stats(
            lambda search, fetch: (
                '* 1 FETCH (BODY[] {5}\r\nhello INTERNALDATE "02-Dec-2026 08:30:00 +0000")\r\n'
                f"* SEARCH\r\n{search} OK done\r\n{fetch} OK done\r\n"
            )
        )
    )
    result = only(probe(channel("imap", server.port, ca=False, allow_insecure_auth=True)))
    assert result.ok, result.error
    assert result.unseen == 0
    assert result.oldest is not None and result.oldest.day == 2


def test_the_probe_uses_no_private_name_of_imaplib() -> None:
    """imaplib's private names (``_new_tag``, ``tagged_commands``, ``_get_tagged_response``,
    ``_get_capabilities``, ``_tls_established`` ...) change between Python versions."""
    library = ast.parse(Path(imaplib.__file__).read_text(encoding="utf-8"))
    private = {"tagged_commands", "untagged_responses"}
    for node in ast.walk(library):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            private.add(node.attr)
        elif isinstance(node, ast.FunctionDef) and node.name.startswith("_"):
            private.add(node.name)
    private = {name for name in private if not name.startswith("__")}
    ours = ast.parse(Path(probe_imap.__file__).read_text(encoding="utf-8"))
    used = {n.attr for n in ast.walk(ours) if isinstance(n, ast.Attribute)}
    used |= {n.name for n in ast.walk(ours) if isinstance(n, ast.FunctionDef)}
    assert sorted(used & private) == []
