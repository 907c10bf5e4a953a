"""Versioned SQLite schema of the ledger, applied by numbered migrations at start-up.

Rules for adding a migration: append a new `Migration` with the next version, never edit a shipped
one, and keep changes additive (new nullable columns, new indexes) so that an older gateway binary
rolled back onto a newer database can still append rows.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass

log = logging.getLogger("llmswitch.ledger")

# Column order of `attempts` as written by the writer; equals the field order of AttemptRecord
# (tests/test_ledger.py checks this, so a new record field cannot be forgotten here).
ATTEMPT_COLUMNS: tuple[str, ...] = (
    "request_id",
    "attempt",
    "ts",
    "key_id",
    "requested_model",
    "provider",
    "upstream_model",
    "status",
    "http_status",
    "error_class",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "streamed",
    "tags",
    "surface",
    "route",
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]  # run one by one inside a single transaction


APPEND_ONLY_MESSAGE = "ledger is append-only"

# No NOT NULL constraints on record columns, deliberately: a constraint violation would make a
# row unwritable, and the ledger's first duty is to keep every row the gateway produced.
_V1 = Migration(
    version=1,
    name="create attempts",
    statements=(
        """
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT,
            attempt INTEGER,
            ts REAL,                    -- unix seconds when the attempt started
            key_id TEXT,
            requested_model TEXT,
            provider TEXT,
            upstream_model TEXT,
            status TEXT,                -- ok | error | truncated | rejected
            http_status INTEGER,
            error_class TEXT,
            input_tokens INTEGER,       -- cached input tokens included
            cached_input_tokens INTEGER,
            cache_write_tokens INTEGER,
            output_tokens INTEGER,      -- reasoning tokens included
            reasoning_tokens INTEGER,
            cost_usd REAL,
            latency_ms REAL,
            ttft_ms REAL,
            streamed INTEGER,           -- 0/1
            tags TEXT,                  -- JSON object text
            surface TEXT
        )
        """,
        "CREATE INDEX ix_attempts_ts ON attempts (ts)",
        "CREATE INDEX ix_attempts_request_id ON attempts (request_id)",
        "CREATE INDEX ix_attempts_requested_model ON attempts (requested_model)",
        "CREATE INDEX ix_attempts_key_id ON attempts (key_id)",
        # Append-only by construction; a future retention job would drop these deliberately.
        f"""
        CREATE TRIGGER attempts_no_update BEFORE UPDATE ON attempts
        BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END
        """,
        f"""
        CREATE TRIGGER attempts_no_delete BEFORE DELETE ON attempts
        BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END
        """,
    ),
)

# Optional prompt/answer logging (`logging.bodies`), for `llmswitch advise`. Not append-only: the
# retention setting deletes old rows, and bodies never feed billing.
_V2 = Migration(
    version=2,
    name="create bodies",
    statements=(
        """
        CREATE TABLE bodies (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT,
            ts REAL,
            surface TEXT,               -- openai | anthropic
            model TEXT,                 -- the requested model name
            request TEXT,               -- the client's JSON body, redacted
            response_text TEXT,         -- the assistant's final text, redacted
            tags TEXT
        )
        """,
        "CREATE INDEX ix_bodies_ts ON bodies (ts)",
        "CREATE INDEX ix_bodies_request_id ON bodies (request_id)",
    ),
)

# `auto` routing: each attempt carries the decision that led to it; feedback scores answers (for
# `router train --from-ledger`). Feedback is a separate table: attempts stay append-only.
_V3 = Migration(
    version=3,
    name="auto routing: decision traces and feedback",
    statements=(
        "ALTER TABLE attempts ADD COLUMN route TEXT",
        """
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT,
            ts REAL,
            score REAL,                 -- 0..1, how good the answer was
            key_id TEXT,
            comment TEXT
        )
        """,
        "CREATE INDEX ix_feedback_request_id ON feedback (request_id)",
    ),
)

# Write cost: every index is another B-tree insert per row on the writer thread, which shares a
# core with the event loop. These two low-cardinality indexes served no query (every reader filters
# on `ts` or `request_id`) yet cost ~5 of ~13 µs of writer CPU per row (measured on 300k rows).
# Dropping an index is safe for an older binary rolled back onto this file: it only appends.
_V4 = Migration(
    version=4,
    name="drop unused attempts indexes (requested_model, key_id)",
    statements=(
        "DROP INDEX IF EXISTS ix_attempts_requested_model",
        "DROP INDEX IF EXISTS ix_attempts_key_id",
    ),
)

MIGRATIONS: tuple[Migration, ...] = (_V1, _V2, _V3, _V4)
LATEST_VERSION = MIGRATIONS[-1].version


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply pending migrations in order; return the versions applied (empty when up to date).

    Each migration runs in its own `BEGIN IMMEDIATE` transaction together with the bump of
    `PRAGMA user_version` and its `schema_migrations` row, so a crash never leaves a half-applied
    version, and two gateway processes starting at once on one file serialise on the write lock
    (the version is re-read once the lock is held).
    """
    if conn.in_transaction:
        raise RuntimeError("migrate() needs a connection with no open transaction")
    applied: list[int] = []
    if schema_version(conn) > LATEST_VERSION:
        # A newer binary migrated this file; migrations are additive, so keep going.
        log.warning(
            "ledger schema version %d is newer than this gateway knows (%d)",
            schema_version(conn),
            LATEST_VERSION,
        )
        return applied
    for migration in MIGRATIONS:
        if migration.version <= schema_version(conn):  # cheap read, no lock taken
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if migration.version <= schema_version(conn):  # another process got there first
                conn.execute("ROLLBACK")
                continue
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
            # PRAGMA takes no parameters; the version is an int from our own table above.
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(migration.version)
        log.info("ledger schema migrated to version %d (%s)", migration.version, migration.name)
    return applied
