"""Read-only queries on either ledger, SQLite or PostgreSQL, written once.

Queries are written in the SQL both speak, with `?` placeholders; `floor()` and `tag_join()` give the
few spellings that differ. SQLite files are opened read-only (`mode=ro`): with the writer in WAL mode a
report never blocks the gateway's writes and sees only committed rows.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from llmswitch.ledger.postgres import is_postgres_url
from llmswitch.ledger.sqlite import sqlite_path_from_url

__all__ = ["LedgerNotFound", "LedgerReader", "read_ledger"]


class LedgerNotFound(Exception):
    """The ledger database (or its `attempts` table) does not exist yet."""

    def __init__(self, path: str, reason: str = "no ledger database") -> None:
        self.path = path
        super().__init__(f"{reason} at {path}: the gateway creates it when it first starts (storage.url)")


class LedgerReader:
    def __init__(self, conn: Any, postgres: bool) -> None:
        self._conn = conn
        self.postgres = postgres

    def rows(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        if not self.postgres:
            return list(self._conn.execute(sql, params).fetchall())
        sql = sql.replace("?", "%s")  # our queries hold no literal '?'
        # PostgreSQL sums integers into NUMERIC: back to the int / float SQLite gives
        return [tuple(map(_plain, row)) for row in self._conn.execute(sql, params).fetchall()]

    def floor(self, expr: str) -> str:
        """The integer part of a non-negative number (PostgreSQL's CAST rounds, SQLite's truncates)."""
        return f"CAST(FLOOR({expr}) AS BIGINT)" if self.postgres else f"CAST({expr} AS INTEGER)"

    def tag_join(self, tags: str) -> str:
        """`LEFT JOIN ... AS j`: one row per key (`j.key`) and value (`j.value`) of a JSON object column."""
        if self.postgres:
            return (
                f"LEFT JOIN LATERAL jsonb_each_text(CASE WHEN jsonb_typeof({tags}::jsonb) = 'object'"
                f" THEN {tags}::jsonb END) AS j ON true"
            )
        return (
            f"LEFT JOIN json_each(CASE WHEN json_valid({tags}) THEN"
            f" CASE WHEN json_type({tags}) = 'object' THEN {tags} END END) AS j"
        )


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


@contextmanager
def read_ledger(url_or_path: str) -> Iterator[LedgerReader]:
    """A reader on the ledger at a storage URL (or a SQLite file path); raises `LedgerNotFound`."""
    if is_postgres_url(url_or_path):
        import psycopg

        try:
            conn = psycopg.connect(url_or_path, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as e:
            raise LedgerNotFound(
                "the PostgreSQL ledger", f"cannot connect ({e.sqlstate or 'refused'})"
            ) from None
        try:
            table = conn.execute("SELECT to_regclass('attempts')").fetchone()
            if table is None or table[0] is None:
                raise LedgerNotFound("the PostgreSQL ledger", "no ledger table")
            yield LedgerReader(conn, postgres=True)
        finally:
            conn.close()
        return
    path = sqlite_path_from_url(url_or_path) if "://" in url_or_path else url_or_path
    if not os.path.isfile(path):
        raise LedgerNotFound(path)
    uri = Path(path).absolute().as_uri() + "?mode=ro"  # as_uri percent-encodes '?', '#', '%'
    sconn = sqlite3.connect(uri, uri=True, timeout=5.0, isolation_level=None)
    try:
        found = sconn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'attempts'")
        if found.fetchone() is None:
            raise LedgerNotFound(path, "no ledger table")
        yield LedgerReader(sconn, postgres=False)
    finally:
        sconn.close()
