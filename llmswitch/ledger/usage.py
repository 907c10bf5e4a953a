"""Usage report over the ledger: "what did we spend, on what, this week?" (`llmswitch usage`).

Read through `reader.py`: a SQLite file read-only, or the PostgreSQL ledger, with the same queries.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from llmswitch.ledger.reader import LedgerNotFound, LedgerReader, read_ledger

__all__ = ["GROUPINGS", "METRICS", "LedgerNotFound", "deployment_totals", "format_table", "report",
           "usage_report", "usage_total"]  # fmt: skip

UsageRow = dict[str, Any]

METRICS: tuple[str, ...] = (
    "requests",
    "attempts",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "cost_usd",
    "error_rate",
    "p50_latency_ms",
)

# by -> column over `attempts AS t`; "tag" instead joins each key=value of the tags object (untagged
# attempts, or tags that are not a JSON object, form the NULL group): see _grouping()
_COLUMNS: dict[str, str] = {
    "model": "t.requested_model",
    "provider": "t.provider",
    "key": "t.key_id",
    "upstream_model": "t.upstream_model",
}
GROUPINGS: tuple[str, ...] = (*_COLUMNS, "tag")


def usage_report(path_or_url: str, *, since_seconds: float | None, by: str = "model") -> list[UsageRow]:
    """One row per group, sorted by cost desc (unpriced last), then requests desc.

    Row keys: the `by` name (group value, None for attempts without one), then:
    - requests: distinct request_id in the group; attempts: rows in the group;
    - input_tokens (cached included), cached_input_tokens, output_tokens: sums, NULL counted as 0;
    - cost_usd: sum, None if no attempt in the group has a cost;
    - error_rate: failed requests / requests, where a request counts as failed in a group if none
      of its attempts *in that group* has status 'ok'. For model/key/tag every attempt of a request
      falls in the same group, so this is "the request failed"; for provider/upstream_model it is
      "this provider did not serve it" (a request that failed over from A to B is a failure for A,
      a success for B);
    - p50_latency_ms: median latency_ms of the group's 'ok' attempts (mean of the two middle
      values for an even count), None if there are none.

    Tag groups overlap (an attempt with two tags counts in both), so use `usage_total` for totals.
    `since_seconds`: only attempts that started in the last N seconds; None for all time.
    """
    with read_ledger(path_or_url) as reader:
        return report(reader, since_seconds=since_seconds, by=by)


def report(reader: LedgerReader, *, since_seconds: float | None, by: str) -> list[UsageRow]:
    """`usage_report` on a ledger already open (the dashboard reads several figures on one connection)."""
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}; choose one of {', '.join(GROUPINGS)}")
    expr, join = _grouping(reader, by)
    return [_row(by, r) for r in _query(reader, expr, join, since_seconds)]


def usage_total(path_or_url: str, *, since_seconds: float | None) -> UsageRow:
    """The same metrics over all attempts in the window (a request is counted once)."""
    with read_ledger(path_or_url) as reader:
        rows = _query(reader, "NULL", "", since_seconds)
    if not rows:
        empty: UsageRow = dict.fromkeys(METRICS[:5], 0)
        return {**empty, "cost_usd": None, "error_rate": None, "p50_latency_ms": None}
    row = _row("total", rows[0])
    del row["total"]
    return row


def format_table(rows: Sequence[UsageRow], total: UsageRow | None = None) -> str:
    """Aligned text table with a TOTAL row.

    Pass `total` (from `usage_total`) for an exact TOTAL. Without it the TOTAL sums the rows, which
    is exact for attempts, tokens and cost under every grouping except `tag`, but counts a request
    once per group it appears in; its error rate is then request-weighted and its p50 is left out.
    """
    group_col = next(iter(rows[0])) if rows else "group"
    if total is None:
        total = _sum_rows(rows)
    header = [group_col, "requests", "attempts", "input_tok", "cached_tok", "output_tok"]
    header += ["cost_usd", "errors", "p50_ms"]
    lines = [header]
    for r in [*rows, {group_col: "TOTAL", **total}]:
        group = r.get(group_col)
        lines.append(
            ["(none)" if group is None else str(group)]
            + [_int(r[m]) for m in METRICS[:5]]
            + [
                format_cost(r["cost_usd"]),
                "-" if r["error_rate"] is None else f"{100 * r['error_rate']:.1f}%",
                "-" if r["p50_latency_ms"] is None else f"{r['p50_latency_ms']:.0f}",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        out.append("  ".join(cells).rstrip())
        if n == 0 or n == len(lines) - 2:  # rules under the header and above TOTAL
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_cost(cost: float | None) -> str:
    """Six significant digits, never in exponent form: 1234.57, 0.0123457, 0.000001."""
    if cost is None:
        return "-"
    if cost == 0:
        return "0"
    decimals = min(max(5 - math.floor(math.log10(abs(cost))), 0), 12)
    return f"{cost:.{decimals}f}"


# -- internals ---------------------------------------------------------------------------------


def _grouping(reader: LedgerReader, by: str) -> tuple[str, str]:
    """(group expression, extra FROM clause) for `by` in the reader's dialect."""
    if by != "tag":
        return _COLUMNS[by], ""
    # JSON true / false / null read as those words on both: SQLite's json_each gives 1 / 0 / NULL.
    value = (
        "COALESCE(j.value, 'null')"
        if reader.postgres
        else "CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN 'null'"
        " ELSE j.value END"
    )
    return f"j.key || '=' || {value}", reader.tag_join("t.tags")


