"""A ledger row as values: what the writers bind and what a `--workers N` worker sends.

A row is a record's column values in `ATTEMPT_COLUMNS` order. The writer takes records (from the event
loop) or rows (from workers, through `ledger/hub.py`) alike.
"""

from __future__ import annotations

import json
import threading
from operator import attrgetter
from typing import Any

from llmswitch.ledger.record import AttemptRecord
from llmswitch.ledger.schema import ATTEMPT_COLUMNS

Row = tuple[Any, ...]


class FlushMarker:
    """Queued by a writer's flush(); the writer sets `done` once every row queued before it is committed."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


row_values = attrgetter(*ATTEMPT_COLUMNS)  # record -> tuple in column order, in C


def values_of(item: AttemptRecord | Row) -> Row:
    return item if isinstance(item, tuple) else row_values(item)


def coerced(row: Row) -> Row:
    """The row with every value as SQLite would store it (`coerce_value`)."""
    return tuple(coerce_value(v) for v in row)


def row_id(record: AttemptRecord | Row, field: str) -> object:
    """`request_id` or `attempt` of a row, for naming it in a log line whatever it holds."""
    if isinstance(record, tuple):
        value = record[ATTEMPT_COLUMNS.index(field)] if len(record) == len(ATTEMPT_COLUMNS) else None
    else:
        value = getattr(record, field, None)
    return value if isinstance(value, str | int) else type(value).__name__


def coerce_value(value: Any) -> Any:
    """Map any Python value onto something SQLite stores (for rows that failed to bind)."""
    if value is None or isinstance(value, float | bytes):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value) if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates fail to bind
    if isinstance(value, dict | list | tuple):
        try:
            return json.dumps(value, default=str)
        except (TypeError, ValueError):
            pass
    return str(value).encode("utf-8", "replace").decode("utf-8")
