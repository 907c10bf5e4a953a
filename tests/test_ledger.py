"""Ledger tests on real SQLite files: writer, schema, usage report."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from llmswitch.ledger import (
    LATEST_VERSION,
    AttemptRecord,
    LedgerNotFound,
    SQLiteLedger,
    format_cost,
    format_table,
    migrate,
    open_ledger,
    sqlite_path_from_url,
    usage_report,
    usage_total,
)
from llmswitch.ledger.schema import ATTEMPT_COLUMNS, MIGRATIONS

FIELDS = tuple(f.name for f in dataclasses.fields(AttemptRecord))


def rec(i: int = 0, **kw: Any) -> AttemptRecord:
    base: dict[str, Any] = {
        "request_id": f"req-{i}",
        "attempt": 1,
        "ts": time.time(),
        "key_id": "k1",
        "requested_model": "m",
        "provider": "p",
        "upstream_model": "m-up",
        "status": "ok",
    }
    base.update(kw)
    return AttemptRecord(**base)


def read_all(path: Path) -> list[SimpleNamespace]:
    """Rows as stored (a column may hold what the writer coerced an unbindable value to)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(f"SELECT {','.join(ATTEMPT_COLUMNS)} FROM attempts ORDER BY id").fetchall()
    finally:
        conn.close()
    out = []
    for row in rows:
        values = dict(zip(ATTEMPT_COLUMNS, row, strict=True))
        values["streamed"] = bool(values["streamed"])
        out.append(SimpleNamespace(**values))
    return out


def index_names(conn: sqlite3.Connection) -> set[str]:
    return {r[1] for r in conn.execute("PRAGMA index_list(attempts)")}


def count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


# -- schema ------------------------------------------------------------------------------------


def test_columns_follow_the_record(db: Path) -> None:
    assert ATTEMPT_COLUMNS == FIELDS
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(attempts)")]
    assert cols == ["id", *FIELDS]
    # Only indexes that a reader uses: each one costs the writer a B-tree insert per row.
    assert index_names(conn) == {"ix_attempts_ts", "ix_attempts_request_id"}
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_migrate_twice_is_a_noop(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn) == [m.version for m in MIGRATIONS]
    assert migrate(conn) == []
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    applied = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    assert [v for v, _ in applied] == [m.version for m in MIGRATIONS]
    assert all(at > 0 for _, at in applied)
    conn.close()
    # A second connection (as at the next start-up) sees nothing to do either.
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn) == []


