"""HTTP/1.1 edge cases of the front door (llmswitch/api/server.py), byte-exact over raw sockets.

Pipelined errors answered in request order, `Expect: 100-continue` only for the request being served,
HEAD without a body, an early 413 that closes, HTTP/0.9 and stalled requests (408).
A real gateway serves most cases; the request-read timeout is also checked in-process with a short
timeout, so the test does not wait for the 30 s default.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import uvloop

from llmswitch.api.server import ClientConnection, Request, serve
from llmswitch.testing.simulator import Simulator
from tests.harness import GatewayProcess, provider
from tests.raw_http import Resp, Wire

KEY = "sk-edge-client-5b1e"
MAX_BODY = 10_000
CHAT = "/v1/chat/completions"
GOOD = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "ping"}]})
SLOW = orjson.dumps({"model": "slow", "messages": [{"role": "user", "content": "x"}]})


@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    config: dict[str, Any] = {
        "server": {"max_body_bytes": MAX_BODY},
        "auth": {"keys": [{"id": "edge", "key": KEY}]},
        "providers": {"oa": provider(sim.url)},
        "models": {
            "m": {"deployments": [{"provider": "oa", "model": "edge-up"}]},
            "slow": {"deployments": [{"provider": "oa", "model": "edge-up@slow0.4"}]},
            "drip": {"deployments": [{"provider": "oa", "model": "edge-drip"}]},
        },
        "routing": {"max_attempts": 1, "cooldown": {"failures": 1000}},
        "ledger": {"flush_interval": 0.02},
    }
    g = GatewayProcess(config, tmp_path_factory.mktemp("edge-gw")).start()
    yield g
    g.stop()


def http(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    h = {"host": "edge.test", "authorization": f"Bearer {KEY}"}
    if body is not None:
        h["content-type"] = "application/json"
        h["content-length"] = str(len(body))
    h.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    return head.encode("latin-1") + (body or b"")


def error_of(resp: Resp) -> dict[str, Any]:
    assert resp.headers["content-type"] == "application/json"
    err: dict[str, Any] = orjson.loads(resp.body)["error"]
    assert err["message"] and err["type"]
    return err


# --------------------------------------------------------------------------------------------------
# pipelined errors keep their place


def test_malformed_pipelined_request_waits_for_the_one_before(gw: GatewayProcess) -> None:
    with Wire(gw.url) as w:
        w.send(http("POST", CHAT, SLOW) + b"GARBAGE / NOT-HTTP\r\n\r\n")
        got = w.all_responses()
    assert [r.status for r in got] == [200, 400], got
    assert got[0].headers.get("connection") != "close"
    assert got[1].headers["connection"] == "close"
    assert error_of(got[1])["code"] == "bad_request"
    assert gw.rows_for(got[0].headers["x-llmswitch-request-id"])[0]["status"] == "ok"  # not cancelled


def test_refused_request_followed_by_junk_closes_after_its_own_answer(gw: GatewayProcess) -> None:
    """No Content-Length: the body is read as the next 'request'. One answer, then close."""
    raw = http("POST", CHAT, GOOD).replace(b"content-length: %d\r\n" % len(GOOD), b"")
    with Wire(gw.url) as w:
        w.send(raw)
        got = w.all_responses()
    assert [r.status for r in got] == [400] and got[0].headers["connection"] == "close"


def test_oversized_pipelined_request_answered_in_order(gw: GatewayProcess) -> None:
    over = http("POST", CHAT, None, {"content-length": str(MAX_BODY + 1), "content-type": "application/json"})
    with Wire(gw.url) as w:
        w.send(http("POST", CHAT, SLOW) + over + b"{}")  # the body is never sent in full
        t0 = time.monotonic()
        got = w.all_responses()
    assert [r.status for r in got] == [200, 413], got
    assert got[1].headers["connection"] == "close" and error_of(got[1])["code"] == "body_too_large"
    assert time.monotonic() - t0 < 3.0  # closed after the answer, not after a body that never comes


def test_early_413_closes_without_reading_the_body(gw: GatewayProcess) -> None:
    with Wire(gw.url) as w:
        w.send(http("POST", CHAT, None, {"content-length": "50000000"}))
        resp = w.response()
        assert resp.status == 413 and resp.headers["connection"] == "close"
        assert w.eof_within(3.0)


def test_413_for_a_body_sent_in_full_still_reaches_the_client(gw: GatewayProcess) -> None:
    """Lingering close: the client is still uploading when the 413 goes out; it must not get a reset."""
    big = b'{"x":"' + b"y" * (MAX_BODY * 50) + b'"}'
    with Wire(gw.url) as w:
        w.send(http("POST", CHAT, big))
        resp = w.response()
        assert resp.status == 413 and resp.headers["connection"] == "close"
        assert w.eof_within(3.0)


# --------------------------------------------------------------------------------------------------
# Expect: 100-continue


def test_expect_continue_for_the_request_being_served(gw: GatewayProcess) -> None:
    with Wire(gw.url) as w:
        w.send(http("POST", CHAT, None, {"expect": "100-continue", "content-length": str(len(GOOD))}))
        assert w.response(interim=True).status == 100
        w.send(GOOD)
        assert w.response().status == 200


def test_expect_continue_waits_for_the_stream_in_front(gw: GatewayProcess, sim: Simulator) -> None:
    sim.enqueue("edge-drip", {"content": "a b c d e f g h", "chunk_delay": 0.05})
    stream = orjson.dumps({"model": "drip", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    with Wire(gw.url) as w:
        w.send(http("POST", CHAT, stream))
        status, headers, _ = w.head()
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        w.send(http("POST", CHAT, None, {"expect": "100-continue", "content-length": str(len(GOOD))}))
        assert w.chunked().rstrip().endswith(b"data: [DONE]")  # intact: no interim response inside
        assert w.response(interim=True).status == 100  # sent once the stream is done
        w.send(GOOD)
        assert w.response().status == 200


# --------------------------------------------------------------------------------------------------
# HEAD


@pytest.mark.parametrize("path", ["/health", "/v1/models"])
def test_head_has_the_get_headers_and_no_body(gw: GatewayProcess, path: str) -> None:
    with Wire(gw.url) as w:
        w.send(http("GET", path))
        get = w.response()
        w.send(http("HEAD", path) + http("GET", "/health"))
        head = w.response(head_request=True)
        after = w.response()
    assert head.status == get.status == 200
    assert head.headers["content-length"] == str(len(get.body)) and head.body == b""
    assert after.status == 200 and orjson.loads(after.body) == {"status": "ok"}


def test_head_error_has_no_body_either(gw: GatewayProcess) -> None:
    with Wire(gw.url) as w:
        w.send(http("HEAD", CHAT) + http("GET", "/health"))
        head = w.response(head_request=True)
        after = w.response()
    assert head.status == 405 and int(head.headers["content-length"]) > 0
    assert after.status == 200 and orjson.loads(after.body) == {"status": "ok"}


# --------------------------------------------------------------------------------------------------
# HTTP/0.9 and stalled requests


def test_http09_request_line_is_refused_at_once(gw: GatewayProcess) -> None:
    with Wire(gw.url, timeout=2.0) as w:
        w.send(b"GET /health\r\n")
        resp = w.response()
        assert resp.status == 400 and resp.headers["connection"] == "close"
        assert w.eof_within(2.0)


def test_stalled_request_gets_408_with_the_configured_timeout(
    sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config: dict[str, Any] = {
        "server": {"request_timeout": 1},
        "providers": {"oa": provider(sim.url)},
        "models": {"m": {"deployments": [{"provider": "oa", "model": "edge-up"}]}},
    }
    g = GatewayProcess(config, tmp_path_factory.mktemp("edge-timeout")).start()
    try:
        with Wire(g.url, timeout=6.0) as w:
            w.send(http("POST", CHAT, GOOD)[:-5])
            t0 = time.monotonic()
            try:
                resp = w.response()
            except TimeoutError:
                raise AssertionError("no 408 within 6 s") from None
            assert resp.status == 408 and time.monotonic() - t0 < 3.0
    finally:
        g.stop()


# In-process: the server alone, a trivial handler, a short timeout.

TIMEOUT = 0.4


class InProcess:
    """`serve()` on a uvloop loop in a thread, with a handler answering 200 (after `?sleep=S`)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)

    async def _start(self) -> None:
        async def handler(req: Request, conn: ClientConnection) -> None:
            if req.query.startswith(b"sleep="):
                await asyncio.sleep(float(req.query[6:]))
            conn.respond(200, [], b'{"size":%d}' % len(req.body))

        self.server = await serve(
            handler, self.sock, max_body=MAX_BODY, clock=time.perf_counter, request_timeout=TIMEOUT
        )

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def local() -> Iterator[InProcess]:
    s = InProcess()
    yield s
    s.stop()


