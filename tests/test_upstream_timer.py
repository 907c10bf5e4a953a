"""The pooled upstream client times every exchange, though exchanges on one connection share a timer."""

from __future__ import annotations

import asyncio
import time

import pytest

from llmswitch.providers.http_client import ConnectionPool, UpstreamError

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


@pytest.mark.parametrize(("first", "second"), [(30.0, 0.3), (0.1, 0.5)])
def test_a_reused_connection_still_times_out_at_its_own_deadline(first: float, second: float) -> None:
    """Whether the timer armed by the first exchange fires after the second's deadline (re-armed
    earlier) or before it (fires early, re-arms for the rest)."""

    async def main() -> None:
        served = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal served
            while await reader.readuntil(b"\r\n\r\n"):
                served += 1
                if served == 1:  # the first request is answered, the second never is
                    writer.write(ANSWER)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        pool = ConnectionPool(loop, f"http://127.0.0.1:{port}")
        request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        resp, _ = await pool.send(request, connect_timeout=1, deadline=loop.time() + first, whole=True)
        assert await resp.read() == b"ok"
        started = time.monotonic()
        with pytest.raises(UpstreamError) as e:  # on the same, pooled connection
            await pool.send(request, connect_timeout=1, deadline=loop.time() + second, whole=True)
        assert e.value.kind == "timeout" and second - 0.05 < time.monotonic() - started < second + 1
        pool.close()
        server.close()

    asyncio.run(main())
