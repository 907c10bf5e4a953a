"""Prompt and answer logging (`logging.bodies`): off by default, redacted, kept for the retention period."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import anthropic

from llmswitch.ledger.bodies import read_logged
from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import UPSTREAM_KEY, GatewayProcess, provider

GatewayFactory = Callable[..., GatewayProcess]


def config(sim: Simulator, **logging: Any) -> dict[str, Any]:
    return {
        "providers": {"p": provider(sim.url)},
        "models": {"m": {"deployments": [{"provider": "p", "model": "up"}]}},
        "logging": logging,
    }


def test_bodies_are_not_logged_by_default(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    gw = start_gateway(config(fresh_sim))
    client(gw).chat.completions.create(model="m", messages=[{"role": "user", "content": "secret plans"}])
    gw.stop()
    con = sqlite3.connect(gw.db_path)
    assert con.execute("SELECT COUNT(*) FROM bodies").fetchone()[0] == 0
    assert "secret plans" not in gw.db_path.read_bytes().decode("latin-1")


def test_logged_prompts_and_answers_both_surfaces_redacted(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(config(fresh_sim, bodies=True, redact=[r"\b\d{3}-\d{2}-\d{4}\b"]))
    fresh_sim.enqueue(
        "up",
        {"content": "plain answer"},
        {"content": "streamed answer here"},
        {"content": f"echo {UPSTREAM_KEY}"},
        {"content": "from claude side"},
    )
    c = client(gw)
    c.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "my SSN is 123-45-6789"}],
        extra_headers={"x-llmswitch-tags": "team=search"},
    )
    list(c.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": "stream"}]))
    c.chat.completions.create(model="m", messages=[{"role": "user", "content": "leak?"}])
    anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0).messages.create(
        model="m", max_tokens=20, messages=[{"role": "user", "content": "hello from anthropic"}]
    )
    gw.stop()
    logged = read_logged(f"sqlite:///{gw.db_path}", since_seconds=3600)
    assert [x.response_text for x in logged] == [
        "plain answer",
        "streamed answer here",
        "echo [REDACTED]",
        "from claude side",
    ]
    assert logged[0].request["messages"][0]["content"] == "my SSN is [REDACTED]"
    assert logged[0].tags == {"team": "search"} and logged[0].model == "m"
    assert [x.surface for x in logged] == ["openai", "openai", "openai", "anthropic"]
    assert UPSTREAM_KEY not in gw.db_path.read_bytes().decode("latin-1")


def test_old_bodies_are_deleted_after_the_retention_period(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(config(fresh_sim, bodies=True, bodies_retention_days=1))
    client(gw).chat.completions.create(model="m", messages=[{"role": "user", "content": "first"}])
    gw.stop()
    con = sqlite3.connect(gw.db_path)
    with con:
        con.execute(
            "INSERT INTO bodies (request_id, ts, surface, model, request, response_text) "
            "VALUES ('old', ?, 'openai', 'm', '{}', 'stale')",
            (time.time() - 3 * 86400,),
        )
    con.close()
    gw.start()  # the body writer purges at start-up, then hourly
    client(gw).chat.completions.create(model="m", messages=[{"role": "user", "content": "second"}])
    gw.stop()
    texts = [x.response_text for x in read_logged(f"sqlite:///{gw.db_path}", since_seconds=None)]
    assert "stale" not in texts and len(texts) == 2
