"""A raw HTTP/1.1 client for tests that must send what no SDK (or http.client) would: one socket,
requests written byte for byte, whole responses read one at a time, in order."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class Resp:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes  # de-chunked
    head: bytes  # status line and headers as received

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"

    def json(self) -> Any:
        return json.loads(self.body)


class Wire:
    """One TCP connection to `url` (http://host:port)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.rf = self.sock.makefile("rb")

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.rf.close()
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def head(self) -> tuple[int, dict[str, str], bytes]:
        """The next status line and headers: (status, headers, raw bytes)."""
        line = self.rf.readline(65537)
        if not line:
            raise EOFError("the connection closed before a response")
        m = re.fullmatch(rb"HTTP/1\.[01] (\d{3}) [^\r\n]*\r\n", line)
        assert m, f"not an HTTP status line: {line[:200]!r}"
        raw, headers = line, {}
        while True:
            h = self.rf.readline(65537)
            raw += h
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(m.group(1)), headers, raw

    def response(self, *, head_request: bool = False, interim: bool = False) -> Resp:
        """The next response; interim 1xx answers are skipped unless `interim` asks for them."""
        status, headers, raw = self.head()
        while status < 200 and not interim:
            status, headers, raw = self.head()
        if head_request or status < 200 or status in (204, 304):
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self.chunked()
        elif "content-length" in headers:
            body = self.exactly(int(headers["content-length"]))
        else:
            body = self.rf.read()
        return Resp(status, headers, body, raw)

    def exactly(self, n: int) -> bytes:
        data = self.rf.read(n)
        assert len(data) == n, f"body cut short: {len(data)} of {n} bytes"
        return data

    def chunked(self) -> bytes:
        out = b""
        while True:
            line = self.rf.readline(1024)
            m = re.fullmatch(rb"([0-9a-fA-F]+)(;[^\r\n]*)?\r\n", line)
            assert m, f"bad chunk-size line: {line[:100]!r}"
            size = int(m.group(1), 16)
            if size == 0:
                while self.rf.readline(1024) not in (b"\r\n", b""):
                    pass  # trailers
                return out
            out += self.exactly(size)
            assert self.rf.read(2) == b"\r\n", "bad chunk framing"

    def all_responses(self) -> list[Resp]:
        """Every response until the server closes the connection."""
        got = []
        while True:
            try:
                got.append(self.response())
            except EOFError:
                return got

    def eof_within(self, seconds: float = 3.0) -> bool:
        """The server closed its side within `seconds` (EOF, or a reset after the answer); False on a hang."""
        self.sock.settimeout(seconds)
        try:
            return self.rf.read(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
