"""A lean HTTP/1.1 client for upstream providers: keep-alive pools over raw asyncio protocols.

Why not httpx/aiohttp: the request path is the product's hottest code, and a protocol object fed by
llhttp (httptools) costs a few microseconds per response where a general client costs ~100. Bodies stay
bytes; streamed bodies are handed to a sink callback straight from `data_received`, with no task switch.
Responses must be HTTP/1.1 with Content-Length, chunked encoding, or read-until-close bodies; we ask for
`Accept-Encoding: identity` so nothing arrives compressed.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import httptools

Sink = Callable[[bytes], None]


class UpstreamError(Exception):
    """A transport-level failure. `kind` is one of: connect, timeout, reset, protocol."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class UpstreamResponse:
    """Status and headers once `headers_ready` resolves; the body arrives in chunks or all at once.

    `on_done`, when given, is called once the response is complete (with None) or has failed (with the
    error), after the futures are resolved: the executor's fast path waits on it instead of a task."""

    __slots__ = (
        "_body",
        "_flush",
        "_sink",
        "done",
        "headers",
        "headers_ready",
        "on_done",
        "received",
        "status",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_done: Callable[[UpstreamError | None], None] | None = None,
    ) -> None:
        self.on_done = on_done
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_ready: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self.received = False  # any response byte seen: a request can no longer be silently re-sent
        self._body: list[bytes] = []
        self._sink: Sink | None = None
        self._flush: Callable[[], None] | None = None

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def ends_at_eof(self) -> bool:
        """The body is delimited by the connection closing: neither Content-Length nor chunked.

        Asked only when the connection closes mid-response (rare), not computed for every response."""
        if not self.headers_ready.done():
            return False
        te = self.header(b"transfer-encoding")
        return self.header(b"content-length") is None and not (te and b"chunked" in te.lower())

    def stream_to(self, sink: Sink, flush: Callable[[], None] | None = None) -> None:
        """Deliver the body to `sink` once per network read: all the HTTP chunks one read held arrive as
        one piece (an upstream sending one event per chunk costs one call, not twenty), then `flush` runs
        so a relay can write once per read. What arrived before this call is delivered at once."""
        self._sink = sink
        self._flush = flush
        self._deliver()

    def _deliver(self) -> None:
        if self._sink is None:
            return
        if self._body:
            pieces, self._body = self._body, []
            self._sink(pieces[0] if len(pieces) == 1 else b"".join(pieces))
        if self._flush is not None:
            self._flush()

    async def read(self) -> bytes:
        await self.done
        return self.body()

    def body(self) -> bytes:
        """The whole body, once the response is complete."""
        return self._body[0] if len(self._body) == 1 else b"".join(self._body)

    def _on_body(self, data: bytes) -> None:
        self._body.append(data)  # a streamed body is handed over by _deliver at the end of the read

    def _complete(self) -> None:
        if not self.done.done():
            self.done.set_result(None)
            self._report(None)

    def _report(self, err: UpstreamError | None) -> None:
        # Dropped before the call: the callback's owner usually holds this response, and the cycle
        # would leave every request's objects to the garbage collector (its pauses are latency).
        on_done, self.on_done = self.on_done, None
        if on_done is not None:
            on_done(err)

    def _fail(self, exc: UpstreamError) -> None:
        if self.done.done():
            return
        for fut in (self.headers_ready, self.done):
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: a failure before headers is reported by headers_ready
        self._report(exc)


