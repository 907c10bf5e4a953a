"""A `--workers N` worker's ledger: rows go over a socket pair to the supervisor, which alone writes SQLite.

Why: with every worker writing the shared file, each connection finds its page cache stale after the
others' commits, and two writers cost ~2x the CPU per row of one (bench/run 13-51-32: 16.5 against
7.3 µs per request outside the event loops), taken from the cores that serve requests. So a worker
only packs rows (marshal, in C) and sends them in batches; `LedgerHub` in the supervisor feeds one
`SQLiteLedger`.

Worker → hub, frames of a kind byte, a 4-byte little-endian length and the payload:
  ROWS   marshal of a list of row tuples in `ATTEMPT_COLUMNS` order;
  FLUSH  empty: the hub answers one ACK byte once every row sent before it is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import os
import signal
import socket
import struct
import threading
from collections import deque

from llmswitch.ledger.record import AttemptRecord
from llmswitch.ledger.rows import coerced, row_values

log = logging.getLogger("llmswitch.ledger")

ROWS = b"R"
FLUSH = b"F"
ACK = b"A"
HEADER = struct.Struct("<cI")
# Asked for, capped by the kernel (net.core.wmem_max). A row packs into ~100-400 bytes, so even a
# capped buffer holds a second of rows at 1k req/s before sends wait in `_out` for the hub.
SOCKET_BUFFER = 4 << 20


def ledger_pair() -> tuple[socket.socket, socket.socket]:
    """(hub end, worker end), with large send buffers, so a batch seldom waits for the hub to read."""
    hub_end, worker_end = socket.socketpair()
    for s in (hub_end, worker_end):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    return hub_end, worker_end


def pack_rows(records: list[AttemptRecord]) -> bytes:
    rows = [row_values(r) for r in records]
    try:
        payload = marshal.dumps(rows)
    except ValueError:  # a value marshal cannot carry: store what SQLite would have stored for it
        payload = marshal.dumps([coerced(row) for row in rows])
    return HEADER.pack(ROWS, len(payload)) + payload


class ForwardingLedger:
    """The `Ledger` of a worker: `append` is a list push; every `batch_rows` rows (or `flush_interval`
    seconds) one frame goes to the hub. Sends never block the event loop: what the socket does not take
    at once waits in `_out` (bounded by `max_buffer` bytes) and goes when the socket is writable."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        batch_rows: int = 64,
        flush_interval: float = 0.2,
        max_buffer: int = 256 << 20,
    ) -> None:
        self._sock = sock
        self._batch_rows = batch_rows
        self._flush_interval = flush_interval
        self._max_buffer = max_buffer
        self._rows: list[AttemptRecord] = []
        self._out = bytearray()
        self._out_frames: deque[tuple[int, int]] = deque()  # (bytes, rows) of each frame in _out
        self._lock = threading.Lock()  # the loop's sends against flush()/close() from another thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._writing = False
        self._closed = False
        self._hub_lost = False
        self._acks_owed = 0  # FLUSH frames sent whose ACK has not been read
        self.rows_sent = 0  # handed to the socket
        self.rows_dropped = 0

    def start(self) -> None:
        """Call on the event loop that will append."""
        self._sock.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(self._flush_interval, self._tick)

    def append(self, record: AttemptRecord) -> None:
        rows = self._rows
        rows.append(record)
        if len(rows) >= self._batch_rows:
            self._ship()

    @property
    def pending(self) -> int:
        """Rows appended but not yet handed to the socket."""
        return len(self._rows) + sum(n for _, n in self._out_frames)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every row appended before this call is committed by the hub: sends what waits,
        then reads the hub's ACK, blocking the calling thread (any thread)."""
        with self._lock:
            self._flush_locked(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Flush, then end the stream (the hub sees EOF). Call after the last append; any thread."""
        with self._lock:
            if self._closed:
                return
            try:
                self._flush_locked(timeout)
            except (OSError, TimeoutError) as exc:
                log.error("ledger: could not hand the last rows to the supervisor: %s", exc)
            self._closed = True
            loop = self._loop
            if self._timer is not None and loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self._timer.cancel)
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_WR)

    # -- on the event loop ----------------------------------------------------------------------

    def _tick(self) -> None:
        if self._closed:
            return
        if self._rows:
            self._ship()
        else:
            self._check_hub()
        assert self._loop is not None
        self._timer = self._loop.call_later(self._flush_interval, self._tick)

    def _ship(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
            if not rows:
                return
            if self._closed or self._hub_lost:
                self._drop(len(rows), "the ledger is closed" if self._closed else "the supervisor is gone")
                return
            frame = pack_rows(rows)
            if len(self._out) + len(frame) > self._max_buffer:
                self._drop(len(rows), f"{len(self._out)} bytes already wait for the supervisor")
                return
            self._queue(frame, len(rows))
            self._send()

    def _check_hub(self) -> None:
        """Notice a supervisor that died while we had nothing to send: its end reads as EOF."""
        with self._lock:
            if self._hub_lost or self._closed:
                return
            try:
                acks = self._sock.recv(64)  # outside a flush, only the ACK of one that timed out
            except BlockingIOError:
                return
            except OSError as exc:
                self._lose_hub(exc)
                return
            if not acks:
                self._lose_hub(EOFError("its end of the socket pair is closed"))
            self._acks_owed = max(0, self._acks_owed - len(acks))

    def _on_writable(self) -> None:
        with self._lock:
            if self._closed:
                self._stop_writing()
                return
            self._send()

    def _send(self) -> None:
        """Hand `_out` to the socket, as much as it takes now (lock held)."""
        try:
            sent = self._sock.send(self._out) if self._out else 0
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._lose_hub(exc)
            return
        self._consume(sent)
        if self._out and not self._writing and self._loop is not None:
            self._loop.add_writer(self._sock.fileno(), self._on_writable)
            self._writing = True
        elif not self._out:
            self._stop_writing()

    def _stop_writing(self) -> None:
        if self._writing and self._loop is not None:
            self._loop.remove_writer(self._sock.fileno())
            self._writing = False

    # -- shared ---------------------------------------------------------------------------------

    def _flush_locked(self, timeout: float | None) -> None:
        if self._closed:
            return
        if self._hub_lost:
            raise OSError("the supervisor's ledger is gone")
        rows, self._rows = self._rows, []
        if rows:
            self._queue(pack_rows(rows), len(rows))
        self._queue(HEADER.pack(FLUSH, 0), 0)
        sock = self._sock
        sock.settimeout(timeout)  # blocking, for this exchange only
        try:
            try:
                sock.sendall(self._out)
            except TimeoutError:  # part of a frame may be gone: the stream cannot be framed any more
                self._lose_hub(TimeoutError(f"it took no rows for {timeout}s"))
                raise
            self._consume(len(self._out))
            self._acks_owed += 1
            while self._acks_owed:  # an earlier flush that timed out may still get its ACK first
                acks = sock.recv(self._acks_owed)
                if not acks:
                    raise OSError("the supervisor closed the ledger stream")
                self._acks_owed -= len(acks)
        except TimeoutError:
            raise TimeoutError(f"ledger flush timed out with {self.pending} rows pending") from None
        except OSError as exc:
            self._lose_hub(exc)
            raise
        finally:
            sock.setblocking(False)

    def _queue(self, frame: bytes, rows: int) -> None:
        self._out += frame
        self._out_frames.append((len(frame), rows))

    def _consume(self, sent: int) -> None:
        """Drop `sent` bytes from the front of `_out`, counting the rows of frames now fully sent."""
        del self._out[:sent]
        frames = self._out_frames
        while frames and sent >= frames[0][0]:
            size, rows = frames.popleft()
            sent -= size
            self.rows_sent += rows
        if sent and frames:
            size, rows = frames[0]
            frames[0] = (size - sent, rows)

    def _drop(self, rows: int, why: str) -> None:
        self.rows_dropped += rows
        log.error("ledger: %d rows not recorded: %s", rows, why)

    def _lose_hub(self, exc: BaseException) -> None:
        """The supervisor is gone (its end of the pair closed): rows can no longer be recorded, so this
        worker stops rather than serve unrecorded traffic; a process manager restarts the gateway."""
        if self._hub_lost:
            return
        self._hub_lost = True
        waiting = self.pending
        self._out.clear()
        self._out_frames.clear()
        self._stop_writing()
        self._drop(waiting, f"the supervisor's ledger is gone ({exc}); stopping this worker")
        os.kill(os.getpid(), signal.SIGTERM)
