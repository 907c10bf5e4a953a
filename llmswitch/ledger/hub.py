"""The supervisor's side of `--workers N`: one ledger writer (SQLite or PostgreSQL), fed by each worker.

Each worker gets a socket pair (`ledger_pair`) before it is forked; the hub reads the supervisor's end
on a thread of its own, so a slow or dead worker holds up nobody else. The supervisor has no event
loop that its threads could hold up: with two workers, `bench/run` measured 9.2-12.0 µs per request
outside the event loops (the hub's threads and the writer), against 16.5 with a writer in each worker.
"""

from __future__ import annotations

import io
import logging
import marshal
import socket
import threading

from llmswitch.ledger.forward import ACK, FLUSH, HEADER, ROWS
from llmswitch.ledger.postgres import PostgresLedger
from llmswitch.ledger.sqlite import SQLiteLedger

log = logging.getLogger("llmswitch.ledger")


class LedgerHub:
    def __init__(self, ledger: SQLiteLedger | PostgresLedger) -> None:
        self.ledger = ledger
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.rows_received = 0

    def start(self) -> None:
        """Open the database (migrations included); raises if it is unusable, before any worker runs."""
        self.ledger.start()

    def attach(self, sock: socket.socket, worker: int) -> None:
        """Read a worker's rows from the hub end of its pair, until the worker closes its end."""
        with self._lock:
            self._socks.add(sock)
        name = f"llmswitch-ledger-hub-{worker}"
        threading.Thread(target=self._serve, args=(sock, worker), name=name, daemon=True).start()

    def sockets(self) -> list[socket.socket]:
        """The hub ends open now: a newly forked worker closes its copies of them."""
        with self._lock:
            return list(self._socks)

    def close(self, timeout: float = 10.0) -> None:
        """After every worker has exited: write what is pending and close the database."""
        self.ledger.close(timeout)

    def _serve(self, sock: socket.socket, worker: int) -> None:
        try:
            with sock, sock.makefile("rb") as stream:
                self._read(stream, sock, worker)
        except Exception:  # one worker's stream must not take the hub down
            log.exception("ledger: reading worker %d's rows failed; its stream is closed", worker)
        finally:
            with self._lock:
                self._socks.discard(sock)

    def _read(self, stream: io.BufferedReader, sock: socket.socket, worker: int) -> None:
        read = stream.read
        append = self.ledger.append
        while True:
            head = read(HEADER.size)
            if len(head) < HEADER.size:
                if head:
                    log.error("ledger: worker %d's stream ended inside a frame header", worker)
                return
            kind, size = HEADER.unpack(head)
            payload = read(size) if size else b""
            if len(payload) < size:
                # The worker died mid-send (SIGKILL): that batch is incomplete, so none of it is kept.
                log.error("ledger: worker %d's stream ended inside a frame; that batch is lost", worker)
                return
            if kind == ROWS:
                rows = marshal.loads(payload)
                for row in rows:
                    append(row)  # the values as the worker read them off its record
                self.rows_received += len(rows)
            elif kind == FLUSH:
                self.ledger.flush()
                sock.sendall(ACK)
            else:
                log.error("ledger: unknown frame kind %r from worker %d; closing its stream", kind, worker)
                return
