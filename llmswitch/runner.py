"""Run the gateway: event loop, listener, ledger thread, and a clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import uvloop

from llmswitch.api.server import serve
from llmswitch.config import Config
from llmswitch.gateway import Gateway
from llmswitch.ledger.sqlite import open_ledger

log = logging.getLogger("llmswitch")


async def run_gateway(
    config: Config, host: str, port: int, *, ready: asyncio.Event | None = None, grace: float = 10.0
) -> None:
    ledger = open_ledger(
        config.storage.url, batch_rows=config.ledger.batch_rows, flush_interval=config.ledger.flush_interval
    )
    ledger.start()
    gateway = Gateway(config, ledger)
    loop = asyncio.get_running_loop()
    gateway.build(loop)
    server = await serve(
        gateway.handle, host, port, max_body=config.server.max_body_bytes, clock=time.perf_counter
    )
    bound = server.sockets[0].getsockname() if server.sockets else (host, port)
    log.info(
        "llmswitch listening on http://%s:%s (%d models, ledger %s)",
        bound[0],
        bound[1],
        len(config.models),
        _redact_url(config.storage.url),
    )
    print(f"llmswitch listening on http://{bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("shutting down: draining in-flight requests (up to %.0fs)", grace)
        server.close()
        try:
            await asyncio.wait_for(gateway.drained.wait(), grace)
        except TimeoutError:
            log.warning("in-flight requests still running after %.0fs; closing anyway", grace)
        gateway.close()
        await loop.run_in_executor(None, ledger.close)
        log.info("ledger flushed; bye")


def _redact_url(url: str) -> str:
    # postgresql://user:password@host/db → hide the password in logs
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def main_serve(config: Config, host: str, port: int) -> None:
    uvloop.run(run_gateway(config, host, port))
