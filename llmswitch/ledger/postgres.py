"""The ledger in PostgreSQL (`storage.url: postgresql://user:pass@host/db`), for replicas sharing one.

Same contract as the SQLite writer: the request path appends a row to a deque (no lock, no I/O) and a
writer thread ships batches, here with `COPY ... FROM STDIN` (one round trip per batch, no statement
per row). A failed batch stays queued and is retried with backoff, so a database restart loses no row;
past `max_pending` queued rows the oldest are dropped and counted, so memory stays bounded. The schema
is created and migrated at start-up under an advisory lock, so replicas starting together agree.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from typing import Any

from llmswitch.config import is_postgres_url
from llmswitch.ledger.record import AttemptRecord
from llmswitch.ledger.rows import FlushMarker, Row, coerced, row_id, values_of
from llmswitch.ledger.schema import APPEND_ONLY_MESSAGE, ATTEMPT_COLUMNS

__all__ = ["PG_MIGRATIONS", "PostgresLedger", "is_postgres_url", "pg_migrate"]

log = logging.getLogger("llmswitch.ledger")

_STREAMED = ATTEMPT_COLUMNS.index("streamed")
_TYPES = {"attempt": "INTEGER", "ts": "DOUBLE PRECISION", "http_status": "INTEGER", "streamed": "INTEGER",
          "cost_usd": "DOUBLE PRECISION", "latency_ms": "DOUBLE PRECISION", "ttft_ms": "DOUBLE PRECISION",
          **{c: "BIGINT" for c in ATTEMPT_COLUMNS if c.endswith("_tokens")}}  # fmt: skip
_COPY = f"COPY attempts ({', '.join(ATTEMPT_COLUMNS)}) FROM STDIN"
_LOCK_ID = 0x6C6C6D73  # "llms": the advisory lock migrations hold

# One list of (version, name, statements), as in schema.py: append, never edit a shipped one.
PG_MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "create attempts and feedback",
        (
            "CREATE TABLE attempts (id BIGSERIAL PRIMARY KEY, "
            + ", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in ATTEMPT_COLUMNS)
            + ")",
            "CREATE INDEX ix_attempts_ts ON attempts (ts)",
            "CREATE INDEX ix_attempts_request_id ON attempts (request_id)",
            f"""CREATE FUNCTION llmswitch_append_only() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$""",
            "CREATE TRIGGER attempts_append_only BEFORE UPDATE OR DELETE ON attempts "
            "FOR EACH ROW EXECUTE FUNCTION llmswitch_append_only()",
            "CREATE TABLE feedback (id BIGSERIAL PRIMARY KEY, request_id TEXT, ts DOUBLE PRECISION, "
            "score DOUBLE PRECISION, key_id TEXT, comment TEXT)",
            "CREATE INDEX ix_feedback_request_id ON feedback (request_id)",
        ),
    ),
)

_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 30.0


def pg_migrate(conn: Any) -> list[int]:
    """Apply pending migrations (a psycopg connection in autocommit mode); return those applied."""
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, name, statements in PG_MIGRATIONS:
            if version in done:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (version, name, time.time()),
            )
            applied.append(version)
            log.info("ledger schema (PostgreSQL) migrated to version %d (%s)", version, name)
    return applied


class PostgresLedger:
    def __init__(
        self, url: str, *, batch_rows: int = 1_000, flush_interval: float = 0.2, max_pending: int = 100_000
    ) -> None:
        self._url = url
        self._batch_rows = batch_rows
        self._flush_interval = flush_interval
        self._max_pending = max_pending
        self._queue: deque[AttemptRecord | Row | FlushMarker] = deque()
        self._inflight: list[AttemptRecord | Row | FlushMarker] = []
        self._wake = threading.Event()
        self._writing = threading.Lock()  # held while a batch is written; pause_writes() takes it
        self._stopping = False
        self._writer: threading.Thread | None = None
        self._conn: Any = None
        self.rows_written = 0
        self.rows_dropped = 0
        self.write_failures = 0

    # -- any thread ---------------------------------------------------------------------------------

    def append(self, record: AttemptRecord | Row) -> None:
        q = self._queue
        q.append(record)
        if len(q) >= self._batch_rows:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._inflight)

    def start(self) -> None:
        """Connect and migrate now, so a wrong URL or password fails start-up; then start the writer."""
        self._conn = self._connect()
        pg_migrate(self._conn)
        self._writer = threading.Thread(target=self._run, name="llmswitch-ledger", daemon=True)
        self._writer.start()

    def flush(self, timeout: float | None = None) -> None:
        marker = FlushMarker()
        self._queue.append(marker)
        self._wake.set()
        if not marker.done.wait(timeout):
            raise TimeoutError(f"ledger flush timed out with {self.pending} rows pending")

    def close(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._writer is not None:
            self._writer.join(timeout)
        if self.pending:
            log.error("ledger closed with %d rows unwritten (PostgreSQL unreachable?)", self.pending)
        if self._conn is not None:
            self._conn.close()

    def pause_writes(self) -> None:
        self._writing.acquire()

    def resume_writes(self) -> None:
        self._writing.release()

    # -- writer thread ---------------------------------------------------------------------------

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self._url, autocommit=True, connect_timeout=5, application_name="llmswitch")

    def _run(self) -> None:
        backoff = 0.0
        while True:
            self._wake.wait(backoff or self._flush_interval)
            self._wake.clear()
            with self._writing:
                ok = self._drain()
            backoff = 0.0 if ok else min(max(backoff * 2, _BACKOFF_FIRST), _BACKOFF_MAX)
            if self._stopping and ok and not self._queue:
                return

    def _drain(self) -> bool:
        while True:
            if not self._inflight:
                self._shed()
                q = self._queue
                n = min(len(q), self._batch_rows)
                if n == 0:
                    return True
                self._inflight = [q.popleft() for _ in range(n)]
            batch = self._inflight
            rows = [_pg_row(values_of(item)) for item in batch if not isinstance(item, FlushMarker)]
            try:
                if rows:
                    self._copy(rows)
            except _data_errors() as e:  # the batch's contents, not the database: find the bad rows
                log.error("ledger batch rejected (%s: %s); writing its rows one by one", type(e).__name__, e)
                if not self._write_one_by_one():
                    return False
                continue
            except Exception as e:  # connection lost, server restarting: keep the batch, retry later
                self._on_transient_failure(e)
                return False
            self.rows_written += len(rows)
            self._inflight = []
            for item in batch:
                if isinstance(item, FlushMarker):
                    item.done.set()

    def _write_one_by_one(self) -> bool:
        """Each row of the batch alone; a rejected one again with its values coerced (NUL characters
        replaced: PostgreSQL text cannot hold them), and dropped, named in the log, only if that fails
        too. Written rows leave the batch as they go, so a transient error (False) repeats none."""
        batch = self._inflight
        errors = _data_errors()
        while batch:
            item = batch[0]
            if isinstance(item, FlushMarker):
                item.done.set()  # every row queued before it is written or dropped
            else:
                values = values_of(item)
                try:
                    try:
                        self._copy([_pg_row(values)])
                    except errors:
                        self._copy([_pg_row(_pg_safe(values))])
                    self.rows_written += 1
                except errors as e:
                    self.rows_dropped += 1
                    log.error(
                        "ledger dropped an unwritable row (request_id=%r attempt=%r): %s: %s",
                        row_id(item, "request_id"), row_id(item, "attempt"), type(e).__name__, e,
                    )  # fmt: skip
                except Exception as e:
                    self._on_transient_failure(e)
                    return False
            batch.pop(0)
        return True

    def _copy(self, rows: list[tuple[Any, ...]]) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        conn = self._conn
        with conn.transaction(), conn.cursor() as cur, cur.copy(_COPY) as copy:
            for row in rows:
                copy.write_row(row)

    def _on_transient_failure(self, e: Exception) -> None:
        """The batch stays in flight; the connection is dropped (the next write makes a new one)."""
        self.write_failures += 1
        log.warning("ledger write to PostgreSQL failed (%s); %d rows kept for retry", e, self.pending)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.close()

    def _shed(self) -> None:
        """Past max_pending, drop the oldest rows (never flush markers): memory stays bounded."""
        q = self._queue
        for _ in range(len(q) - self._max_pending):
            item = q.popleft()
            if isinstance(item, FlushMarker):
                q.append(item)
                continue
            self.rows_dropped += 1
            if self.rows_dropped in (1, 1_000) or self.rows_dropped % 100_000 == 0:
                log.error(
                    "ledger backlog over %d rows: %d dropped so far", self._max_pending, self.rows_dropped
                )


def _data_errors() -> tuple[type[BaseException], ...]:
    """Errors a row's values cause (psycopg's client-side dumping, or the server refusing them)."""
    import psycopg

    return (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError, TypeError, ValueError)


def _pg_safe(values: Row) -> Row:
    """`coerced` values, with NUL characters (which PostgreSQL text cannot hold) as U+FFFD."""
    return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in coerced(values))


def _pg_row(values: Row) -> tuple[Any, ...]:
    streamed = values[_STREAMED]
    if isinstance(streamed, bool):  # an INTEGER column, 0/1 as in SQLite
        values = (*values[:_STREAMED], int(streamed), *values[_STREAMED + 1 :])
    return values
