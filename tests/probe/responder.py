"""A scripted line server: replays a vendor's replies (Gmail, Exchange) word for word.

Only as much IMAP/SMTP as the probes need; every line received is recorded, so tests can
check what a client did or did not send.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable

# A script gets one received line and returns the reply (CRLF-terminated lines), or None to
# hang up. It may keep state in the dict it is given (one per connection). A hostile peer's
# reply can be a Stream instead: it writes to the connection until the client hangs up.
Stream = Callable[[socket.socket], None]
Script = Callable[[str, dict[str, str]], str | Stream | None]


class Responder:
    def __init__(
        self,
        greeting: str | None,
        script: Script,
        tls: ssl.SSLContext | None = None,
        *,
        hang_up_on_hello: bool = False,
    ) -> None:
        self.greeting, self.script, self.tls = greeting, script, tls
        self.hang_up_on_hello = hang_up_on_hello
        self.received: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError), conn:
            conn.settimeout(10)
            if self.hang_up_on_hello:
                conn.recv(4096)
                return
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
                self._connections.append(conn)
            if self.greeting is not None:
                conn.sendall(self.greeting.encode())
            state: dict[str, str] = {}
            with conn.makefile("rb") as lines:
                for raw in lines:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    self.received.append(line)
                    reply = self.script(line, state)
                    if reply is None:
                        return
                    if callable(reply):
                        reply(conn)
                        return
                    conn.sendall(reply.encode())


def imap(
    *,
    capabilities: str = "IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2",
    login: str = "OK LOGIN completed",
    authenticate: str = "OK AUTHENTICATE completed",
    examine: str = "OK [READ-ONLY] EXAMINE completed",
    echo: Callable[[str], str] = str,
) -> tuple[str, Script]:
    """Greeting and script of an IMAP server; ``login``/``authenticate``/``examine`` are the
    tagged replies (text after the tag); ``{line}`` in ``login`` is the command received and in
    ``authenticate`` the client's SASL response, both passed through ``echo`` (e.g. str.upper,
    for a server that changes the case of what it echoes)."""

    def script(line: str, state: dict[str, str]) -> str | None:
        if "pending" in state:
            return f"{state.pop('pending')} {authenticate.format(line=echo(line))}\r\n"
        tag, _, rest = line.partition(" ")
        command = rest.split(" ", 1)[0].upper()
        if command == "CAPABILITY":
            return f"* CAPABILITY {capabilities}\r\n{tag} OK CAPABILITY completed\r\n"
        if command == "LOGIN":
            return f"{tag} {login.format(line=echo(line))}\r\n"
        if command == "AUTHENTICATE":
            state["pending"] = tag
            return "+ \r\n"
        if command in ("EXAMINE", "SELECT"):
            if not examine.startswith("OK"):
                return f"{tag} {examine}\r\n"
            return f"* 3 EXISTS\r\n* 0 RECENT\r\n{tag} {examine}\r\n"
        if command == "LOGOUT":
            return None
        return f"{tag} BAD unknown command\r\n"

    return f"* OK [CAPABILITY {capabilities}] scripted IMAP ready\r\n", script


def smtp(
    *,
    auth_reply: str,
    host: str = "smtp.example.test",
    mechanisms: str = "LOGIN PLAIN XOAUTH2",
    echo: Callable[[str], str] = str,
) -> tuple[str, Script]:
    """Greeting and script of an SMTP server whose AUTH answers ``auth_reply`` (may be
    multi-line, joined with CRLF); ``{line}`` in it is the client's last AUTH line through
    ``echo`` (for AUTH LOGIN: the password line, after the 334 challenge)."""

    def script(line: str, state: dict[str, str]) -> str | None:
        if state.pop("login", None):
            return auth_reply.format(line=echo(line)) + "\r\n"
        command = line.split(" ", 1)[0].upper()
        if command == "EHLO":
            return f"250-{host} at your service\r\n250-AUTH {mechanisms}\r\n250 8BITMIME\r\n"
        if command == "AUTH" and line.upper().startswith("AUTH LOGIN"):
            state["login"] = "password"
            return "334 UGFzc3dvcmQ6\r\n"
        if command == "AUTH":
            return auth_reply.format(line=echo(line)) + "\r\n"
        if command == "QUIT":
            return None
        return "502 5.5.1 Unrecognized command.\r\n"

    return f"220 {host} ESMTP scripted\r\n", script


def pop3(*, pass_reply: str, echo: Callable[[str], str] = str) -> tuple[str, Script]:
    """Greeting and script of a POP3 server; ``{line}`` in ``pass_reply`` is the PASS line
    (or the AUTH line with its initial response)."""

    def script(line: str, state: dict[str, str]) -> str | None:
        command = line.split(" ", 1)[0].upper()
        if command == "CAPA":
            return "+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n"
        if command == "USER":
            return "+OK\r\n"
        if command in ("PASS", "AUTH"):
            return pass_reply.format(line=echo(line)) + "\r\n"
        if command == "QUIT":
            return None
        return "-ERR unknown command\r\n"

    return "+OK scripted POP3 ready\r\n", script


def encodings(text: str) -> dict[str, str]:
    """``text`` in every form a server could echo it: the secret-leak tests' one list."""
    import base64
    import json
    import urllib.parse

    raw = text.encode()
    b64 = base64.b64encode
    return {
        "plain": text,
        "upper": text.upper(),
        "lower": text.lower(),
        "json": json.dumps(text),
        "url": urllib.parse.quote(text, safe=""),
        "url-plus": urllib.parse.quote_plus(text),
        "percent-every-byte": "".join(f"%{b:02X}" for b in raw),
        "json-u-escapes": "".join(f"\\u{ord(c):04X}" for c in text),
        "hex": raw.hex(),
        "hex-upper": raw.hex().upper(),
        "base64": b64(raw).decode(),
        "base64-upper": b64(raw).decode().upper(),
        "base64-offset-1": b64(b"x" + raw + b"tail").decode(),
        "base64-offset-2": b64(b"xy" + raw + b"t").decode(),
        "base64url": base64.urlsafe_b64encode(b"\xff\xfe>" + raw).decode(),
        "base64-of-hex": b64(raw.hex().encode()).decode(),
        "hex-colons": ":".join(f"{b:02x}" for b in raw),
        "hex-dashes-upper": "-".join(f"{b:02X}" for b in raw),
        "html-decimal": "".join(f"&#{ord(c)};" for c in text),
        "html-hex": "".join(f"&#x{ord(c):x};" for c in text),
        "base32": base64.b32encode(raw).decode(),
        "base32-lower": base64.b32encode(raw).decode().lower(),
        "utf-16-le-hex": text.encode("utf-16-le").hex(),
        "utf-16-be-hex": text.encode("utf-16-be").hex().upper(),
        "octal-escapes": "".join(f"\\{b:03o}" for b in raw),
    }


def every_form(line: str) -> str:
    """An echo for the scripts: the received line in all of ``encodings``, space-separated."""
    return " ".join(encodings(line).values())
