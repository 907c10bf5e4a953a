"""Upstream LLM provider simulator: a loopback HTTP/1.1 server (asyncio + httptools) that speaks
OpenAI Chat Completions and Anthropic Messages and misbehaves on demand.

Behaviours (errors, delays, resets, hangs, garbage, cut streams, canned content/usage) come from a
FIFO queue filled through `Simulator.enqueue()` or `POST /_sim/enqueue`, or statically from a model id
such as `qwen@500` (see `sim_behaviour.static_behaviour`). Run standalone with
`python -m llmswitch.testing.simulator [--host H] [--port P]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Self, cast
from urllib.parse import urlsplit

import httptools
import orjson
import uvloop

from llmswitch.testing import sim_behaviour as sb
from llmswitch.testing.sim_behaviour import Behaviour, Json

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
MESSAGES_PATHS = ("/v1/messages", "/messages")
MODELS = ("sim-small", "sim-large")


class SimState:
    """Behaviour queues and the request log; shared by the loop thread and callers, hence locked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Behaviour]] = {}
        self._log: list[Json] = []

    def enqueue(self, model: str, behaviours: list[Behaviour]) -> None:
        with self._lock:
            self._queues.setdefault(model, deque()).extend(dict(b) for b in behaviours)

    def take(self, model: str) -> Behaviour:
        """Next queued behaviour for `model` (its own queue first, then '*'), over the static one."""
        with self._lock:
            for key in (model, "*"):
                if queue := self._queues.get(key):
                    return {**sb.static_behaviour(model), **queue.popleft()}
        return sb.static_behaviour(model)

    def log(self, entry: Json) -> None:
        with self._lock:
            self._log.append(entry)

    def requests(self) -> list[Json]:
        with self._lock:
            return orjson.loads(orjson.dumps(self._log))  # type: ignore[no-any-return]  # deep copy

    def reset(self) -> None:
        with self._lock:
            self._queues.clear()
            self._log.clear()