def test_upgrade_from_v3_keeps_rows_and_indexed_reads(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llmswitch.ledger.schema as schema

    # A file written by a gateway that knew only versions 1-3.
    with monkeypatch.context() as old_binary:
        old_binary.setattr(schema, "MIGRATIONS", MIGRATIONS[:3])
        old_binary.setattr(schema, "LATEST_VERSION", 3)
        ledger = SQLiteLedger(str(db))
        ledger.start()
        for i in range(50):
            ledger.append(rec(i))
        ledger.close()
    conn = sqlite3.connect(db, isolation_level=None)
    assert "ix_attempts_key_id" in index_names(conn)
    assert migrate(conn) == [4]
    assert index_names(conn) == {"ix_attempts_ts", "ix_attempts_request_id"}
    assert count(db) == 50
    # The readers' lookups (feedback, advisor, usage windows) still go through an index.
    plans = {
        sql: " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, (1,)))
        for sql in ("SELECT * FROM attempts WHERE request_id = ?", "SELECT * FROM attempts WHERE ts >= ?")
    }
    assert "ix_attempts_request_id" in plans["SELECT * FROM attempts WHERE request_id = ?"]
    assert "ix_attempts_ts" in plans["SELECT * FROM attempts WHERE ts >= ?"]
    conn.close()
    # The new gateway appends on the upgraded file.
    ledger = SQLiteLedger(str(db))
    ledger.start()
    ledger.append(rec(99))
    ledger.close()
    assert [r.request_id for r in read_all(db)][-1] == "req-99"


def test_update_and_delete_are_refused(db: Path) -> None:
    ledger = SQLiteLedger(str(db))
    ledger.start()
    ledger.append(rec(1))
    ledger.close()
    conn = sqlite3.connect(db, isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE attempts SET cost_usd = 0")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM attempts WHERE 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM attempts")  # no truncate optimisation around the trigger
    assert count(db) == 1


# -- writer ------------------------------------------------------------------------------------


def test_round_trip_every_field(db: Path) -> None:
    full = AttemptRecord(
        request_id="req-full",
        attempt=2,
        ts=1_764_000_000.123456,
        key_id="key-1",
        requested_model="gpt-4.1",
        provider="openrouter",
        upstream_model="openai/gpt-4.1",
        status="truncated",
        http_status=200,
        error_class="reset",
        input_tokens=1200,
        cached_input_tokens=1024,
        cache_write_tokens=7,
        output_tokens=300,
        reasoning_tokens=120,
        cost_usd=0.001234,
        latency_ms=812.5,
        ttft_ms=95.25,
        streamed=True,
        tags='{"team": "search", "env": "prod"}',
        surface="anthropic",
        route='{"strategy": "cascade"}',
    )
    # Every field differs from its default, so a column that is dropped or swapped shows up.
    for f in dataclasses.fields(AttemptRecord):
        if f.default is not dataclasses.MISSING:
            assert getattr(full, f.name) != f.default, f.name
    minimal = AttemptRecord("req-min", 0, 1.5, None, None, None, None, "rejected")
    ledger = SQLiteLedger(str(db))
    ledger.start()
    ledger.append(full)
    ledger.append(minimal)
    ledger.close()
    assert read_all(db) == [SimpleNamespace(**dataclasses.asdict(r)) for r in (full, minimal)]
    conn = sqlite3.connect(db)
    types = conn.execute("SELECT typeof(ts), typeof(streamed), typeof(tags) FROM attempts").fetchone()
    assert types == ("real", "integer", "text")


def test_10k_appends_use_multi_row_statements(db: Path) -> None:
    statements: list[str] = []
    ledger = SQLiteLedger(str(db), sql_trace=statements.append)
    ledger.start()
    for i in range(10_000):
        ledger.append(rec(i))
    ledger.close()
    assert count(db) == 10_000
    assert ledger.rows_written == 10_000 and ledger.pending == 0
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO ATTEMPTS")]
    # executemany (traced once per row) or one-row INSERTs would need 10,000 statements.
    assert 20 <= len(inserts) <= 200, len(inserts)
    assert ledger.transactions <= 200
    rows_per_insert = [s.count("'req-") for s in inserts]
    assert sum(rows_per_insert) == 10_000 and max(rows_per_insert) == 64  # the default batch


def test_rows_per_statement_respect_the_parameter_limit(db: Path) -> None:
    statements: list[str] = []
    ledger = SQLiteLedger(str(db), batch_rows=5000, flush_interval=60, sql_trace=statements.append)
    ledger.start()
    conn = sqlite3.connect(":memory:")
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per_statement = limit // len(ATTEMPT_COLUMNS)
    for i in range(5000):
        ledger.append(rec(i))
    ledger.flush(timeout=10)
    inserts = [s for s in statements if s.startswith("INSERT INTO attempts")]
    rows = [s.count("'req-") for s in inserts]
    largest = 1 << (min(5000, per_statement).bit_length() - 1)  # the largest power of two allowed
    assert max(rows) == largest and sum(rows) == 5000
    # Only power-of-two statement sizes: sqlite3 caches each distinct statement it compiles.
    assert all(n & (n - 1) == 0 for n in rows)
    assert count(db) == 5000
    ledger.close()


def test_close_flushes_rows_appended_just_before(db: Path) -> None:
    # A long interval and a batch size that is never reached: only close() can write these.
    ledger = SQLiteLedger(str(db), batch_rows=100_000, flush_interval=60)
    ledger.start()
    for i in range(1234):
        ledger.append(rec(i))
    ledger.close(timeout=10)
    assert count(db) == 1234
    ledger.close()  # idempotent


def test_flush_waits_for_commit(db: Path) -> None:
    ledger = SQLiteLedger(str(db), batch_rows=100_000, flush_interval=60)
    ledger.start()
    for i in range(10):
        ledger.append(rec(i))
    ledger.flush(timeout=10)
    assert count(db) == 10
    assert ledger.pending == 0
    ledger.close()


def test_batch_rows_wakes_the_writer_before_the_interval(db: Path) -> None:
    ledger = SQLiteLedger(str(db), batch_rows=100, flush_interval=60)
    ledger.start()
    for i in range(100):
        ledger.append(rec(i))
    deadline = time.monotonic() + 5
    while ledger.rows_written < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ledger.rows_written == 100
    ledger.close()


def test_locked_database_loses_no_rows(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llmswitch.ledger")
    ledger = SQLiteLedger(str(db), flush_interval=0.02, busy_timeout=0.05, max_pending=100)
    ledger.start()
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # holds the write lock longer than the busy timeout
    for i in range(2000):
        ledger.append(rec(i))
    time.sleep(0.6)
    assert ledger.pending == 2000
    assert ledger.write_failures >= 2
    locker.execute("ROLLBACK")
    ledger.flush(timeout=10)
    assert count(db) == 2000
    assert sorted(r.request_id for r in read_all(db)) == sorted(f"req-{i}" for i in range(2000))
    ledger.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "llmswitch.ledger"]
    assert any("ledger write failed" in m and "database is locked" in m for m in messages)
    assert any("ledger backlog" in m for m in messages)  # max_pending=100 exceeded, rows kept
    assert any("recovered" in m for m in messages)
    assert sum("ledger write failed" in m for m in messages) == 1  # not one line per retry


def test_unbindable_row_is_coerced_not_lost(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    ledger = SQLiteLedger(str(db))
    ledger.start()
    ledger.append(rec(1))
    # Values of the right types that SQLite still cannot bind: a lone surrogate, an int over 64 bits.
    ledger.append(rec(2, tags='{"team": "x\ud800"}', input_tokens=2**70))
    ledger.append(rec(3))
    ledger.flush(timeout=10)
    rows = read_all(db)
    assert [r.request_id for r in rows] == ["req-1", "req-2", "req-3"]
    assert rows[1].tags == '{"team": "x?"}'
    assert float(rows[1].input_tokens) == 2**70  # stored as text, kept as REAL by INTEGER affinity
    assert ledger.rows_dropped == 0
    # Not a record at all: compiled, `append` checks its argument's type and refuses it; interpreted,
    # the writer drops it with an error log. Either way the writer is not wedged.
    compiled = not inspect.isfunction(SQLiteLedger.append)
    if compiled:
        with pytest.raises(TypeError):
            ledger.append(object())  # type: ignore[arg-type]
    else:
        ledger.append(object())  # type: ignore[arg-type]
    ledger.append(rec(4))
    ledger.close()
    assert [r.request_id for r in read_all(db)][-1] == "req-4"
    assert ledger.rows_dropped == (0 if compiled else 1)
    assert compiled or any("dropped an unwritable row" in r.getMessage() for r in caplog.records)


def test_start_fails_loudly_on_an_unusable_path(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    ledger = SQLiteLedger(str(tmp_path / "dir.db"))
    with pytest.raises(sqlite3.Error):
        ledger.start()


def test_open_ledger_urls(tmp_path: Path) -> None:
    assert sqlite_path_from_url("sqlite:///llmswitch.db") == "llmswitch.db"
    assert sqlite_path_from_url("sqlite:///data/x.db") == "data/x.db"
    assert sqlite_path_from_url("sqlite:////var/lib/x.db") == "/var/lib/x.db"
    with pytest.raises(ValueError, match="postgresql") as info:
        open_ledger("postgresql://user:s3cret@db/llm")
    assert "s3cret" not in str(info.value)
    for bad in ("llmswitch.db", "sqlite://host/x.db", "sqlite:///", "mysql://x"):
        with pytest.raises(ValueError):
            open_ledger(bad)
    ledger = open_ledger(f"sqlite:///{tmp_path}/sub/dir/x.db")  # parent directories are created
    assert ledger.path == f"{tmp_path}/sub/dir/x.db"
    ledger.start()
    ledger.append(rec(1))
    ledger.close()
    assert count(tmp_path / "sub/dir/x.db") == 1


# -- usage report ------------------------------------------------------------------------------

DAY = 86_400.0


def usage_fixture(db: Path) -> None:
    """Six requests in the last hour (hand-checked sums below) and one 10 days old."""
    now = time.time()
    t = now - 3600

    def a(rid: str, n: int, model: str | None, provider: str | None, key: str | None, status: str,
          tags: str | None = None, ts: float = t, **kw: Any) -> AttemptRecord:  # fmt: skip
        return AttemptRecord(rid, n, ts, key, model, provider, f"up-{provider}", status, tags=tags, **kw)

    search_prod, search = '{"team": "search", "env": "prod"}', '{"team": "search"}'
    records = [
        a("r1", 1, "m-a", "p1", "k1", "ok", search_prod, input_tokens=100, cached_input_tokens=20,
          output_tokens=10, cost_usd=0.01, latency_ms=100),
        a("r2", 1, "m-a", "p1", "k1", "error", search, http_status=429, latency_ms=50),
        a("r2", 2, "m-a", "p2", "k1", "ok", search, input_tokens=200, cached_input_tokens=0,
          output_tokens=20, cost_usd=0.03, latency_ms=300),
        a("r3", 1, "m-a", "p2", "k2", "error", '{"team": "ads"}', error_class="timeout"),
        a("r3", 2, "m-a", "p2", "k2", "truncated", '{"team": "ads"}', input_tokens=50, output_tokens=5,
          cost_usd=0.005, latency_ms=400),
        a("r4", 1, "m-b", "p3", "k2", "ok", None, input_tokens=1000, output_tokens=100, cost_usd=0.5,
          latency_ms=200),
        a("r5", 1, "m-b", "p3", None, "ok", "not json", input_tokens=10, output_tokens=1, latency_ms=600),
        a("r6", 0, "nope", None, "k3", "rejected", '{"beta": true}', http_status=404),
        a("old", 1, "m-a", "p1", "k1", "ok", None, ts=now - 10 * DAY, input_tokens=1, output_tokens=1,
          cost_usd=100.0, latency_ms=1),
    ]  # fmt: skip
    ledger = SQLiteLedger(str(db))
    ledger.start()
    for r in records:
        ledger.append(r)
    ledger.close()


def by_group(rows: list[dict[str, Any]], by: str) -> dict[Any, dict[str, Any]]:
    return {r[by]: r for r in rows}


def test_usage_by_model(db: Path) -> None:
    usage_fixture(db)
    rows = usage_report(str(db), since_seconds=DAY, by="model")
    assert [r["model"] for r in rows] == ["m-b", "m-a", "nope"]  # cost desc, unpriced last
    g = by_group(rows, "model")
    assert g["m-a"] == pytest.approx({
        "model": "m-a", "requests": 3, "attempts": 5, "input_tokens": 350, "cached_input_tokens": 20,
        "output_tokens": 35, "cost_usd": 0.045, "error_rate": 1 / 3, "p50_latency_ms": 200.0,
    })  # fmt: skip
    assert g["m-b"] == pytest.approx({
        "model": "m-b", "requests": 2, "attempts": 2, "input_tokens": 1010, "cached_input_tokens": 0,
        "output_tokens": 101, "cost_usd": 0.5, "error_rate": 0.0, "p50_latency_ms": 400.0,
    })  # fmt: skip
    assert g["nope"]["cost_usd"] is None and g["nope"]["error_rate"] == 1.0
    assert g["nope"]["p50_latency_ms"] is None and g["nope"]["input_tokens"] == 0
    # All time: the 10-day-old request is included.
    all_time = by_group(usage_report(str(db), since_seconds=None, by="model"), "model")
    assert all_time["m-a"]["requests"] == 4 and all_time["m-a"]["cost_usd"] == pytest.approx(100.045)


def test_usage_by_provider_counts_failover_per_provider(db: Path) -> None:
    usage_fixture(db)
    rows = usage_report(str(db), since_seconds=DAY, by="provider")
    assert [r["provider"] for r in rows] == ["p3", "p2", "p1", None]
    g = by_group(rows, "provider")
    # r2 failed on p1 and succeeded on p2: a failure for p1, a success for p2.
    assert (g["p1"]["requests"], g["p1"]["attempts"], g["p1"]["error_rate"]) == (2, 2, 0.5)
    assert (g["p2"]["requests"], g["p2"]["attempts"], g["p2"]["error_rate"]) == (2, 3, 0.5)
    assert g["p2"]["cost_usd"] == pytest.approx(0.035) and g["p2"]["p50_latency_ms"] == 300
    assert g["p3"]["p50_latency_ms"] == 400 and g["p3"]["input_tokens"] == 1010
    assert g[None]["requests"] == 1 and g[None]["error_rate"] == 1.0


def test_usage_by_tag(db: Path) -> None:
    usage_fixture(db)
    rows = usage_report(str(db), since_seconds=DAY, by="tag")
    # None: untagged (r4) and invalid tags (r5); a JSON true renders as "true".
    assert [r["tag"] for r in rows] == [None, "team=search", "env=prod", "team=ads", "beta=true"]
    g = by_group(rows, "tag")
    assert g["team=search"] == pytest.approx({
        "tag": "team=search", "requests": 2, "attempts": 3, "input_tokens": 300, "cached_input_tokens": 20,
        "output_tokens": 30, "cost_usd": 0.04, "error_rate": 0.0, "p50_latency_ms": 200.0,
    })  # fmt: skip
    assert (g["env=prod"]["requests"], g["env=prod"]["cost_usd"]) == (1, pytest.approx(0.01))
    assert (g["team=ads"]["error_rate"], g["team=ads"]["p50_latency_ms"]) == (1.0, None)
    assert (g[None]["requests"], g[None]["cost_usd"], g[None]["p50_latency_ms"]) == (2, 0.5, 400)


def test_usage_by_key_and_upstream_model(db: Path) -> None:
    usage_fixture(db)
    g = by_group(usage_report(str(db), since_seconds=DAY, by="key"), "key")
    assert set(g) == {"k1", "k2", "k3", None}
    assert (g["k1"]["requests"], g["k1"]["attempts"], g["k1"]["cost_usd"]) == (2, 3, pytest.approx(0.04))
    assert (g["k2"]["requests"], g["k2"]["error_rate"], g["k2"]["p50_latency_ms"]) == (2, 0.5, 200)
    assert g["k2"]["input_tokens"] == 1050 and g[None]["p50_latency_ms"] == 600
    up = by_group(usage_report(str(db), since_seconds=DAY, by="upstream_model"), "upstream_model")
    assert up["up-p3"]["cost_usd"] == 0.5 and up["up-None"]["requests"] == 1
    with pytest.raises(ValueError, match="grouping"):
        usage_report(str(db), since_seconds=DAY, by="colour")


def test_usage_total_and_table(db: Path) -> None:
    usage_fixture(db)
    total = usage_total(f"sqlite:///{db}", since_seconds=DAY)
    assert total == pytest.approx({
        "requests": 6, "attempts": 8, "input_tokens": 1360, "cached_input_tokens": 20, "output_tokens": 136,
        "cost_usd": 0.545, "error_rate": 2 / 6, "p50_latency_ms": 250.0,
    })  # fmt: skip
    rows = usage_report(str(db), since_seconds=DAY, by="model")
    table = format_table(rows, total)
    print("\n" + table)
    lines = table.splitlines()
    assert lines[0].split() == ["model", "requests", "attempts", "input_tok", "cached_tok", "output_tok",
                                "cost_usd", "errors", "p50_ms"]  # fmt: skip
    assert lines[-1].split() == ["TOTAL", "6", "8", "1,360", "20", "136", "0.545000", "33.3%", "250"]
    assert lines[2].split()[0] == "m-b" and "(none)" not in table
    # Right-aligned numeric columns: each cost cell ends where the header does.
    cost_end = lines[0].index("cost_usd") + len("cost_usd")
    for line, cell in zip(lines[2:5], ["0.500000", "0.0450000", "-"], strict=True):
        assert line[:cost_end].endswith(" " + cell)
    # Without an explicit total the rows are summed (exact here: one model per request).
    assert format_table(rows).splitlines()[-1].split()[:7] == lines[-1].split()[:7]
    assert "TOTAL" in format_table([])


def test_format_cost() -> None:
    assert format_cost(None) == "-"
    assert format_cost(0) == "0"
    assert format_cost(1234.56789) == "1234.57"
    assert format_cost(0.000123456789) == "0.000123457"
    assert format_cost(2.5e-7) == "0.000000250000"
    assert format_cost(123456789.0) == "123456789"


def test_usage_without_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(LedgerNotFound) as info:
        usage_report(str(missing), since_seconds=None)
    assert info.value.path == str(missing) and str(missing) in str(info.value)
    assert not missing.exists()  # read-only: the report never creates the file
    sqlite3.connect(tmp_path / "empty.db").execute("CREATE TABLE other (x)").connection.commit()
    with pytest.raises(LedgerNotFound, match="no ledger table"):
        usage_total(str(tmp_path / "empty.db"), since_seconds=None)


def test_report_reads_while_the_writer_appends(db: Path) -> None:
    ledger = SQLiteLedger(str(db), flush_interval=0.01, busy_timeout=0.5)
    ledger.start()
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            ledger.append(rec(i, cost_usd=0.001))
            i += 1
            if i % 20 == 0:  # at most ~20k rows/s, the gateway's order of magnitude
                time.sleep(0.001)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        seen = []
        for _ in range(20):
            total = usage_total(str(db), since_seconds=DAY)
            seen.append(total["attempts"])
            time.sleep(0.01)
        # A reader holding a snapshot open must not stop the writer from committing.
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
        reader.execute("BEGIN")
        before = reader.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        written = ledger.rows_written
        deadline = time.monotonic() + 10
        while ledger.rows_written < written + 2000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ledger.rows_written >= written + 2000 and ledger.write_failures == 0
        assert reader.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == before  # its snapshot
        reader.execute("COMMIT")
        reader.close()
    finally:
        stop.set()
        producer.join()
    ledger.close()
    assert seen == sorted(seen) and seen[-1] > 0
    assert usage_total(str(db), since_seconds=DAY)["attempts"] == count(db) == ledger.rows_written


# -- micro-benchmark (printed, not asserted) -------------------------------------------------------


def bench_ledger(path: str, n: int = 200_000) -> dict[str, float]:
    """Cost of `append` on the calling thread, and of the whole write path per row.

    Rows look like a gateway's: ids in creation order, a few models and keys taking turns.
    """
    models = ("kimi-k2", "qwen3-coder", "glm-4.6", "deepseek-v3.1", "gpt-4.1")
    records = [rec(i, request_id=f"req_5f0c2a9e71d84b36{1_000_000_000 + i}", requested_model=models[i % 5],
                   key_id=f"team-{i % 7}", input_tokens=1000, output_tokens=200, cost_usd=0.0012,
                   latency_ms=321.0, tags='{"team": "search"}') for i in range(n)]  # fmt: skip
    result: dict[str, float] = {}

    baseline = deque[AttemptRecord]()
    push = baseline.append
    t0 = time.perf_counter()
    for r in records:
        push(r)
    result["bare_deque_append_us"] = (time.perf_counter() - t0) / n * 1e6

    # Writer idle during the loop (batch never reached, long interval): the append itself.
    ledger = SQLiteLedger(path, batch_rows=n + 1, flush_interval=60)
    ledger.start()
    append = ledger.append
    t0 = time.perf_counter()
    for r in records:
        append(r)
    result["append_us_writer_idle"] = (time.perf_counter() - t0) / n * 1e6
    c0, t0 = time.process_time(), time.perf_counter()
    ledger.flush()
    result["write_us_per_row"] = (time.perf_counter() - t0) / n * 1e6
    result["write_cpu_us_per_row"] = (time.process_time() - c0) / n * 1e6
    ledger.close()

    # Default batching, writer running while we append: includes GIL time the writer takes.
    ledger = SQLiteLedger(path)
    ledger.start()
    append = ledger.append
    t0 = time.perf_counter()
    for r in records:
        append(r)
    result["append_us_writer_busy"] = (time.perf_counter() - t0) / n * 1e6
    # What the writer costs a busy event loop: spin on this thread until the backlog is written
    # and add up the gaps in which the writer held the GIL (binding parameters, building rows).
    written_before, stalled = ledger.rows_written, 0.0
    last = time.perf_counter()
    while ledger.pending:
        now = time.perf_counter()
        if now - last > 50e-6:
            stalled += now - last
        last = now
    result["loop_stall_us_per_row"] = stalled / max(1, ledger.rows_written - written_before) * 1e6
    ledger.close()
    return result


def test_bench_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = bench_ledger(str(tmp_path / "bench.db"), n=100_000)
    assert count(tmp_path / "bench.db") == 200_000
    with capsys.disabled():
        print("\nledger bench (µs per record): " + ", ".join(f"{k}={v:.3f}" for k, v in result.items()))


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        print(bench_ledger(f"{d}/bench.db"))
