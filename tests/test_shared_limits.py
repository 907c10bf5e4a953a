"""Budgets and rates shared through a real Redis by two gateway processes (replicas with their own
ledgers), and what a gateway does when its Redis is gone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import redis

from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import GatewayProcess
from tests.redis_server import _free_port, redis_server
from tests.test_limits import HI, ask, config

GatewayFactory = Callable[..., GatewayProcess]


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


def replicas(
    start: GatewayFactory, sim: Simulator, tmp: Path, url: str, **keys: dict[str, Any]
) -> list[GatewayProcess]:
    out = []
    for name in ("a", "b"):
        cfg = config(sim, tmp / f"{name}.db", **keys)
        cfg["storage"]["redis_url"] = url
        out.append(start(cfg))
    return out


def refused(gw: GatewayProcess, key: str, within: float = 3.0) -> str:
    """The 429 code the key gets from `gw`, waiting up to `within` seconds for the shared totals."""
    end = time.monotonic() + within
    while True:
        try:
            client(gw, f"sk-{key}").chat.completions.create(model="gpt-4.1", messages=HI)
        except openai.RateLimitError as e:
            body: Any = e.body
            return str(body["code"])
        if time.monotonic() > end:
            raise AssertionError(f"{key} was never refused")
        time.sleep(0.2)


def test_a_budget_spent_on_one_replica_stops_the_other(
    fresh_sim: Simulator, start_gateway: GatewayFactory, tmp_path: Path, redis_url: str
) -> None:
    a, b = replicas(
        start_gateway, fresh_sim, tmp_path, redis_url, capped={"budget": {"usd": 0.005, "period": "day"}}
    )
    ask(a, fresh_sim, "capped")
    ask(a, fresh_sim, "capped")  # $0.0072 spent, all of it through a
    time.sleep(1.2)  # a's spend reaches Redis, and b reads it back, twice a second
    sent = len(fresh_sim.requests())
    assert refused(b, "capped", within=0) == "budget_exceeded"
    assert len(fresh_sim.requests()) == sent
    [name] = redis.Redis.from_url(redis_url).keys("llmswitch:limits:spend:capped:*")
    assert float(redis.Redis.from_url(redis_url).get(name) or 0) == pytest.approx(0.0072, abs=1e-5)


def test_a_rate_is_shared_by_the_replicas(
    fresh_sim: Simulator, start_gateway: GatewayFactory, tmp_path: Path, redis_url: str
) -> None:
    a, b = replicas(start_gateway, fresh_sim, tmp_path, redis_url, slow={"rpm": 4})
    for gw in (a, b, a, b):
        ask(gw, fresh_sim, "slow")
    time.sleep(1.2)  # two syncs: each replica now knows of the other's two requests
    with pytest.raises(openai.RateLimitError):
        client(a, "sk-slow").chat.completions.create(model="gpt-4.1", messages=HI)
    with pytest.raises(openai.RateLimitError):
        client(b, "sk-slow").chat.completions.create(model="gpt-4.1", messages=HI)


def test_without_its_redis_a_gateway_counts_alone(
    fresh_sim: Simulator, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    cfg = config(fresh_sim, tmp_path / "ledger.db", slow={"rpm": 2})
    cfg["storage"]["redis_url"] = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    gw = start_gateway(cfg)
    ask(gw, fresh_sim, "slow")
    ask(gw, fresh_sim, "slow")
    with pytest.raises(openai.RateLimitError):
        client(gw, "sk-slow").chat.completions.create(model="gpt-4.1", messages=HI)
    end = time.monotonic() + 5
    while "Redis unreachable" not in gw.log() and time.monotonic() < end:
        time.sleep(0.1)
    assert "shared limits: Redis unreachable" in gw.log()
