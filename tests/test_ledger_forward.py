"""`--workers N` ledger: workers' `ForwardingLedger`s send rows over socket pairs, the supervisor's
`LedgerHub` writes them to one SQLite file. Real sockets, a real event loop, a real database."""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch.ledger import AttemptRecord, SQLiteLedger
from llmswitch.ledger.forward import HEADER, ROWS, ForwardingLedger, ledger_pair
from llmswitch.ledger.hub import LedgerHub
from tests.test_ledger import count, read_all, rec


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[LedgerHub]:
    h = LedgerHub(SQLiteLedger(str(tmp_path / "ledger.db"), flush_interval=0.02))
    h.start()
    yield h
    h.close()


def db_of(hub: LedgerHub) -> Path:
    return Path(hub.ledger.path)


def wait_for_rows(path: Path, n: int, timeout: float = 5.0) -> int:
    end = time.monotonic() + timeout
    while (got := count(path)) < n and time.monotonic() < end:
        time.sleep(0.02)
    return got


def worker(hub: LedgerHub) -> tuple[socket.socket, socket.socket]:
    hub_end, worker_end = ledger_pair()
    hub.attach(hub_end, worker=len(hub.sockets()) + 1)
    return hub_end, worker_end


def forwarded(sock: socket.socket, records: list[AttemptRecord], batch_rows: int) -> ForwardingLedger:
    """A ForwardingLedger started on an event loop that appends `records` and ends (the timer is
    60 s: only full batches, flush() and close() send)."""

    async def run() -> ForwardingLedger:
        led = ForwardingLedger(sock, batch_rows=batch_rows, flush_interval=60)
        led.start()
        for r in records:
            led.append(r)
        return led

    return asyncio.run(run())


def test_full_batches_and_the_timer_both_reach_the_database(hub: LedgerHub) -> None:
    _, end = worker(hub)

    async def run() -> ForwardingLedger:
        led = ForwardingLedger(end, batch_rows=64, flush_interval=0.05)
        led.start()
        for i in range(130):  # two full batches go at once, 2 rows wait for the timer
            led.append(rec(i))
        assert led.pending == 2 and led.rows_sent == 128
        await asyncio.sleep(0.2)
        assert led.pending == 0 and led.rows_sent == 130
        return led

    led = asyncio.run(run())
    assert wait_for_rows(db_of(hub), 130) == 130
    rows = read_all(db_of(hub))
    assert [r.request_id for r in rows] == [f"req-{i}" for i in range(130)]
    led.close()


def test_flush_returns_once_rows_are_committed_and_close_ends_the_stream(hub: LedgerHub) -> None:
    _, end = worker(hub)

    led = forwarded(end, [rec(i, input_tokens=i, cost_usd=i / 7) for i in range(10)], batch_rows=1000)
    assert count(db_of(hub)) == 0
    led.flush(timeout=5)
    assert count(db_of(hub)) == 10  # committed when flush returns, not merely sent
    led.append(rec(10))
    led.close()
    assert count(db_of(hub)) == 11
    costs = {r.request_id: r.cost_usd for r in read_all(db_of(hub))}
    assert costs["req-9"] == 9 / 7 and costs["req-10"] is None  # values survive exactly
    deadline = time.monotonic() + 5
    while hub.sockets() and time.monotonic() < deadline:  # the hub saw EOF and let the stream go
        time.sleep(0.02)
    assert hub.sockets() == []
    led.append(rec(11))  # after close: kept out of the stream
    assert led.pending == 1 and led.rows_sent == 11
    led.close()  # twice is fine


class Model(str):
    """A str subclass (an enum, a settings type...) passes the record's type checks; marshal refuses it."""


class Status(enum.IntEnum):
    OK = 200


def test_values_marshal_cannot_carry_are_stored_as_their_plain_values(hub: LedgerHub) -> None:
    _, end = worker(hub)

    records = [rec(0, requested_model=Model("kimi-k2"), http_status=Status.OK), rec(1)]
    led = forwarded(end, records, batch_rows=2)
    led.flush(timeout=5)
    rows = read_all(db_of(hub))
    assert [r.request_id for r in rows] == ["req-0", "req-1"]
    assert rows[0].requested_model == "kimi-k2" and rows[0].http_status == 200
    led.close()


def test_a_worker_dying_mid_frame_loses_only_that_frame(
    hub: LedgerHub, caplog: pytest.LogCaptureFixture
) -> None:
    _, end = worker(hub)

    forwarded(end, [rec(i) for i in range(5)], batch_rows=5)  # one full batch: sent at once
    assert wait_for_rows(db_of(hub), 5) == 5
    with caplog.at_level(logging.ERROR, logger="llmswitch.ledger"):
        end.sendall(HEADER.pack(ROWS, 1000) + b"\x00" * 10)  # a header, then the process is killed
        end.close()
        deadline = time.monotonic() + 5
        while hub.sockets() and time.monotonic() < deadline:
            time.sleep(0.02)
    assert "ended inside a frame" in caplog.text
    # The hub goes on serving the others.
    _, end2 = worker(hub)

    forwarded(end2, [rec(100 + i) for i in range(3)], batch_rows=3).close()
    assert count(db_of(hub)) == 8


def test_a_slow_hub_never_blocks_the_loop_and_the_backlog_is_bounded(hub: LedgerHub) -> None:
    """With nobody reading, sends stop fitting in the socket: rows wait in memory up to `max_buffer`
    bytes, beyond that they are dropped and counted. Once the hub reads, the backlog drains by itself."""
    hub_end, worker_end = socket.socketpair()  # default (small) buffers, not attached yet

    async def run() -> ForwardingLedger:
        led = ForwardingLedger(worker_end, batch_rows=64, flush_interval=60, max_buffer=2 << 20)
        led.start()
        for i in range(40_000):  # if a send waited for the reader, this would never return
            led.append(rec(i, tags='{"team": "search"}', route="x" * 200))
        assert led.rows_dropped > 0 and led.pending > 0
        hub.attach(hub_end, worker=1)  # the hub starts reading: the loop sends the rest by itself
        deadline = time.monotonic() + 20
        while led.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert led.pending == 0
        return led

    led = asyncio.run(run())
    led.flush(timeout=10)
    assert count(db_of(hub)) == led.rows_sent == 40_000 - led.rows_dropped


def test_a_flush_that_timed_out_does_not_let_the_next_return_early(hub: LedgerHub) -> None:
    """The hub still answers a flush that gave up waiting; that late ACK must not be taken for the ACK
    of the next flush, which returns only once its own rows are committed."""
    hub_end, worker_end = ledger_pair()  # the hub does not read yet

    led = forwarded(worker_end, [rec(i) for i in range(5)], batch_rows=10_000)
    with pytest.raises(TimeoutError):
        led.flush(timeout=0.2)
    hub.attach(hub_end, worker=1)  # now it commits those 5 rows and answers the old flush
    for i in range(5, 5005):
        led.append(rec(i))
    led.flush(timeout=10)
    assert count(db_of(hub)) == 5005
    led.close()
