"""Feedback on answers (`POST /v1/feedback`), and the scored examples `router train --from-ledger` uses."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import orjson

from llmswitch.ledger.bodies import read_logged
from llmswitch.ledger.postgres import is_postgres_url, pg_migrate
from llmswitch.ledger.schema import migrate
from llmswitch.ledger.sqlite import sqlite_path_from_url


def record_feedback(url: str, request_id: str, score: float, key_id: str | None, comment: str | None) -> None:
    """One feedback row (low volume: a short-lived connection, run off the event loop)."""
    row = (request_id, time.time(), score, key_id, comment)
    if is_postgres_url(url):
        import psycopg

        with psycopg.connect(url, autocommit=True, connect_timeout=5) as pg:
            pg_migrate(pg)
            sql = "INSERT INTO feedback (request_id, ts, score, key_id, comment) VALUES (%s, %s, %s, %s, %s)"
            pg.execute(sql, row)
        return
    conn = sqlite3.connect(sqlite_path_from_url(url), timeout=10.0, isolation_level=None)
    try:
        migrate(conn)
        with conn:
            conn.execute(
                "INSERT INTO feedback (request_id, ts, score, key_id, comment) VALUES (?, ?, ?, ?, ?)", row
            )
    finally:
        conn.close()


def scored_examples(
    url: str, *, since_seconds: float | None
) -> list[tuple[list[dict[str, Any]], str, float, float]]:
    """(messages, model that answered, score, cost) for every answer with feedback and a logged prompt.

    The model is the configured model that served the answer: the requested one, or for an `auto` route the
    one its decision chose. Several feedback rows for one answer are averaged. Needs `logging.bodies`."""
    prompts = {x.request_id: x for x in read_logged(url, since_seconds=since_seconds)}
    conn = sqlite3.connect(f"file:{sqlite_path_from_url(url)}?mode=ro", uri=True, timeout=5.0)
    try:
        scores = conn.execute("SELECT request_id, AVG(score) FROM feedback GROUP BY request_id").fetchall()
        out = []
        for request_id, score in scores:
            logged = prompts.get(request_id)
            if logged is None or not isinstance(logged.request.get("messages"), list):
                continue
            rows = conn.execute(
                "SELECT requested_model, route, status, cost_usd FROM attempts"
                " WHERE request_id = ? ORDER BY id",
                (request_id,),
            ).fetchall()
            served = [r for r in rows if r[2] == "ok"]
            if not served:
                continue
            model, route = served[-1][0], served[-1][1]
            if route:
                model = str(orjson.loads(route).get("model", model))
            cost = sum(r[3] or 0.0 for r in rows)
            out.append((logged.request["messages"], model, float(score), cost))
        return out
    finally:
        conn.close()
