"""SQLite ledger writer: `append` is a deque push on the event loop; a daemon thread writes batches.

Why this shape (see research/performance.md): the gateway appends ~20k rows/s from the event-loop
thread, so `append` must cost about a microsecond and never touch I/O. Rows are written as
multi-row `INSERT ... VALUES (...),(...),...` statements, one transaction per batch: `executemany`
releases and re-takes the GIL per row, which measurably slowed the event loop.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Protocol

from llmswitch.ledger.record import AttemptRecord
from llmswitch.ledger.rows import FlushMarker, Row, coerced, row_id, values_of
from llmswitch.ledger.schema import ATTEMPT_COLUMNS, migrate

log = logging.getLogger("llmswitch.ledger")

# SQLITE_MAX_VARIABLE_NUMBER since SQLite 3.32; the real value is read from the connection.
DEFAULT_MAX_VARIABLES = 32766

_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 5.0
_LOG_EVERY = 60.0  # seconds between repeated warnings (backlog, ongoing write failures)

# Errors caused by the rows themselves (unbindable value, constraint): retrying cannot help.
# Everything else from sqlite3 (locked, busy, disk I/O, disk full, read-only) is treated as
# transient and retried with backoff.
_DATA_ERRORS: tuple[type[BaseException], ...] = (
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.NotSupportedError,
    TypeError,
    ValueError,
    OverflowError,
    AttributeError,  # something that is not an AttemptRecord was appended
)


def _install_fast_adapters() -> None:
    """Make binding None and bool ~3x cheaper (measured 490 -> 185 ns per value on CPython 3.11).

    The sqlite3 module binds int/float/str directly but sends every other type, None and bool
    included, through its adaptation protocol, whose miss path is slow; a typical row has ~6 None
    values and one bool, and binding runs with the GIL held. Registering identity-like C adapters
    turns that into a dict hit. Process-wide, but a no-op in meaning: None still binds as NULL and
    bool as 0/1, exactly as sqlite3 does by default.
    """
    empty: dict[None, None] = {}
    sqlite3.register_adapter(type(None), empty.get)  # empty.get(None) -> None, a C call
    sqlite3.register_adapter(bool, int)


class Ledger(Protocol):
    """What the gateway needs from a ledger backend (SQLite now, PostgreSQL later)."""

    def start(self) -> None: ...

    def append(self, record: AttemptRecord) -> None: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float = 10.0) -> None: ...

    @property
    def pending(self) -> int: ...


_Item = AttemptRecord | Row | FlushMarker


def sqlite_path_from_url(url: str) -> str:
    """`sqlite:///relative.db` -> `relative.db`; `sqlite:////abs/path.db` -> `/abs/path.db`.

    Error messages name the scheme only: other URLs (postgresql://user:pass@...) carry secrets.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("ledger URL must look like sqlite:///relative.db or sqlite:////abs/path.db")
    if scheme.lower() != "sqlite":
        raise ValueError(f"unsupported ledger URL scheme {scheme!r}: only 'sqlite' is supported for now")
    if not rest.startswith("/"):
        raise ValueError(
            "sqlite ledger URL must have an empty host: sqlite:///relative.db or sqlite:////abs.db"
        )
    path = rest[1:]
    if not path or path.endswith("/"):
        raise ValueError("sqlite ledger URL has no file name")
    if "?" in path:
        raise ValueError("sqlite ledger URL takes no query parameters")
    return path


def open_ledger(
    url: str, *, batch_rows: int = 64, flush_interval: float = 0.2, max_pending: int = 100_000
) -> SQLiteLedger:
    """Build the ledger for a storage URL (not started: call `start()`)."""
    path = sqlite_path_from_url(url)
    return SQLiteLedger(path, batch_rows=batch_rows, flush_interval=flush_interval, max_pending=max_pending)


class SQLiteLedger:
    """Batched, append-only SQLite writer. The connection lives in the writer thread only."""

    def __init__(
        self,
        path: str,
        *,
        batch_rows: int = 64,
        flush_interval: float = 0.2,
        max_pending: int = 100_000,
        busy_timeout: float = 5.0,
        sql_trace: Callable[[str], None] | None = None,
    ) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be >= 1")
        if flush_interval <= 0:
            raise ValueError("flush_interval must be > 0")
        self.path = path
        self._batch_rows = batch_rows
        self._flush_interval = flush_interval
        self._max_pending = max_pending
        self._busy_timeout = busy_timeout
        self._sql_trace = sql_trace  # test hook: sees every statement the writer runs
        self._queue: deque[_Item] = deque()
        self._inflight: list[_Item] = []  # taken from the queue, not yet committed
        self._wake = threading.Event()
        self._ready = threading.Event()
        self._writing = threading.Lock()  # held by the writer while it is inside SQLite
        self._start_error: BaseException | None = None
        # Not `_thread`: mypyc would name the C field `__thread`, a C keyword.
        self._writer: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self._rows_per_statement = batch_rows  # capped by the host-parameter limit at connect
        self._sql_cache: dict[int, str] = {}
        self._last_backlog_warning = -_LOG_EVERY
        self._failing_since: float | None = None
        self._last_failure_log = -_LOG_EVERY
        # Counters, read by tests and (later) metrics; written by the writer thread only.
        self.rows_written = 0
        self.transactions = 0
        self.write_failures = 0
        self.rows_dropped = 0

    # -- event-loop side ------------------------------------------------------------------------

    def append(self, record: AttemptRecord | Row) -> None:
        """Queue one row (a record, or its values in column order). ~0.1 µs: no lock, no I/O; safe from
        any thread (deque ops are atomic).

        Rows appended after close() are not written.
        """
        q = self._queue
        q.append(record)
        # Wake the writer once per batch_rows, not per record: Event.set() takes a lock.
        if len(q) == self._batch_rows:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Rows appended but not yet committed (approximate while the writer runs)."""
        return len(self._queue) + len(self._inflight)

    def start(self) -> None:
        """Open the database, apply migrations, start the writer; raises if the database is unusable."""
        if self._writer is not None:
            raise RuntimeError("ledger already started")
        if self._closed:
            raise RuntimeError("ledger is closed")
        thread = threading.Thread(target=self._run, name="llmswitch-ledger", daemon=True)
        self._writer = thread
        self._ready.clear()
        thread.start()
        self._ready.wait()
        if self._start_error is not None:
            thread.join()
            self._writer = None
            error, self._start_error = self._start_error, None
            raise error

    def flush(self, timeout: float | None = None) -> None:
        """Block until every row appended before this call is committed (tests, shutdown).

        Raises TimeoutError after `timeout` seconds (rows stay queued and are still written).
        """
        thread = self._writer
        if thread is None or not thread.is_alive():
            if self.pending:
                raise RuntimeError("ledger writer is not running; rows cannot be flushed")
            return
        marker = FlushMarker()
        self._queue.append(marker)
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not marker.done.wait(0.5 if deadline is None else min(0.5, deadline - time.monotonic())):
            if not thread.is_alive():
                raise RuntimeError("ledger writer stopped before the flush completed")
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"ledger flush timed out with {self.pending} rows pending")

    def close(self, timeout: float = 10.0) -> None:
        """Write everything pending, then stop the writer and close the database."""
        if self._closed:
            return
        self._closed = True
        thread = self._writer
        if thread is None:
            if self._queue:
                log.error("ledger closed before it was started: %d rows were never written", len(self._queue))
            return
        self._stopping = True
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            # The daemon thread keeps retrying until the process exits.
            log.error(
                "ledger close timed out after %.1fs with %d rows not yet written; still retrying",
                timeout,
                self.pending,
            )

    def pause_writes(self) -> None:
        """Wait for the writer to finish its batch and hold it there, until `resume_writes`: around a
        fork(), so that no SQLite call is half-done (its mutexes held) in the copied process."""
        self._writing.acquire()

    def resume_writes(self) -> None:
        self._writing.release()

    # -- writer thread --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop(conn)
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        _install_fast_adapters()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. timeout= is SQLite's busy timeout.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("ledger could not enable WAL (journal_mode=%s); readers may block writes", mode)
            # NORMAL in WAL mode: durable across application crashes, may lose the last
            # transactions on power loss; the fsync per commit of FULL is not worth it here.
            conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn)
            limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) or DEFAULT_MAX_VARIABLES
            self._rows_per_statement = max(1, min(self._batch_rows, limit // len(ATTEMPT_COLUMNS)))
            if self._sql_trace is not None:
                conn.set_trace_callback(self._sql_trace)
        except BaseException:
            conn.close()
            raise
        return conn

    def _loop(self, conn: sqlite3.Connection) -> None:
        backoff = 0.0
        while True:
            self._wake.wait(backoff or self._flush_interval)
            self._wake.clear()  # before draining, so an append during the drain re-arms the wait
            try:
                with self._writing:
                    ok = self._drain(conn)
            except Exception:  # a bug here must not kill the only writer
                log.exception("ledger writer error; retrying")
                ok = False
            backoff = 0.0 if ok else min(max(backoff * 2, _BACKOFF_FIRST), _BACKOFF_MAX)
            self._warn_if_backlogged()
            if self._stopping and ok and not self._queue:
                return

    def _drain(self, conn: sqlite3.Connection) -> bool:
        """Write batches until the queue is empty (True) or a transient error stops us (False)."""
        while True:
            if not self._inflight:
                q = self._queue
                n = min(len(q), self._batch_rows)
                if n == 0:
                    return True
                popleft = q.popleft
                self._inflight = [popleft() for _ in range(n)]
            batch = self._inflight
            records = [item for item in batch if not isinstance(item, FlushMarker)]
            try:
                if records:
                    self._write(conn, records)
            except _DATA_ERRORS as exc:
                if not self._write_one_by_one(conn, batch, exc):
                    return False
            except sqlite3.Error as exc:
                self._on_transient_failure(exc)
                return False
            else:
                self.rows_written += len(records)
            self._inflight = []
            self._on_success()
            for item in batch:
                if isinstance(item, FlushMarker):
                    item.done.set()
            self._warn_if_backlogged()

    def _write(self, conn: sqlite3.Connection, records: Sequence[AttemptRecord | Row]) -> None:
        # Statements are only ever power-of-two rows long: sqlite3 keeps every distinct statement it
        # compiled (~0.6 MB each for 512 rows), and arbitrary batch sizes grew the process by ~80 MB.
        sizes = _power_of_two_sizes(len(records), self._rows_per_statement)
        if len(sizes) == 1:
            # One statement is its own (implicit) transaction. Saving the BEGIN and COMMIT calls
            # matters: each sqlite3 call releases the GIL and must win it back from a busy event
            # loop, which can take a whole switch interval (5 ms).
            params = list(chain.from_iterable(map(values_of, records)))
            conn.execute(self._insert_sql(len(records)), params)
            self.transactions += 1
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            start = 0
            for size in sizes:
                chunk = records[start : start + size]
                start += size
                params = list(chain.from_iterable(map(values_of, chunk)))
                conn.execute(self._insert_sql(size), params)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self.transactions += 1

    def _insert_sql(self, rows: int) -> str:
        sql = self._sql_cache.get(rows)
        if sql is None:
            one = "(" + ",".join("?" * len(ATTEMPT_COLUMNS)) + ")"
            sql = f"INSERT INTO attempts ({','.join(ATTEMPT_COLUMNS)}) VALUES " + ",".join([one] * rows)
            if len(self._sql_cache) < 256:  # partial batches vary in size; bound the cache
                self._sql_cache[rows] = sql
        return sql

    def _write_one_by_one(self, conn: sqlite3.Connection, batch: list[_Item], exc: BaseException) -> bool:
        """A batch failed because of its contents: find the bad rows instead of retrying forever.

        A bad row is written with its values coerced to SQLite types (e.g. a dict in `tags` becomes
        JSON text); only a row that still fails is dropped, with an error naming it by request id.
        Returns False (rows left in flight) if a transient error interrupts.
        """
        log.error("ledger batch rejected (%s: %s); writing its rows one by one", type(exc).__name__, exc)
        records = [item for item in batch if not isinstance(item, FlushMarker)]
        markers = [item for item in batch if isinstance(item, FlushMarker)]
        for i, record in enumerate(records):
            try:
                try:
                    self._write(conn, [record])
                except _DATA_ERRORS:
                    self._write_coerced(conn, record)
            except _DATA_ERRORS as row_exc:
                self.rows_dropped += 1
                log.error(
                    "ledger dropped an unwritable row (request_id=%r attempt=%r): %s: %s",
                    row_id(record, "request_id"),
                    row_id(record, "attempt"),
                    type(row_exc).__name__,
                    row_exc,
                )
                continue
            except sqlite3.Error as row_exc:
                self._inflight = [*records[i:], *markers]
                self._on_transient_failure(row_exc)
                return False
            self.rows_written += 1
        return True

    def _write_coerced(self, conn: sqlite3.Connection, record: AttemptRecord | Row) -> None:
        values = coerced(values_of(record))
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(self._insert_sql(1), values)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self.transactions += 1

    def _on_transient_failure(self, exc: BaseException) -> None:
        self.write_failures += 1
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
            self._last_failure_log = now
            log.error(
                "ledger write failed (%s: %s); %d rows kept, retrying with backoff",
                type(exc).__name__,
                exc,
                self.pending,
            )
        elif now - self._last_failure_log >= _LOG_EVERY:
            self._last_failure_log = now
            log.error(
                "ledger writes failing for %.0fs (%s: %s); %d rows kept, still retrying",
                now - self._failing_since,
                type(exc).__name__,
                exc,
                self.pending,
            )

    def _on_success(self) -> None:
        if self._failing_since is not None:
            log.warning("ledger writes recovered after %.1fs", time.monotonic() - self._failing_since)
            self._failing_since = None

    def _warn_if_backlogged(self) -> None:
        pending = self.pending
        if pending > self._max_pending:
            now = time.monotonic()
            if now - self._last_backlog_warning >= _LOG_EVERY:
                self._last_backlog_warning = now
                # Rows are kept, never dropped: memory grows until the database catches up.
                log.warning("ledger backlog: %d rows pending (max_pending=%d)", pending, self._max_pending)


def _power_of_two_sizes(n: int, limit: int) -> list[int]:
    """`n` rows as statement sizes that are powers of two, none above `limit` (largest first)."""
    top = 1
    while top * 2 <= limit:
        top *= 2
    sizes = []
    while n > 0:
        size = top
        while size > n:
            size //= 2
        sizes.append(size)
        n -= size
    return sizes


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.warning("ledger rollback failed", exc_info=True)