def _query(reader: LedgerReader, expr: str, join: str, since_seconds: float | None) -> list[tuple[Any, ...]]:
    where, params = "", list[float]()
    if since_seconds is not None:
        where, params = "WHERE t.ts >= ?", [time.time() - since_seconds]
    # Groups are joined with IS NOT DISTINCT FROM so that the NULL group (no model / no tag) is kept.
    sql = f"""
    WITH a AS (
        SELECT {expr} AS grp, t.request_id, t.status, t.input_tokens, t.cached_input_tokens,
               t.output_tokens, t.cost_usd, t.latency_ms
        FROM attempts AS t {join} {where}
    ),
    sums AS (
        SELECT grp, COUNT(*) AS attempts,
               COALESCE(SUM(input_tokens), 0) AS input_tokens,
               COALESCE(SUM(cached_input_tokens), 0) AS cached_input_tokens,
               COALESCE(SUM(output_tokens), 0) AS output_tokens,
               SUM(cost_usd) AS cost_usd
        FROM a GROUP BY grp
    ),
    per_request AS (
        SELECT grp, request_id, MAX(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS ok
        FROM a GROUP BY grp, request_id
    ),
    reqs AS (
        SELECT grp, COUNT(*) AS requests, SUM(1 - ok) AS failed FROM per_request GROUP BY grp
    ),
    ranked AS (
        SELECT grp, latency_ms,
               ROW_NUMBER() OVER (PARTITION BY grp ORDER BY latency_ms) AS rn,
               COUNT(*) OVER (PARTITION BY grp) AS n
        FROM a WHERE status = 'ok' AND latency_ms IS NOT NULL
    ),
    medians AS (
        SELECT grp, AVG(latency_ms) AS p50 FROM ranked WHERE rn IN ((n + 1) / 2, (n + 2) / 2) GROUP BY grp
    )
    SELECT s.grp, r.requests, s.attempts, s.input_tokens, s.cached_input_tokens, s.output_tokens,
           s.cost_usd, r.failed * 1.0 / r.requests, m.p50
    FROM sums AS s
    JOIN reqs AS r ON r.grp IS NOT DISTINCT FROM s.grp
    LEFT JOIN medians AS m ON m.grp IS NOT DISTINCT FROM s.grp
    ORDER BY s.cost_usd IS NULL, s.cost_usd DESC, r.requests DESC, s.grp
    """
    return reader.rows(sql, params)


def _row(by: str, r: tuple[Any, ...]) -> UsageRow:
    return {by: r[0], **dict(zip(METRICS, r[1:], strict=True))}


def _sum_rows(rows: Sequence[UsageRow]) -> UsageRow:
    requests = sum(int(r["requests"]) for r in rows)
    costs = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
    failed = sum(r["error_rate"] * r["requests"] for r in rows if r["error_rate"] is not None)
    total: UsageRow = {m: sum(int(r[m]) for r in rows) for m in METRICS[1:5]}
    total.update(
        requests=requests,
        cost_usd=sum(costs) if costs else None,
        error_rate=failed / requests if requests else None,
        p50_latency_ms=None,
    )
    return total


def _int(value: Any) -> str:
    return f"{int(value):,}"


def deployment_totals(
    path_or_url: str, *, since_seconds: float | None
) -> dict[tuple[str, str], tuple[float, int]]:
    """(provider, upstream model) → (cost USD, input + output tokens) over the window's priced attempts."""
    since = time.time() - since_seconds if since_seconds is not None else 0.0
    with read_ledger(path_or_url) as reader:
        rows = reader.rows(
            "SELECT provider, upstream_model, SUM(cost_usd),"
            " SUM(COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0))"
            " FROM attempts WHERE ts >= ? AND cost_usd IS NOT NULL GROUP BY provider, upstream_model",
            (since,),
        )
    return {(p, m): (float(c), int(t)) for p, m, c, t in rows if p is not None and m is not None}