class UpstreamConnection:
    """An asyncio protocol by its methods (see ClientConnection: inheriting would cost the compiled build)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: UpstreamResponse | None = None
        self.closed = False
        self.reused = False
        self.deadline = 0.0  # loop time after which the current exchange fails; 0 = none
        self.idle_timeout = 0.0  # max silence while a body streams; 0 = none
        self.last_activity = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # loop time the armed timer fires at

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        resp = self.response
        if resp is None:  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        resp.received = True
        if self.idle_timeout:  # only a streaming exchange is timed on silence
            self.last_activity = self.pool.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self.abort(UpstreamError("protocol", f"malformed HTTP response: {e}"))
        if resp._sink is not None:
            resp._deliver()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        resp = self.response
        if resp is not None and not resp.done.done():
            if exc is None and resp.ends_at_eof():
                self._finish()
            else:
                self.abort(UpstreamError("reset", "upstream closed the connection"))
        self._disarm()

    def pause_writing(self) -> None:  # we only write small request bodies; the kernel buffers them
        pass

    # httptools callbacks
    # A callback can run after abort() (the parser finishes the chunk it was fed), hence the None checks.
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response.headers.append((name, value))

    def on_headers_complete(self) -> None:
        resp = self.response
        if resp is None:
            return
        resp.status = self.parser.get_status_code()
        if not resp.headers_ready.done():
            resp.headers_ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._on_body(body)

    def on_message_complete(self) -> None:
        if self.closed:
            return
        keep = self.parser.should_keep_alive() and not self.pool.closing
        # Back in the pool (or closed) before the response completes: its callback may reuse it.
        resp, self.response = self.response, None
        if keep:
            self.pool.release(self)
        else:
            self.close()
        if resp is not None:
            resp._complete()

    # exchange management
    def begin(self, request: bytes, response: UpstreamResponse, deadline: float, idle_timeout: float) -> None:
        assert self.transport is not None
        self.response = response
        self.deadline = deadline
        self.idle_timeout = idle_timeout
        self.last_activity = self.pool.loop.time()
        self._arm(self._next_check())
        self.transport.write(request)

    def extend(self, deadline: float, idle_timeout: float) -> None:
        """Re-time the exchange: a started stream runs on the idle timeout and the overall deadline."""
        self.deadline = deadline
        self.idle_timeout = idle_timeout
        self.last_activity = self.pool.loop.time()
        self._arm(self._next_check())

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        self._disarm()
        if self.transport is not None:
            self.transport.close()

    def _next_check(self) -> float:
        """When the timer must next look: the deadline or the end of the idle allowance (0 = never)."""
        if not self.idle_timeout:
            return self.deadline
        idle_end = self.last_activity + self.idle_timeout
        return min(self.deadline, idle_end) if self.deadline else idle_end

    def _arm(self, when: float) -> None:
        # Lazy: an armed timer that fires no later than `when` is kept; when it fires early, _on_timer
        # re-arms for what is then due. A pooled connection's exchanges thus share one timer (deadlines
        # only move later) instead of creating and cancelling one per request.
        if not when or (self._timer is not None and self._timer_at <= when):
            return
        self._disarm()
        self._timer_at = when
        self._timer = self.pool.loop.call_at(when, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        # Re-armed lazily, not per chunk: cheaper than resetting a timer for every read.
        self._timer = None
        if self.response is None:  # between exchanges: nothing is timed
            return
        now = self.pool.loop.time()
        if self.deadline and now >= self.deadline:
            self.abort(UpstreamError("timeout", "upstream timed out"))
        elif self.idle_timeout and now >= self.last_activity + self.idle_timeout:
            self.abort(UpstreamError("timeout", "upstream stream went silent"))
        else:
            self._arm(self._next_check())

    def _finish(self) -> None:
        # The timer stays armed for the next exchange on this connection (see _arm).
        resp, self.response = self.response, None
        if resp is not None:
            resp._complete()

    def abort(self, exc: UpstreamError) -> None:
        self._disarm()
        resp, self.response = self.response, None
        if self.transport is not None:
            self.transport.abort()
        self.closed = True
        self.pool.forget(self)
        if resp is not None:  # last: its callback sees the connection already gone
            resp._fail(exc)


class ConnectionPool:
    """Keep-alive connections to one origin (scheme, host, port)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, base_url: str, *, max_idle: int = 256) -> None:
        parts = urlsplit(base_url)
        self.loop = loop
        self.host = parts.hostname or "localhost"
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        default_port = self.port == (443 if self.tls else 80)
        self.host_header = self.host if default_port else f"{self.host}:{self.port}"
        self.path_prefix = parts.path.rstrip("/")
        self.max_idle = max_idle
        self.closing = False
        self._idle: list[UpstreamConnection] = []
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if self.tls else None

    async def _connect(self, timeout: float) -> UpstreamConnection:
        try:
            _, proto = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: cast(asyncio.Protocol, UpstreamConnection(self)),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                ),
                timeout,
            )
        except TimeoutError:
            raise UpstreamError("connect", f"connect to {self.host_header} timed out") from None
        except (OSError, ssl.SSLError) as e:
            raise UpstreamError(
                "connect", f"cannot connect to {self.host_header}: {e.strerror or e}"
            ) from None
        return cast(UpstreamConnection, proto)

    async def send(
        self,
        request: bytes,
        *,
        connect_timeout: float,
        deadline: float,
        idle_timeout: float = 0.0,
        whole: bool = False,
    ) -> tuple[UpstreamResponse, UpstreamConnection]:
        """Write `request` (full HTTP/1.1 request bytes) and wait for the response head, or with `whole`
        for the complete response (one wake-up instead of two when the body is wanted anyway).

        A pooled connection the server had silently closed fails before any response byte; then, and only
        then, the request is re-sent once on a fresh connection.
        """
        for _ in range(2):
            conn = self.idle()
            if conn is None:
                remaining = deadline - self.loop.time() if deadline else connect_timeout
                conn = await self._connect(min(connect_timeout, max(remaining, 0.001)))
            resp = UpstreamResponse(self.loop)
            conn.begin(request, resp, deadline, idle_timeout)
            try:
                await (resp.done if whole else resp.headers_ready)
            except UpstreamError as e:
                if conn.reused and e.kind == "reset" and not resp.received:
                    continue
                raise
            return resp, conn
        raise UpstreamError("reset", "upstream closed the connection")

    def idle(self) -> UpstreamConnection | None:
        """A kept-alive connection, if one is free (the most recently used: likeliest still open)."""
        return self._idle.pop() if self._idle else None

    def release(self, conn: UpstreamConnection) -> None:
        if len(self._idle) < self.max_idle and not self.closing:
            conn.reused = True
            self._idle.append(conn)
        else:
            conn.close()

    def forget(self, conn: UpstreamConnection) -> None:
        if conn in self._idle:
            self._idle.remove(conn)

    def close(self) -> None:
        self.closing = True
        for conn in self._idle:
            conn.close()
        self._idle.clear()


def request_head(pool: ConnectionPool, path: str, headers: list[tuple[str, str]]) -> bytes:
    """The fixed part of a POST request's head, built once per deployment: the request path adds only
    `Content-Length`, any per-request headers, the blank line and the body."""
    lines = [
        f"POST {pool.path_prefix}{path} HTTP/1.1",
        f"Host: {pool.host_header}",
        "Accept-Encoding: identity",
    ]
    lines.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")
