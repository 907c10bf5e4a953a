"""Run the gateway: event loop, listener, ledger thread, clean shutdown, and optional worker processes.

With `--workers N` the parent binds one listening socket and forks N workers that accept on it (the
kernel spreads connections); each worker has its own loop and upstream pools. The parent writes the
ledger for all of them (`ledger/hub.py`: workers send their rows over a socket pair), restarts a worker
that dies, and forwards SIGTERM/SIGINT so every worker drains and hands over its last rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable

import uvloop

from llmswitch import native
from llmswitch.api.server import serve
from llmswitch.config import Config
from llmswitch.engines import EngineThread, LocalEngine
from llmswitch.gateway import Gateway
from llmswitch.ledger.bodies import BodyLog
from llmswitch.ledger.forward import ForwardingLedger, ledger_pair
from llmswitch.ledger.hub import LedgerHub
from llmswitch.ledger.postgres import PostgresLedger, is_postgres_url
from llmswitch.ledger.sqlite import Ledger, SQLiteLedger, open_ledger
from llmswitch.metrics import SharedMetrics

log = logging.getLogger("llmswitch")


async def run_gateway(
    config: Config,
    sock: socket.socket,
    *,
    announce: bool = True,
    grace: float = 10.0,
    engine_urls: dict[str, str] | None = None,
    metrics_dir: str | None = None,
    ledger_sock: socket.socket | None = None,
) -> None:
    ledger: Ledger
    if ledger_sock is None:
        ledger = _open_ledger(config)
    else:  # a worker of `--workers N`: the supervisor writes
        ledger = ForwardingLedger(
            ledger_sock, batch_rows=config.ledger.batch_rows, flush_interval=config.ledger.flush_interval
        )
    ledger.start()
    bodies = None
    if config.logging.bodies:
        bodies = BodyLog(
            config.storage.url,
            redact=config.logging.redact,
            secrets=[p.api_key for p in config.providers.values() if p.api_key],
            retention_days=config.logging.bodies_retention_days,
        )
        bodies.start()
    gateway = Gateway(config, ledger, bodies=bodies)
    loop = asyncio.get_running_loop()
    if metrics_dir is not None:
        shared = SharedMetrics(gateway.metrics, metrics_dir)
        gateway.export_metrics = shared.exposition

        def publish() -> None:
            shared.publish()
            loop.call_later(1.0, publish)

        publish()
    gateway.build(loop, engine_urls)
    server = await serve(
        gateway.handle,
        sock,
        max_body=config.server.max_body_bytes,
        clock=time.perf_counter,
        request_timeout=config.server.request_timeout,
    )
    # What start-up built (modules, config, price data) lives as long as the process: freezing it keeps
    # it out of every full collection, which otherwise walks ~40k objects (~10 ms, a latency spike).
    gc.freeze()
    # The ledger's writer thread needs the GIL back after each SQLite call; a busy event loop only hands
    # it over at the switch interval (5 ms by default), and while the writer binds a batch the loop waits.
    # 1 ms (with 128-row batches) cut the longest loop stall from ~5 ms to ~1.4 ms and p99 at c=16 from
    # 5-9 ms to 3-4.5 ms in bench runs, for the same CPU; 64-row batches took p99 down by a further
    # 0.3-1.3 ms in 6 of 7 alternating pairs (32 rows cost more CPU than they saved).
    sys.setswitchinterval(0.001)
    if announce:
        _announce(config, sock)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
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
        if bodies is not None:
            await loop.run_in_executor(None, bodies.close)
        log.info("ledger flushed; bye")


def _open_ledger(config: Config) -> SQLiteLedger | PostgresLedger:
    url = config.storage.url
    if is_postgres_url(url):  # replicas share it; batches are larger, as no event loop waits on them
        return PostgresLedger(url, flush_interval=config.ledger.flush_interval)
    return open_ledger(url, batch_rows=config.ledger.batch_rows, flush_interval=config.ledger.flush_interval)


def _announce(config: Config, sock: socket.socket, workers: int = 1) -> None:
    host, port = sock.getsockname()[:2]
    log.info(
        "llmswitch listening on http://%s:%s (%d models, %d worker(s), ledger %s, request path %s)",
        host,
        port,
        len(config.models),
        workers,
        _redact_url(config.storage.url),
        native.STATE,
    )
    print(f"llmswitch listening on http://{host}:{port}", flush=True)


def _redact_url(url: str) -> str:
    # postgresql://user:password@host/db → hide the password in logs
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def main_serve(config: Config, sock: socket.socket, workers: int = 1) -> None:
    engines = start_engines(config)
    urls = {name: t.engine.base_url for name, t in engines.items()}
    try:
        if workers <= 1:
            uvloop.run(run_gateway(config, sock, engine_urls=urls))
        else:
            _supervise(config, sock, workers, urls)
    finally:
        for thread in engines.values():
            thread.stop()


def start_engines(config: Config) -> dict[str, EngineThread]:
    """Start every provider's local engine (before any worker forks, so all workers share them)."""
    started: dict[str, EngineThread] = {}
    try:
        for name, p in config.providers.items():
            if p.engine is None:
                continue
            log.info("starting local engine for provider %r (%s, %s)", name, p.engine.kind, p.engine.gguf)
            engine = LocalEngine(
                p.engine.gguf, threads=p.engine.threads, ctx=p.engine.ctx, parallel=p.engine.parallel
            )
            started[name] = EngineThread(engine)
            started[name].start()
            log.info("local engine for %r ready at %s", name, engine.base_url)
    except BaseException:
        for thread in started.values():
            thread.stop()
        raise
    return started


