"""Cost math through the gateway: the price database (genai-prices) against hand-computed invoices.

Rates below are the providers' published USD per million tokens as carried by genai-prices 0.2.3
(pinned); each expected figure is written out as arithmetic so it can be checked by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import GatewayProcess, provider

GatewayFactory = Callable[..., GatewayProcess]

# (model name, genai-prices provider, upstream model id, prompt, cached, completion, invoice(ts) in USD)
USAGE = {"prompt_tokens": 12_000, "cached_tokens": 8_000, "completion_tokens": 1_500}


def deepseek_invoice(ts: float) -> float:
    t = dt.datetime.fromtimestamp(ts, dt.UTC).time()
    off_peak = t >= dt.time(16, 30) or t < dt.time(0, 30)  # DeepSeek's discount window, UTC
    if off_peak:
        return (4_000 * 0.135 + 8_000 * 0.035 + 1_500 * 0.55) / 1e6
    return (4_000 * 0.27 + 8_000 * 0.07 + 1_500 * 1.10) / 1e6


CASES: list[tuple[str, str, str, Callable[[float], float]]] = [
    ("deepseek-v3", "deepseek", "deepseek-chat", deepseek_invoice),
    (
        "kimi-k2",
        "moonshotai",
        "kimi-k2-0905-preview",
        lambda _: (4_000 * 0.60 + 8_000 * 0.15 + 1_500 * 2.50) / 1e6,
    ),
    (
        "qwen3-coder",
        "openrouter",
        "qwen/qwen3-coder-plus",
        lambda _: (4_000 * 0.65 + 8_000 * 0.13 + 1_500 * 3.25) / 1e6,
    ),
    ("glm-4.6", "zai", "glm-4.6", lambda _: (4_000 * 0.60 + 8_000 * 0.11 + 1_500 * 2.20) / 1e6),
    ("gpt-4.1", "openai", "gpt-4.1", lambda _: (4_000 * 2.00 + 8_000 * 0.50 + 1_500 * 8.00) / 1e6),
    (
        "claude-sonnet",
        "anthropic",
        "claude-sonnet-4-5",
        lambda _: (4_000 * 3.00 + 8_000 * 0.30 + 1_500 * 15.00) / 1e6,
    ),
]


@pytest.fixture
def gw(fresh_sim: Simulator, start_gateway: GatewayFactory) -> GatewayProcess:
    # Every provider is the simulator; `pricing_provider` tells the price database whose list applies.
    cfg: dict[str, Any] = {"providers": {}, "models": {}}
    for name, pricing_provider, upstream, _ in CASES:
        cfg["providers"][pricing_provider] = provider(fresh_sim.url, pricing_provider=pricing_provider)
        cfg["models"][name] = {"deployments": [{"provider": pricing_provider, "model": upstream}]}
    cfg["providers"]["selfhost"] = provider(fresh_sim.url)
    cfg["models"]["mystery"] = {"deployments": [{"provider": "selfhost", "model": "my-finetune-v7"}]}
    return start_gateway(cfg)


@pytest.mark.parametrize(("name", "invoice"), [(c[0], c[3]) for c in CASES], ids=[c[0] for c in CASES])
def test_cost_matches_hand_computed_invoice(
    gw: GatewayProcess, fresh_sim: Simulator, name: str, invoice: Callable[[float], float]
) -> None:
    upstream = next(c[2] for c in CASES if c[0] == name)
    fresh_sim.enqueue(upstream, {"usage": USAGE})
    raw = client(gw).chat.completions.with_raw_response.create(
        model=name, messages=[{"role": "user", "content": "x"}]
    )
    [row] = gw.rows_for(raw.headers["x-llmswitch-request-id"])
    expected = invoice(row["ts"])
    assert row["cost_usd"] == pytest.approx(expected, rel=1e-9)
    assert float(raw.headers["x-llmswitch-cost-usd"]) == pytest.approx(expected, abs=1e-10)
    assert (row["input_tokens"], row["cached_input_tokens"], row["output_tokens"]) == (12_000, 8_000, 1_500)


def test_streamed_request_is_priced_like_a_plain_one(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    fresh_sim.enqueue("gpt-4.1", {"usage": USAGE})
    with client(gw).chat.completions.with_streaming_response.create(
        model="gpt-4.1", stream=True, messages=[{"role": "user", "content": "x"}]
    ) as resp:
        list(resp.parse())
        request_id = resp.headers["x-llmswitch-request-id"]
    [row] = gw.rows_for(request_id)
    assert row["cost_usd"] == pytest.approx((4_000 * 2.00 + 8_000 * 0.50 + 1_500 * 8.00) / 1e6)


def test_unknown_price_gives_null_cost_and_one_warning_never_a_failure(gw: GatewayProcess) -> None:
    c = client(gw)
    for _ in range(3):
        raw = c.chat.completions.with_raw_response.create(
            model="mystery", messages=[{"role": "user", "content": "x"}]
        )
        assert raw.parse().choices
        assert raw.headers["x-llmswitch-cost-usd"] == "unknown"
    rows = gw.ledger(at_least=3)
    assert [r["cost_usd"] for r in rows] == [None, None, None]
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert gw.log().count("my-finetune-v7") == 1


def test_reasoning_tiers_and_per_provider_prices(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    gw = start_gateway(
        {
            "providers": {
                "openai": provider(fresh_sim.url, pricing_provider="openai"),
                "moonshot": provider(fresh_sim.url, pricing_provider="moonshotai"),
                "groq": provider(fresh_sim.url, pricing_provider="groq"),
                "anthropic": {**provider(fresh_sim.url), "api": "anthropic", "pricing_provider": "anthropic"},
            },
            "models": {
                "gpt-5": {"deployments": [{"provider": "openai", "model": "gpt-5"}]},
                "kimi-moonshot": {"deployments": [{"provider": "moonshot", "model": "kimi-k2-0905-preview"}]},
                "kimi-groq": {"deployments": [{"provider": "groq", "model": "moonshotai/kimi-k2-instruct"}]},
                "sonnet": {"deployments": [{"provider": "anthropic", "model": "claude-sonnet-4-5"}]},
            },
        }
    )
    c = client(gw)
    msgs: Any = [{"role": "user", "content": "x"}]

    def cost_of(model: str, upstream: str, usage: dict[str, int]) -> dict[str, Any]:
        fresh_sim.enqueue(upstream, {"usage": usage})
        raw = c.chat.completions.with_raw_response.create(model=model, messages=msgs)
        [row] = gw.rows_for(raw.headers["x-llmswitch-request-id"])
        return row

    # Reasoning tokens are part of the completion and billed at the output rate (GPT-5: $1.25 / $10).
    row = cost_of(
        "gpt-5", "gpt-5", {"prompt_tokens": 1_000, "completion_tokens": 3_000, "reasoning_tokens": 2_500}
    )
    assert row["reasoning_tokens"] == 2_500 and row["output_tokens"] == 3_000
    assert row["cost_usd"] == pytest.approx((1_000 * 1.25 + 3_000 * 10.0) / 1e6)
    # The same model costs what each provider charges: Kimi K2 on Moonshot $0.60/$2.50, on Groq $1/$3.
    same = {"prompt_tokens": 10_000, "completion_tokens": 2_000}
    assert cost_of("kimi-moonshot", "kimi-k2-0905-preview", same)["cost_usd"] == pytest.approx(
        (10_000 * 0.60 + 2_000 * 2.50) / 1e6
    )
    assert cost_of("kimi-groq", "moonshotai/kimi-k2-instruct", same)["cost_usd"] == pytest.approx(
        (10_000 * 1.00 + 2_000 * 3.00) / 1e6
    )
    # Long context: Claude Sonnet 4.5 above 200k input tokens is $6 / $22.50 (cache read $0.60).
    row = cost_of(
        "sonnet",
        "claude-sonnet-4-5",
        {"input_tokens": 150_000, "cache_read": 100_000, "output_tokens": 1_000},
    )
    assert row["input_tokens"] == 250_000
    assert row["cost_usd"] == pytest.approx((150_000 * 6.0 + 100_000 * 0.60 + 1_000 * 22.5) / 1e6)
