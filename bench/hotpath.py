"""The request path in one process, measured without the noise of a shared machine.

A real Gateway (config, auth, routing, executor, pricing, metrics, SQLite ledger), a real
ClientConnection and real pooled UpstreamConnections; only the two sockets are replaced by in-memory
transports, so a request costs no syscall and no other process. It reports per request:

- Python opcodes and Python calls executed on the event-loop thread (sys.settrace): deterministic, the
  same on a busy box as on an idle one, so a change to the hot path can be judged by one run. Only
  interpreted code is traced: run with LLMSWITCH_PURE_PYTHON=1 to count the whole path;
- objects left to the cyclic garbage collector per request: each one brings a collection nearer, and
  collections are pauses (this should be 0);
- CPU per request on the event-loop thread (thread time; noisy like any timing here), compiled or not.

    .venv/bin/python bench/hotpath.py [--mode json|stream] [--requests N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

import uvloop

from llmswitch import native
from llmswitch.api.server import ClientConnection
from llmswitch.config import config_from_data
from llmswitch.gateway import Gateway
from llmswitch.ledger.sqlite import open_ledger
from llmswitch.providers.http_client import UpstreamConnection

KEY = "sk-hotpath-0123456789abcdef"
COMPLETION = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}'
)
_CHUNK = (
    '{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
    '"choices":[{"index":0,"delta":{"content":"tok%d "},"finish_reason":null}]}'
)
EVENTS = [
    *[b"data: %s\n\n" % (_CHUNK % i).encode() for i in range(20)],
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}\n\n',
    b"data: [DONE]\n\n",
]
UPSTREAM = {
    "json": b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 29 Nov 2026 08:00:00 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n%s"
    % (len(COMPLETION), COMPLETION),
    "stream": b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in EVENTS)
    + b"0\r\n\r\n",
}


def client_request(mode: str) -> bytes:
    body = b'{"model":"m","messages":[{"role":"user","content":"Say hello."}],"max_tokens":64%s}' % (
        b',"stream":true' if mode == "stream" else b""
    )
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s" % (KEY.encode(), len(body), body)
    )


class UpstreamTransport:
    """Answers every request written to it with the canned response, on the next loop iteration."""

    def __init__(self, loop: asyncio.AbstractEventLoop, answer: bytes) -> None:
        self.loop, self.answer = loop, answer
        self.protocol: UpstreamConnection | None = None

    def write(self, data: bytes) -> None:
        assert self.protocol is not None
        self.loop.call_soon(self.protocol.data_received, self.answer)

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def is_closing(self) -> bool:
        return False


class ClientTransport:
    """Sends the next request once the previous answer is complete; counts answers, checks they are 200."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request: bytes, n: int, mode: str) -> None:
        self.loop, self.request, self.n, self.mode = loop, request, n, mode
        self.answered = 0
        self.done: asyncio.Future[None] = loop.create_future()
        self.conn: ClientConnection | None = None

    def write(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 200"):
            self.done.set_exception(RuntimeError(f"gateway answered {data[:400]!r}"))
            return
        if self.mode == "stream" and not data.endswith(b"0\r\n\r\n"):
            return  # the stream goes on
        self.answered += 1
        if self.answered >= self.n:
            self.done.set_result(None)
        else:
            assert self.conn is not None
            self.loop.call_soon(self.conn.data_received, self.request)

    def close(self) -> None: ...

    def is_closing(self) -> bool:
        return False


async def _drive(gateway: Gateway, mode: str, n: int) -> None:
    loop = asyncio.get_running_loop()
    transport = ClientTransport(loop, client_request(mode), n, mode)
    conn = ClientConnection(gateway.handle, 1 << 20, time.perf_counter, loop)
    transport.conn = conn
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(transport.request)
    await transport.done
    conn.connection_lost(None)


def _count_opcodes() -> tuple[collections.Counter[str], list[int]]:
    per_function: collections.Counter[str] = collections.Counter()
    totals = [0, 0]  # opcodes, calls

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call":
            frame.f_trace_opcodes = True
            totals[1] += 1
        elif event == "opcode":
            totals[0] += 1
            per_function[frame.f_code.co_qualname] += 1
        return tracer

    sys.settrace(tracer)
    return per_function, totals


async def measure(mode: str, n: int, top: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as tmp:
        config = config_from_data(
            {
                "storage": {"url": f"sqlite:///{Path(tmp) / 'ledger.db'}"},
                "auth": {"keys": [{"id": "bench", "key": KEY}]},
                "providers": {
                    "up": {"api": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-up"}
                },
                "models": {
                    "m": {
                        "deployments": [
                            {
                                "provider": "up",
                                "model": "gpt-4o-mini",
                                "price": {"input": 0.15, "output": 0.6},
                            }
                        ]
                    }
                },
            }
        )
        ledger = open_ledger(config.storage.url, batch_rows=config.ledger.batch_rows)
        ledger.start()
        gateway = Gateway(config, ledger)
        gateway.build(loop)
        pool = gateway.pools["up"]
        for _ in range(4):  # kept-alive connections, as after the first requests of a real run
            upstream = UpstreamConnection(pool)
            transport = UpstreamTransport(loop, UPSTREAM[mode])
            transport.protocol = upstream
            upstream.connection_made(transport)  # type: ignore[arg-type]
            pool.release(upstream)
        await _drive(gateway, mode, 200)  # warm-up: caches, the metrics series, the ledger statements
        gc.collect()
        gc.freeze()

        # Objects left to the cyclic collector, per request: a run of n and one of 2n requests, each on
        # one connection (a connection and its parser refer to each other: a few objects per connection).
        leftover = []
        for count in (n, 2 * n):
            await asyncio.sleep(0)
            gc.collect()  # what earlier runs left, uncounted
            gc.set_debug(gc.DEBUG_SAVEALL)
            await _drive(gateway, mode, count)
            await asyncio.sleep(0)
            gc.collect()
            gc.set_debug(0)
            leftover.append(len(gc.garbage))
            garbage = collections.Counter(type(o).__qualname__ for o in gc.garbage)
            gc.garbage.clear()

        # CPU on the event-loop thread.
        t0 = time.thread_time()
        await _drive(gateway, mode, n)
        cpu_us = (time.thread_time() - t0) / n * 1e6

        # Interpreted work, deterministic.
        per_function, totals = _count_opcodes()
        try:
            await _drive(gateway, mode, n)
        finally:
            sys.settrace(None)
        ledger.close()
    return {
        "mode": mode,
        "request_path": native.STATE,
        "requests": n,
        "python_opcodes_per_request": round(totals[0] / n, 1),
        "python_calls_per_request": round(totals[1] / n, 1),
        "gc_objects_per_request": round((leftover[1] - leftover[0]) / n, 3),
        "gc_objects_by_type": dict(garbage.most_common(10)),
        "cpu_us_per_request": round(cpu_us, 1),
        "top_functions": {k: round(v / n, 1) for k, v in per_function.most_common(top)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["json", "stream", "both"], default="both")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=0, help="also list the N functions with most opcodes")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args()
    results = [
        uvloop.run(measure(mode, args.requests, args.top))
        for mode in (["json", "stream"] if args.mode == "both" else [args.mode])
    ]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        print(
            f"{r['mode']:6s} ({r['request_path']}): {r['python_opcodes_per_request']:.0f} Python opcodes and "
            f"{r['python_calls_per_request']:.0f} calls per request (interpreted code only), "
            f"{r['gc_objects_per_request']:g} objects per request left to the GC, "
            f"{r['cpu_us_per_request']:.1f} µs CPU per request on the loop thread"
        )
        for name, count in r["top_functions"].items():
            print(f"  {count:7.1f} {name}")


if __name__ == "__main__":
    main()