@dataclass(slots=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    keep_alive: bool


class _Connection(asyncio.Protocol):
    """One client connection. httptools parses; a worker task answers requests in arrival order."""

    def __init__(self, state: SimState, conns: set[_Connection]) -> None:
        self.state, self.conns = state, conns
        self.parser = httptools.HttpRequestParser(self)
        self.queue: asyncio.Queue[_Request | None] = asyncio.Queue()  # None: unparseable input
        self.transport: asyncio.Transport | None = None
        self.worker: asyncio.Task[None] | None = None
        self.broken = False
        self.keep_alive = True
        self._url, self._headers, self._body = b"", dict[str, str](), list[bytes]()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's TCPTransport is not a subclass
        self.conns.add(self)
        self.worker = asyncio.get_running_loop().create_task(self._work())

    def connection_lost(self, exc: Exception | None) -> None:
        self.conns.discard(self)
        if self.worker is not None:
            self.worker.cancel()  # also ends a "hang" or a pending delay

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self.broken = True
            self.queue.put_nowait(None)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self._body = b"", {}, []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key, val = name.decode("latin-1").lower(), value.decode("latin-1")
        self._headers[key] = f"{self._headers[key]}, {val}" if key in self._headers else val

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode("latin-1")
        path = urlsplit(self._url.decode("latin-1")).path
        keep = bool(self.parser.should_keep_alive())
        self.queue.put_nowait(_Request(method, path, self._headers, b"".join(self._body), keep))

    # writing
    def _write(self, data: bytes) -> bool:
        if self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True

    def _head(self, status: int, ctype: str, extra: list[tuple[str, str]]) -> bytes:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {status} {phrase}", f"content-type: {ctype}", "server: llmswitch-sim"]
        lines += [f"{k}: {v}" for k, v in extra]
        if not self.keep_alive:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str = "application/json",
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        hdrs = [("content-length", str(len(body))), *(extra or [])]
        self._write(self._head(status, ctype, hdrs) + body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, orjson.dumps(obj))

    def _error(
        self, status: int, anthropic: bool, message: str, extra: list[tuple[str, str]] | None = None
    ) -> None:
        self._send(status, sb.error_body(status, anthropic, message), extra=extra)

    async def _drain(self) -> None:
        while self.transport is not None and not self.transport.is_closing():
            if not self.transport.get_write_buffer_size():
                return
            await asyncio.sleep(0.002)

    def _rst(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0) instead of an orderly FIN."""
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    # request handling
    async def _work(self) -> None:
        while True:
            req = await self.queue.get()
            if req is None:
                self.keep_alive = False
                self._error(400, False, "malformed HTTP request")
            else:
                self.keep_alive = req.keep_alive
                try:
                    if await self._handle(req) and req.keep_alive:
                        continue
                except Exception as e:  # e.g. a behaviour with ill-typed values: answer, then close
                    self.keep_alive = False
                    self._error(500, False, f"simulator failure: {e!r}")
            if self.transport is not None and not self.transport.is_closing():
                await self._drain()
                self.transport.close()
            return

    async def _handle(self, req: _Request) -> bool:
        """Answer one request; False if the connection was aborted."""
        body: Any = None
        with contextlib.suppress(orjson.JSONDecodeError):
            body = orjson.loads(req.raw) if req.raw else None
        if req.path.startswith("/_sim/"):
            self._control(req, body)
            return True
        raw = req.raw.decode("utf-8", "replace")
        self.state.log(
            {"method": req.method, "path": req.path, "headers": req.headers, "body": body, "raw_body": raw}
        )
        anthropic = req.path in MESSAGES_PATHS
        if req.method == "POST" and (req.path in CHAT_PATHS or anthropic):
            return await self._complete(req, body, anthropic)
        if req.method == "GET" and req.path in ("/v1/models", "/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "llmswitch-sim"} for m in MODELS]
            self._json(200, {"object": "list", "data": data})
        else:
            self._error(404, anthropic, f"no route for {req.method} {req.path}")
        return True

    async def _complete(self, req: _Request, body: Any, anthropic: bool) -> bool:
        if not isinstance(body, dict):
            valid = body is not None or req.raw.strip() == b"null"
            self._error(
                400, anthropic, f"request body {'must be a JSON object' if valid else 'is not valid JSON'}"
            )
            return True
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not isinstance(messages, list):
            self._error(400, anthropic, "'model' (string) and 'messages' (array) are required")
            return True
        b = self.state.take(model)
        extra = [("retry-after", str(b["retry_after"]))] if "retry_after" in b else []
        if b.get("hang"):
            await asyncio.get_running_loop().create_future()  # never resolves; cancelled on disconnect
        if b.get("delay"):
            await asyncio.sleep(float(b["delay"]))
        if b.get("reset"):
            self._rst()
            return False
        status = int(b.get("status", 200))
        if status != 200:
            self._error(status, anthropic, f"simulated upstream error {status}", extra)
            return True
        stream = body.get("stream") is True
        if b.get("garbage") and not stream:
            self._send(200, sb.GARBAGE, extra=extra)  # claims JSON, is not
            return True
        try:
            answer = sb.plan(body, b, anthropic=anthropic)
        except (TypeError, ValueError, AttributeError) as e:  # odd field types: answer 400, never crash
            self._error(400, anthropic, f"cannot simulate this request: {e}")
            return True
        if not stream:
            self._send(200, sb.anthropic_body(answer) if anthropic else sb.openai_body(answer), extra=extra)
            return True
        if b.get("garbage"):
            events = [sb.garbage_event(anthropic), b"data: [DONE]\n\n"]
        elif anthropic:
            events = sb.anthropic_events(answer)
        else:
            opts = body.get("stream_options")
            events = sb.openai_events(answer, isinstance(opts, dict) and opts.get("include_usage") is True)
        return await self._stream(events, b, extra)

    async def _stream(self, events: list[bytes], b: Behaviour, extra: list[tuple[str, str]]) -> bool:
        """SSE over chunked encoding; `cut_after` N aborts after N events, mid-body."""
        hdrs = [("transfer-encoding", "chunked"), ("cache-control", "no-cache"), *extra]
        self._write(self._head(200, "text/event-stream; charset=utf-8", hdrs))
        cut = b.get("cut_after")
        gap = float(b.get("chunk_delay", 0))
        for i, event in enumerate(events):
            if isinstance(cut, int) and i >= cut:
                await self._drain()  # let the N events out before the abort discards the buffer
                assert self.transport is not None
                self.transport.abort()
                return False
            if gap and i:
                await asyncio.sleep(gap)
            if not self._write(b"%x\r\n%s\r\n" % (len(event), event)):
                return False
        self._write(b"0\r\n\r\n")
        return True

    def _control(self, req: _Request, body: Any) -> None:
        route = (req.method, req.path)
        if route == ("POST", "/_sim/enqueue"):
            model = body.get("model", "*") if isinstance(body, dict) else None
            behaviours = body.get("behaviours") if isinstance(body, dict) else None
            if not isinstance(model, str) or not isinstance(behaviours, list):
                self._error(400, False, 'expected {"model": str, "behaviours": [object, ...]}')
            elif not all(isinstance(x, dict) for x in behaviours):
                self._error(400, False, "each behaviour must be a JSON object")
            else:
                self.state.enqueue(model, behaviours)
                self._json(200, {"queued": len(behaviours)})
        elif route == ("GET", "/_sim/requests"):
            self._json(200, {"requests": self.state.requests()})
        elif route == ("POST", "/_sim/reset"):
            self.state.reset()
            self._json(200, {"ok": True})
        else:
            self._error(404, False, f"no control route for {req.method} {req.path}")


class Simulator:
    """The simulator on its own uvloop thread, for pytest fixtures and the CLI.

    >>> sim = Simulator().start(); sim.enqueue("gpt-x", {"status": 500}); ...; sim.stop()
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self.state = SimState()
        self._conns: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        return f"http://{host}:{self._port}"

    thread_name = "llmswitch-sim"

    def _connection_factory(self) -> Callable[[], asyncio.Protocol]:
        """The protocol serving each connection; subclasses answer differently (testing/recorded.py)."""
        return functools.partial(_Connection, self.state, self._conns)

    def start(self) -> Self:
        """Bind and serve on a daemon thread; returns once listening (raises if the bind fails)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = uvloop.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                factory = self._connection_factory()
                server = cast(
                    asyncio.Server,
                    loop.run_until_complete(loop.create_server(factory, self.host, self._port)),
                )
                self._server = server
                self._port = server.sockets[0].getsockname()[1]
                self._loop = loop
            except BaseException as e:
                failure.append(e)
                loop.close()
                return
            finally:
                ready.set()
            try:
                loop.run_forever()
            finally:  # let cancelled connection workers finish before closing the loop
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def run_until_interrupted(self) -> None:
        """Serve in the foreground (the command-line entry points) until Ctrl-C, then stop."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=1)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Close the listener and every open connection, then stop the loop thread."""
        loop, self._loop = self._loop, None
        if loop is None:
            return

        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for conn in list(self._conns):
                if conn.transport is not None:
                    conn.transport.abort()
            loop.stop()

        loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def enqueue(self, model: str, *behaviours: Behaviour) -> None:
        """Queue behaviours for requests naming upstream `model` ('*' = any), consumed FIFO."""
        self.state.enqueue(model, list(behaviours))

    def requests(self) -> list[Json]:
        """Every API request received so far (method, path, headers, body, raw_body)."""
        return self.state.requests()

    def reset(self) -> None:
        """Clear behaviour queues and the request log."""
        self.state.reset()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="llmswitch upstream LLM provider simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8901)
    args = parser.parse_args(argv)
    sim = Simulator(args.host, args.port).start()
    print(
        f"llmswitch simulator listening on {sim.url} (OpenAI: {sim.url}/v1, Anthropic: {sim.url})", flush=True
    )
    sim.run_until_interrupted()


if __name__ == "__main__":
    main()
