"""Optional prompt and answer logging (`logging.bodies: true`), the traffic `llmswitch advise` replays.

The request path only appends references to bytes it already has (the client's body, the answer or the
stream's forwarded events) to a deque. A background thread does everything else: decoding, extracting
the answer text, redacting configured patterns (and every provider key), writing batches, and deleting
rows older than the retention period.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from llmswitch.ledger.schema import migrate
from llmswitch.ledger.sqlite import sqlite_path_from_url
from llmswitch.providers.sse import EventSplitter, event_data

log = logging.getLogger("llmswitch.ledger")

_MAX_PENDING = 10_000  # bodies are large: past this, new ones are dropped (and counted), never the ledger


class PendingBody(NamedTuple):
    """What the request path hands over: references to bytes it already holds."""

    request_id: str
    ts: float
    surface: str
    model: str
    request: bytes  # the client's raw body
    streamed: bool
    response: list[bytes]  # the answer body, or the stream's forwarded event bytes
    tags: str | None


@dataclass(slots=True)
class LoggedExchange:
    request_id: str
    ts: float
    surface: str  # "openai" | "anthropic"
    model: str  # the requested model name
    request: dict[str, Any]  # the client's JSON body
    response_text: str  # the assistant's final text
    tags: dict[str, str] = field(default_factory=dict)


class BodyLog:
    def __init__(
        self,
        url: str,
        *,
        redact: list[str],
        secrets: list[str],
        retention_days: float,
        flush_interval: float = 1.0,
    ) -> None:
        self.path = sqlite_path_from_url(url)
        patterns = [re.escape(s) for s in secrets if s] + list(redact)
        self._redact = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None
        self._retention = retention_days * 86400
        self._interval = flush_interval
        self._queue: deque[PendingBody] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def append(self, item: PendingBody) -> None:
        if len(self._queue) >= _MAX_PENDING:
            self.dropped += 1
            return
        self._queue.append(item)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="llmswitch-bodies", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        migrate(conn)
        last_purge = 0.0
        while True:
            stopping = self._stop.wait(self._interval)
            rows = []
            while self._queue:
                rows.append(self._row(self._queue.popleft()))
            try:
                if rows:
                    with conn:
                        conn.executemany(
                            "INSERT INTO bodies (request_id, ts, surface, model, request, response_text,"
                            " tags) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            rows,
                        )
                if time.time() - last_purge > 3600:
                    last_purge = time.time()
                    with conn:
                        conn.execute("DELETE FROM bodies WHERE ts < ?", (time.time() - self._retention,))
            except sqlite3.Error as e:
                log.error("body log write failed (%d bodies lost): %s", len(rows), e)
            if stopping:
                break
        conn.close()

    def _row(self, b: PendingBody) -> tuple[Any, ...]:
        text = (
            stream_text(b.surface, b.response) if b.streamed else answer_text(b.surface, b"".join(b.response))
        )
        request = self._scrub(b.request.decode("utf-8", "replace"))
        return (b.request_id, b.ts, b.surface, b.model, request, self._scrub(text), b.tags)

    def _scrub(self, text: str) -> str:
        return self._redact.sub("[REDACTED]", text) if self._redact is not None else text


def answer_text(surface: str, body: bytes) -> str:
    """The assistant's text in a non-streamed answer of either surface."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(data, dict):
        return ""
    if surface == "anthropic":
        return "".join(b.get("text", "") for b in data.get("content") or [] if isinstance(b, dict))
    choices = data.get("choices") or [{}]
    message = choices[0].get("message") or {} if isinstance(choices[0], dict) else {}
    content = message.get("content")
    return content if isinstance(content, str) else ""


def stream_text(surface: str, chunks: list[bytes]) -> str:
    """The assistant's text assembled from a stream's forwarded events."""
    out: list[str] = []
    splitter = EventSplitter()
    for event in splitter.feed(b"".join(chunks) + b"\n\n"):
        payload = event_data(event)
        if not payload or payload == b"[DONE]":
            continue
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(data, dict):
            continue
        if surface == "anthropic":
            delta = data.get("delta") or {}
            if data.get("type") == "content_block_delta" and delta.get("type") == "text_delta":
                out.append(delta.get("text", ""))
        else:
            for choice in data.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if isinstance(piece, str):
                    out.append(piece)
    return "".join(out)


def read_logged(url: str, *, since_seconds: float | None) -> list[LoggedExchange]:
    """Logged exchanges in the window, oldest first (read-only; never blocks the gateway's writers)."""
    from llmswitch.ledger.usage import LedgerNotFound

    path = sqlite_path_from_url(url) if "://" in url else url
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.OperationalError:
        raise LedgerNotFound(path) from None
    since = time.time() - since_seconds if since_seconds is not None else 0.0
    try:
        rows = conn.execute(
            "SELECT request_id, ts, surface, model, request, response_text, tags FROM bodies"
            " WHERE ts >= ? ORDER BY ts",
            (since,),
        ).fetchall()
    except sqlite3.OperationalError:
        raise LedgerNotFound(path, "no logged bodies (is logging.bodies on?)") from None
    finally:
        conn.close()
    out = []
    for request_id, ts, surface, model, request, response_text, tags in rows:
        try:
            body = orjson.loads(request)
        except orjson.JSONDecodeError:
            continue
        out.append(
            LoggedExchange(
                request_id, ts, surface, model, body, response_text or "", orjson.loads(tags) if tags else {}
            )
        )
    return out