def _spawn(
    config: Config, sock: socket.socket, urls: dict[str, str], metrics_dir: str, hub: LedgerHub
) -> int:
    hub_end, worker_end = ledger_pair()
    inherited = hub.sockets()
    hub.ledger.pause_writes()  # not mid-SQLite-call in the copy
    try:
        pid = os.fork()
    except BaseException:
        hub.ledger.resume_writes()
        raise
    if pid != 0:
        hub.ledger.resume_writes()
    if pid == 0:  # worker
        code = 0
        try:
            for s in (hub_end, *inherited):
                s.close()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            uvloop.run(
                run_gateway(
                    config,
                    sock,
                    announce=False,
                    engine_urls=urls,
                    metrics_dir=metrics_dir,
                    ledger_sock=worker_end,
                )
            )
        except BaseException:
            log.exception("worker %d crashed", os.getpid())
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    worker_end.close()
    hub.attach(hub_end, pid)
    return pid


def _supervise(config: Config, sock: socket.socket, workers: int, urls: dict[str, str]) -> None:
    metrics_dir = tempfile.mkdtemp(prefix="llmswitch-metrics-")
    try:
        _supervise_in(config, sock, workers, urls, metrics_dir)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise_in(
    config: Config, sock: socket.socket, workers: int, urls: dict[str, str], metrics_dir: str
) -> None:
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    hub = LedgerHub(_open_ledger(config))
    hub.start()
    try:
        children = {_spawn(config, sock, urls, metrics_dir, hub) for _ in range(workers)}
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        _announce(config, sock, workers)
        _watch(config, sock, urls, metrics_dir, hub, children, lambda: stopping)
    finally:
        hub.close()
    log.info("all workers stopped; ledger flushed")


def _watch(
    config: Config,
    sock: socket.socket,
    urls: dict[str, str],
    metrics_dir: str,
    hub: LedgerHub,
    children: set[int],
    stopping: Callable[[], bool],
) -> None:
    """Reap workers until none is left, replacing each that dies while we are not stopping."""
    backoff = 0.5
    while children:
        time.sleep(0.2)
        # Reap only our workers: a local engine is also our child, and its own supervisor waits for it.
        for pid in list(children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done == 0:
                continue
            children.discard(pid)
            if stopping():
                continue
            log.error("worker %d exited (status %d); restarting in %.1fs", pid, status, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            children.add(_spawn(config, sock, urls, metrics_dir, hub))
