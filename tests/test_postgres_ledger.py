"""The ledger in a real PostgreSQL server: gateway processes (one, two workers, two replicas) record
every attempt; `llmswitch usage`, the dashboard, feedback and budgets read and write it; an outage of
the database loses no row."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import orjson
import psycopg
import pytest

from llmswitch.config import ConfigError, config_from_data
from llmswitch.pricing.compare import read_traffic
from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import GatewayProcess, provider, request
from tests.pg_server import PostgresServer, postgres_server

GatewayFactory = Callable[..., GatewayProcess]
USAGE = {"prompt_tokens": 1_000, "completion_tokens": 200}  # gpt-4.1 at $2 / $8 per Mtok: $0.0036
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def config(sim: Simulator, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "storage": {"url": url},
        "providers": {"openai": provider(sim.url, pricing_provider="openai")},
        "models": {"gpt-4.1": {"deployments": [{"provider": "openai", "model": "gpt-4.1"}]}},
        **extra,
    }


def pg_rows(url: str, at_least: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    end = time.monotonic() + timeout
    while True:
        with psycopg.connect(url) as conn:
            found = conn.execute("SELECT to_regclass('attempts')").fetchone()
            rows: list[dict[str, Any]] = []
            if found is not None and found[0] is not None:
                cur = conn.execute("SELECT * FROM attempts ORDER BY id")
                names = [d.name for d in cur.description or []]
                rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        if len(rows) >= at_least or time.monotonic() > end:
            return rows
        time.sleep(0.1)


def test_every_attempt_lands_in_postgres_and_reports_read_it(
    pg: PostgresServer, fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(config(fresh_sim, pg.url))
    c = client(gw)
    ids = []
    for _ in range(3):
        fresh_sim.enqueue("gpt-4.1", {"usage": USAGE})
        ids.append(c.chat.completions.with_raw_response.create(model="gpt-4.1", messages=HI).headers)
    fresh_sim.enqueue("gpt-4.1", {"usage": USAGE})
    list(c.chat.completions.create(model="gpt-4.1", messages=HI, stream=True))
    fresh_sim.enqueue("gpt-4.1", {"usage": USAGE})
    anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0).messages.create(
        model="gpt-4.1", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    rows = pg_rows(pg.url, 5)
    assert len(rows) == 5
    assert {h["x-llmswitch-request-id"] for h in ids} <= {r["request_id"] for r in rows}
    assert [r["streamed"] for r in rows] == [0, 0, 0, 1, 0]
    assert [r["surface"] for r in rows] == ["openai"] * 4 + ["anthropic"]
    for r in rows:
        assert r["cost_usd"] == pytest.approx((1_000 * 2.00 + 200 * 8.00) / 1e6)
        assert (r["status"], r["provider"], r["upstream_model"]) == ("ok", "openai", "gpt-4.1")

    out = subprocess.run(
        [sys.executable, "-m", "llmswitch", "usage", "--config", str(gw.config_path), "--json"],
        capture_output=True, text=True, check=True, cwd=gw.workdir,
    )  # fmt: skip
    total = json.loads(out.stdout)["total"]
    assert (total["requests"], total["input_tokens"], total["output_tokens"]) == (5, 5_000, 1_000)
    assert total["cost_usd"] == pytest.approx(5 * 0.0036)

    traffic = read_traffic(pg.url, since_seconds=3600)  # what `llmswitch prices --from-ledger` reads
    assert (traffic.requests, traffic.input_tokens, traffic.output_tokens) == (5, 5_000, 1_000)
    assert traffic.actual_cost_usd == pytest.approx(5 * 0.0036)

    status, _, body = request("GET", f"{gw.url}/dashboard.json?since=1d")
    assert status == 200
    data = orjson.loads(body)
    assert data["total"]["tokens"] == 6_000 and data["models"][0]["model"] == "gpt-4.1"
    assert sum(sum(v) for v in data["series"]["tokens"].values()) == 6_000

    request_id = ids[0]["x-llmswitch-request-id"]
    payload = orjson.dumps({"request_id": request_id, "score": 0.25})
    assert request("POST", f"{gw.url}/v1/feedback", payload, {"Content-Type": "application/json"})[0] == 200
    with psycopg.connect(pg.url) as conn:
        assert conn.execute("SELECT request_id, score FROM feedback").fetchall() == [(request_id, 0.25)]
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE attempts SET cost_usd = 0")


def test_two_workers_and_two_replicas_share_one_ledger(
    pg: PostgresServer, fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    # started together on an empty database: the schema is created once (advisory lock)
    a = start_gateway(config(fresh_sim, pg.url), args=["--workers", "2"])
    b = start_gateway(config(fresh_sim, pg.url))
    for gw in (a, b, a, b, a):
        fresh_sim.enqueue("gpt-4.1", {"usage": USAGE})
        client(gw).chat.completions.create(model="gpt-4.1", messages=HI)
    assert len(pg_rows(pg.url, 5)) == 5
    a.stop()
    b.stop()
    rows = pg_rows(pg.url, 5)
    assert len(rows) == 5 and len({r["request_id"] for r in rows}) == 5
    with psycopg.connect(pg.url) as conn:
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]


def test_an_outage_of_the_database_loses_no_row(
    pg: PostgresServer, fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(config(fresh_sim, pg.url))
    fresh_sim.enqueue("gpt-4.1", {"usage": USAGE})
    client(gw).chat.completions.create(model="gpt-4.1", messages=HI)
    assert len(pg_rows(pg.url, 1)) == 1
    pg.stop()
    for _ in range(3):  # served while the ledger cannot be written
        fresh_sim.enqueue("gpt-4.1", {"usage": USAGE})
        client(gw).chat.completions.create(model="gpt-4.1", messages=HI)
    time.sleep(1.0)
    pg.start()
    assert len(pg_rows(pg.url, 4, timeout=40)) == 4
    assert "ledger write to PostgreSQL failed" in gw.log()


def test_a_budget_is_read_back_from_postgres_after_a_restart(
    pg: PostgresServer, fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    keys = {
        "auth": {"keys": [{"id": "capped", "key": "sk-capped", "budget": {"usd": 0.005, "period": "day"}}]}
    }
    gw = start_gateway(config(fresh_sim, pg.url, **keys))
    for _ in range(2):
        fresh_sim.enqueue("gpt-4.1", {"usage": USAGE})
        client(gw, "sk-capped").chat.completions.create(model="gpt-4.1", messages=HI)
    pg_rows(pg.url, 2)
    gw.stop()
    again = start_gateway(config(fresh_sim, pg.url, **keys))
    with pytest.raises(Exception, match="budget"):
        client(again, "sk-capped").chat.completions.create(model="gpt-4.1", messages=HI)


def test_prompt_logging_needs_a_sqlite_ledger() -> None:
    with pytest.raises(ConfigError, match=r"logging\.bodies: prompts are logged to SQLite ledgers only"):
        config_from_data({"storage": {"url": "postgresql://u@h/db"}, "logging": {"bodies": True}})


def test_a_row_postgres_cannot_hold_is_written_coerced_and_blocks_no_other(
    pg: PostgresServer, fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(config(fresh_sim, pg.url))
    # an upstream naming itself with a NUL character, which PostgreSQL text cannot store
    fresh_sim.enqueue(
        "gpt-4.1", {"usage": USAGE, "model": "gpt-4.1\x00evil"}, {"usage": USAGE}, {"usage": USAGE}
    )
    for _ in range(3):
        client(gw).chat.completions.create(model="gpt-4.1", messages=HI)
    rows = pg_rows(pg.url, 3)
    assert [r["upstream_model"] for r in rows] == ["gpt-4.1\ufffdevil", "gpt-4.1", "gpt-4.1"]
    assert "ledger batch rejected" in gw.log() and "dropped an unwritable row" not in gw.log()