@pytest.mark.parametrize(
    "partial",
    [
        b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-le",  # mid-headers
        b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\n12345",  # mid-body
        b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",  # mid-chunk
    ],
    ids=["head", "body", "chunk"],
)
def test_stalled_request_gets_408_and_close(local: InProcess, partial: bytes) -> None:
    with Wire(local.url, timeout=5.0) as w:
        w.send(partial)
        t0 = time.monotonic()
        resp = w.response()
        waited = time.monotonic() - t0
        assert resp.status == 408 and resp.headers["connection"] == "close"
        assert error_of(resp)["type"] == "invalid_request_error"
        assert w.eof_within(2.0)
    assert TIMEOUT * 0.9 <= waited < TIMEOUT + 1.0


def test_a_body_still_arriving_is_not_a_stall(local: InProcess) -> None:
    body = b"x" * 40
    with Wire(local.url, timeout=5.0) as w:
        w.send(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 40\r\n\r\n")
        for i in range(0, 40, 4):  # 10 pieces over 1 s: longer than the timeout, never silent that long
            time.sleep(0.1)
            w.send(body[i : i + 4])
        resp = w.response()
    assert resp.status == 200 and orjson.loads(resp.body) == {"size": 40}


def test_waiting_behind_a_slow_request_is_not_a_stall(local: InProcess) -> None:
    with Wire(local.url, timeout=5.0) as w:
        # The second request's head asks for 100 Continue; it comes only when the first is answered,
        # which takes longer than the read timeout.
        w.send(
            b"GET /x?sleep=1.0 HTTP/1.1\r\nhost: a\r\n\r\n"
            b"POST /x HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n"
        )
        assert w.response().status == 200
        assert w.response(interim=True).status == 100
        w.send(b"{}")
        resp = w.response()
    assert resp.status == 200 and orjson.loads(resp.body) == {"size": 2}


def test_idle_keep_alive_connection_is_not_timed_out(local: InProcess) -> None:
    with Wire(local.url, timeout=5.0) as w:
        w.send(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n")
        assert w.response().status == 200
        time.sleep(TIMEOUT * 3)  # no partial request: nothing to time out
        w.send(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n")
        assert w.response().status == 200


def test_pipelined_stall_after_a_slow_request(local: InProcess) -> None:
    """The 408 for a stalled request behind a slow one comes after the slow one's answer."""
    with Wire(local.url, timeout=5.0) as w:
        w.send(
            b"GET /x?sleep=0.6 HTTP/1.1\r\nhost: a\r\n\r\n"
            b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 9\r\n\r\n"
        )
        got = w.all_responses()
    assert [r.status for r in got] == [200, 408], got
