"""The secret bindings file: its format, its errors (file:line:col) and endpoint matching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from channelsync.bindings import Endpoint, mail_endpoint, parse_endpoint, token_endpoint

BAD = """\
bindings:
  - secret: ${env:GITHUB_TOKEN}
    endpoints: ["imap.example.com:99999", "https://u@login.example", 5]
    extra: 1
  - secret: ${env:A}
    endpoints: []
  - secret: ${env:B}
    endpoints: ["smtp.example.com:587"]
  - secret: ${env:B}
    endpoints: ["smtp2.example.com:587"]
  - endpoints: ["x.example:1"]
other: 1
"""


def test_validate_reports_every_problem_of_the_bindings_file_at_its_position(
    workdir: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "channelsync.secrets.yaml").write_text(BAD)
    result = cli("validate", "--secret-bindings", "channelsync.secrets.yaml")
    assert result.code == 1
    f = "channelsync.secrets.yaml"
    assert result.out.splitlines()[:-1] == [
        f"{f}:2:13: error: secret: ${{env:GITHUB_TOKEN}} is reserved: GITHUB_* variables belong "
        "to the CI system or to channelsync itself, never to a channel; store the secret under "
        "a name of its own",
        f"{f}:3:17: error: endpoint 'imap.example.com:99999': port 99999 is outside 1-65535",
        f"{f}:3:43: error: endpoint 'https://***@login.example' carries credentials "
        "(USER[:PASSWORD]@HOST); remove them: a binding names only where a secret may go",
        f"{f}:3:70: error: endpoint must be text",
        f"{f}:4:5: error: unknown field 'extra'; a binding has secret and endpoints",
        f"{f}:6:16: error: endpoints: expected a non-empty list of host:port or https:// URLs",
        f"{f}:9:13: error: ${{env:B}} is bound already (at line 7, column 13); list all its "
        "endpoints in one binding",
        f"{f}:11:5: error: missing 'secret' (e.g. secret: ${{env:NAME}})",
        f"{f}:12:1: error: unknown field 'other'; only 'bindings' is allowed",
    ]
    monkeypatch.setenv("CHANNELSYNC_SECRET_BINDINGS", f)
    assert cli("validate").out == result.out  # the variable selects it too


def test_a_missing_bindings_file_is_an_error(workdir: Path, cli: Any) -> None:
    result = cli("test", "--secret-bindings", "nope.yaml")
    assert result.code == 1
    assert result.err == (
        "nope.yaml:1:1: error: secret bindings file does not exist; create it (see "
        "channelsync.secrets.yaml) or fix the path\n"
        "error: the secret bindings file nope.yaml has errors\n"
    )


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("IMAP.Gmail.com:993", "imap.gmail.com:993"),
        ("[::1]:143", "[::1]:143"),
        ("https://login.microsoftonline.com/", "https://login.microsoftonline.com"),
        ("https://login.microsoftonline.com:443/t", "https://login.microsoftonline.com/t"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_endpoints_are_compared_in_canonical_form(text: str, canonical: str) -> None:
    endpoint = parse_endpoint(text)
    assert isinstance(endpoint, Endpoint)
    assert str(endpoint) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "imap.gmail.com",
        "imap.gmail.com:0",
        "user@imap.gmail.com:993",
        "https://login.microsoftonline.com\\@evil.example",
        "https://login.microsoftonline.com/a/../b",
        "https://login.microsoftonline.com?x=1",
        "ftp://login.microsoftonline.com",
    ],
)
def test_malformed_endpoints_are_refused(text: str) -> None:
    assert isinstance(parse_endpoint(text), str)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://u:SECRETPW@login.example", "https://***@login.example"),
        ("https:/u:SECRETPW@login.example/t", "https:/***@login.example/t"),
        ("https:///u:SECRETPW@login.example", "https:///***@login.example"),
        ("https:\\\\u:SECRETPW@login.example", "https:\\\\***@login.example"),
        ("https://login.example\\SECRETPW@evil.example", "https://***@evil.example"),
    ],
)
def test_an_endpoint_with_credentials_is_refused_without_repeating_them(
    text: str, shown: str
) -> None:
    assert parse_endpoint(text) == (
        f"'{shown}' carries credentials (USER[:PASSWORD]@HOST); remove them: a binding names "
        "only where a secret may go"
    )


def test_a_url_endpoint_covers_its_paths_only_at_segment_boundaries() -> None:
    bound = parse_endpoint("https://login.microsoftonline.com/contoso")
    assert isinstance(bound, Endpoint)
    ok = token_endpoint("https://login.microsoftonline.com", "contoso")
    other = token_endpoint("https://login.microsoftonline.com", "contoso-evil")
    escape = token_endpoint("https://login.microsoftonline.com", "contoso/../evil")
    assert ok is not None and bound.covers(ok)
    assert other is not None and not bound.covers(other)
    assert escape is None  # not a plain URL: refused outright
    assert not bound.covers(mail_endpoint("login.microsoftonline.com", 443))


def test_hint_for_a_block_list_of_endpoints_names_its_line(tmp_path: Path) -> None:
    from channelsync.bindings import load
    from channelsync.secrets import SecretRef

    path = tmp_path / "b.yaml"
    path.write_text("bindings:\n  - secret: ${env:A}\n    endpoints:\n      - a.example:1\n")
    refused = load(path, tmp_path).refusal(
        SecretRef("env", "A"), tmp_path, "password", [mail_endpoint("b.example", 2)]
    )
    assert refused is not None
    assert refused[1] == (
        f'if the secret belongs there, add "b.example:2" to the endpoints at line 3 of {path}'
    )
