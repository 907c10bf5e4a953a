"""The ledger: one append-only row per attempt, written off the request path."""

from llmswitch.ledger.record import (
    STATUS_ERROR,
    STATUS_OK,
    STATUS_REJECTED,
    STATUS_TRUNCATED,
    AttemptRecord,
)
from llmswitch.ledger.schema import LATEST_VERSION, migrate
from llmswitch.ledger.sqlite import Ledger, SQLiteLedger, open_ledger, sqlite_path_from_url
from llmswitch.ledger.usage import (
    GROUPINGS,
    LedgerNotFound,
    format_cost,
    format_table,
    usage_report,
    usage_total,
)

__all__ = [
    "GROUPINGS",
    "LATEST_VERSION",
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_REJECTED",
    "STATUS_TRUNCATED",
    "AttemptRecord",
    "Ledger",
    "LedgerNotFound",
    "SQLiteLedger",
    "format_cost",
    "format_table",
    "migrate",
    "open_ledger",
    "sqlite_path_from_url",
    "usage_report",
    "usage_total",
]
