"""Per-key budgets and request rates, through a real gateway (and the period arithmetic on its own)."""

from __future__ import annotations

import calendar
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from llmswitch.config import config_from_data
from llmswitch.policy.limits import KeyLimits, period_start
from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import GatewayProcess, provider

GatewayFactory = Callable[..., GatewayProcess]
USAGE = {"prompt_tokens": 1_000, "completion_tokens": 200}  # on gpt-4.1 ($2 / $8 per Mtok): $0.0036
HI = [{"role": "user", "content": "hi"}]


def config(sim: Simulator, db: Path, **keys: dict[str, Any]) -> dict[str, Any]:
    return {
        "storage": {"url": f"sqlite:///{db}"},
        "providers": {"openai": provider(sim.url, pricing_provider="openai")},
        "models": {"gpt-4.1": {"deployments": [{"provider": "openai", "model": "gpt-4.1"}]}},
        "auth": {"keys": [{"id": k, "key": f"sk-{k}", **v} for k, v in keys.items()]},
    }


def ask(gw: GatewayProcess, sim: Simulator, key: str) -> None:
    sim.enqueue("gpt-4.1", {"usage": USAGE})
    client(gw, f"sk-{key}").chat.completions.create(model="gpt-4.1", messages=HI)


def test_a_key_over_its_budget_gets_429_and_nothing_is_sent(
    fresh_sim: Simulator, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    db = tmp_path / "ledger.db"
    gw = start_gateway(config(fresh_sim, db, capped={"budget": {"usd": 0.005, "period": "day"}}, free={}))
    ask(gw, fresh_sim, "capped")  # $0.0036 spent
    ask(gw, fresh_sim, "capped")  # $0.0072: over, but it was under when this one came in
    sent = len(fresh_sim.requests())
    with pytest.raises(openai.RateLimitError) as e:
        client(gw, "sk-capped").chat.completions.create(model="gpt-4.1", messages=HI)
    body: Any = e.value.body
    assert body["code"] == "budget_exceeded"
    assert "has spent $0.0072 of its $0.005 day budget" in body["message"]
    assert len(fresh_sim.requests()) == sent
    with pytest.raises(anthropic.RateLimitError):  # both surfaces, Anthropic's error shape
        anthropic.Anthropic(base_url=gw.url, api_key="sk-capped", max_retries=0).messages.create(
            model="gpt-4.1", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    ask(gw, fresh_sim, "free")  # other keys are not affected

    # A restarted gateway starts from what the ledger says the key spent this period.
    gw.stop()
    gw2 = start_gateway(config(fresh_sim, db, capped={"budget": {"usd": 0.005, "period": "day"}}, free={}))
    with pytest.raises(openai.RateLimitError):
        client(gw2, "sk-capped").chat.completions.create(model="gpt-4.1", messages=HI)
    gw3 = start_gateway(config(fresh_sim, db, capped={"budget": {"usd": 0.01, "period": "day"}}))
    ask(gw3, fresh_sim, "capped")  # a raised budget lets it through again


def test_requests_per_minute(fresh_sim: Simulator, start_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = start_gateway(config(fresh_sim, tmp_path / "ledger.db", slow={"rpm": 3}, free={}))
    for _ in range(3):
        ask(gw, fresh_sim, "slow")
    with pytest.raises(openai.RateLimitError) as e:
        client(gw, "sk-slow").chat.completions.create(model="gpt-4.1", messages=HI)
    body: Any = e.value.body
    assert body["code"] == "rate_limit_exceeded"
    assert 1 <= int(e.value.response.headers["retry-after"]) <= 60
    for _ in range(4):
        ask(gw, fresh_sim, "free")


def test_budget_periods_follow_the_utc_calendar() -> None:
    now = calendar.timegm((2026, 11, 29, 15, 30, 0))  # a Sunday
    assert period_start("day", now) == calendar.timegm((2026, 11, 29, 0, 0, 0))
    assert period_start("week", now) == calendar.timegm((2026, 11, 23, 0, 0, 0))  # Monday
    assert period_start("month", now) == calendar.timegm((2026, 11, 1, 0, 0, 0))
    assert period_start("total", now) == 0.0


def test_spend_resets_when_a_new_period_begins() -> None:
    cfg = config_from_data(
        {"auth": {"keys": [{"id": "k", "key": "x", "budget": {"usd": 1, "period": "day"}}]}}
    )
    day1 = calendar.timegm((2026, 11, 29, 23, 0, 0))
    limits = KeyLimits(cfg.auth.keys, None, now=day1)
    limits.spend("k", 1.5, day1)
    with pytest.raises(Exception, match="budget"):
        limits.admit("k", now=day1 + 60)
    limits.admit("k", now=day1 + 3_600)  # past midnight UTC
    assert limits.spent("k") == 0.0


def test_keys_new_prints_a_key_the_gateway_accepts_from_its_digest(
    fresh_sim: Simulator, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llmswitch", "keys", "new", "--id", "ops", "--admin", "--rpm", "5", "--json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    made = json.loads(out)
    assert made["key"].startswith("sk-llms-") and made["key"] not in json.dumps(made["entry"])
    assert made["entry"]["admin"] is True and made["entry"]["rpm"] == 5
    cfg = config(fresh_sim, tmp_path / "ledger.db")
    cfg["auth"] = {"keys": [made["entry"]]}
    gw = start_gateway(cfg)
    fresh_sim.enqueue("gpt-4.1", {"usage": USAGE})
    assert client(gw, made["key"]).chat.completions.create(model="gpt-4.1", messages=HI).choices
    with pytest.raises(openai.AuthenticationError):
        client(gw, made["key"] + "x").chat.completions.create(model="gpt-4.1", messages=HI)
    assert made["key"] not in gw.log() and made["key"] not in (gw.workdir / "llmswitch.yaml").read_text()
