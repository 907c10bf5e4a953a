"""llmswitch.pricing against the real, bundled genai-prices 0.2.3 data (no mocks, no network).

Rates quoted below were read from the installed data with `model.get_prices(ts)`, USD per million tokens
(cached = cache read, write = cache write):

    deepseek   deepseek-chat          peak 00:30-16:30 UTC: in 0.27  cached 0.07   out 1.10
                                      off-peak:             in 0.135 cached 0.035  out 0.55
    moonshotai kimi-k2-0905-preview   in 0.60  cached 0.15  out 2.50
    openrouter qwen/qwen3-coder-plus  in 0.65  cached 0.13  write 0.8125  out 3.25
    zai        GLM-4.6                in 0.60  cached 0.11  out 2.20
    openai     gpt-4.1                in 2.00  cached 0.50  out 8.00
    anthropic  claude-sonnet-4-5      in 3.00  cached 0.30  write 3.75  out 15.00
                                      above 200k input tokens: in 6.00 cached 0.60 write 7.50 out 22.50
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import pytest
from genai_prices import Usage as GUsage
from genai_prices.data_snapshot import get_snapshot

from llmswitch.pricing.book import DeploymentPricer, PriceBook, Rates, price_override
from llmswitch.pricing.usage import Usage

PEAK = datetime(2026, 11, 20, 10, 0, tzinfo=UTC).timestamp()  # a Friday, 10:00 UTC: DeepSeek peak
OFF_PEAK = datetime(2026, 11, 20, 20, 0, tzinfo=UTC).timestamp()  # 20:00 UTC: DeepSeek off-peak
TS = PEAK  # every non-DeepSeek invoice is dated here


def _pricer(
    book: PriceBook,
    provider: str,
    base_url: str | None,
    model: str,
    *,
    pricing_provider: str | None = None,
    override: Rates | None = None,
) -> DeploymentPricer:
    return book.for_deployment(
        provider=provider,
        base_url=base_url,
        upstream_model=model,
        pricing_provider=pricing_provider,
        override=override,
    )


def _genai_usage(u: Usage) -> GUsage:
    return GUsage(
        input_tokens=u.input_tokens,
        cache_read_tokens=u.cached_input_tokens,
        cache_write_tokens=u.cache_write_tokens,
        output_tokens=u.output_tokens,
        output_reasoning_tokens=u.reasoning_tokens,
    )


# --------------------------------------------------------------------------------------------------
# Hand-computed invoices: expected = Σ tokens x published $/Mtok / 1e6,
# where uncached input = input - cached - cache write (canonical input_tokens includes both).


@pytest.fixture
def book() -> PriceBook:
    return PriceBook()


def test_deepseek_chat_peak_and_off_peak(book: PriceBook) -> None:
    p = _pricer(book, "deepseek", "https://api.deepseek.com/v1", "deepseek-chat")
    assert p.source == "genai-prices:deepseek/deepseek-chat"
    u = Usage(input_tokens=1200, cached_input_tokens=1000, output_tokens=300)
    # peak: 200 uncached x 0.27 + 1000 cached x 0.07 + 300 out x 1.10 = $0.000454
    assert p.rates(PEAK) == Rates(input=0.27, output=1.10, cached_input=0.07)
    assert p.cost(u, PEAK) == pytest.approx((200 * 0.27 + 1000 * 0.07 + 300 * 1.10) / 1e6, rel=1e-12)
    # off-peak (16:30-00:30 UTC) is half price: 200 x 0.135 + 1000 x 0.035 + 300 x 0.55 = $0.000227
    assert p.rates(OFF_PEAK) == Rates(input=0.135, output=0.55, cached_input=0.035)
    assert p.cost(u, OFF_PEAK) == pytest.approx((200 * 0.135 + 1000 * 0.035 + 300 * 0.55) / 1e6, rel=1e-12)


def test_kimi_k2_moonshot(book: PriceBook) -> None:
    p = _pricer(book, "moonshot", "https://api.moonshot.ai/v1", "kimi-k2-0905-preview")
    assert p.source == "genai-prices:moonshotai/kimi-k2-0905-preview"
    u = Usage(input_tokens=5000, cached_input_tokens=2000, output_tokens=800)
    # 3000 uncached x 0.60 + 2000 cached x 0.15 + 800 out x 2.50 = $0.0041
    assert p.cost(u, TS) == pytest.approx((3000 * 0.60 + 2000 * 0.15 + 800 * 2.50) / 1e6, rel=1e-12)


def test_qwen3_coder_plus_via_openrouter(book: PriceBook) -> None:
    p = _pricer(book, "openrouter", "https://openrouter.ai/api/v1", "qwen/qwen3-coder-plus")
    assert p.source == "genai-prices:openrouter/qwen/qwen3-coder-plus"
    u = Usage(input_tokens=10_000, cached_input_tokens=4000, cache_write_tokens=1000, output_tokens=1000)
    # 5000 uncached x 0.65 + 4000 cached x 0.13 + 1000 written x 0.8125 + 1000 out x 3.25 = $0.0078325
    expected = (5000 * 0.65 + 4000 * 0.13 + 1000 * 0.8125 + 1000 * 3.25) / 1e6
    assert p.cost(u, TS) == pytest.approx(expected, rel=1e-12)


def test_glm_4_6_zai(book: PriceBook) -> None:
    # Z.ai's OpenAI-compatible endpoint; genai-prices' zai pattern is `https://api\.z\.ai`
    # (open.bigmodel.cn is the separate `zhipuai` provider, which has no GLM-4.6).
    p = _pricer(book, "zai", "https://api.z.ai/api/paas/v4", "glm-4.6")
    assert p.source == "genai-prices:zai/GLM-4.6"
    u = Usage(input_tokens=3000, cached_input_tokens=500, output_tokens=700)
    # 2500 uncached x 0.60 + 500 cached x 0.11 + 700 out x 2.20 = $0.003095
    assert p.cost(u, TS) == pytest.approx((2500 * 0.60 + 500 * 0.11 + 700 * 2.20) / 1e6, rel=1e-12)


def test_gpt_4_1_openai(book: PriceBook) -> None:
    p = _pricer(book, "openai", "https://api.openai.com/v1", "gpt-4.1")
    assert p.source == "genai-prices:openai/gpt-4.1"
    u = Usage(input_tokens=20_000, cached_input_tokens=15_000, output_tokens=1000, reasoning_tokens=0)
    # 5000 uncached x 2.00 + 15000 cached x 0.50 + 1000 out x 8.00 = $0.0255
    assert p.cost(u, TS) == pytest.approx((5000 * 2.00 + 15_000 * 0.50 + 1000 * 8.00) / 1e6, rel=1e-12)


def test_claude_sonnet_4_5_anthropic_with_tiers(book: PriceBook) -> None:
    p = _pricer(book, "anthropic", "https://api.anthropic.com", "claude-sonnet-4-5")
    assert p.source == "genai-prices:anthropic/claude-sonnet-4-5"
    r = p.rates(TS)
    assert r is not None and r.tiers == ((200_000, Rates(6.0, 22.5, cached_input=0.6, cache_write=7.5)),)

    u = Usage(input_tokens=12_000, cached_input_tokens=8000, cache_write_tokens=2000, output_tokens=600)
    # 2000 uncached x 3 + 8000 cached x 0.30 + 2000 written x 3.75 + 600 out x 15 = $0.0249
    assert p.cost(u, TS) == pytest.approx((2000 * 3 + 8000 * 0.30 + 2000 * 3.75 + 600 * 15) / 1e6, rel=1e-12)

    # Above 200k total input tokens every token moves to the higher tier (a cliff, not marginal):
    big = Usage(
        input_tokens=250_000, cached_input_tokens=100_000, cache_write_tokens=10_000, output_tokens=2000
    )
    # 140000 uncached x 6 + 100000 cached x 0.60 + 10000 written x 7.50 + 2000 out x 22.50 = $1.02
    expected = (140_000 * 6 + 100_000 * 0.60 + 10_000 * 7.50 + 2000 * 22.50) / 1e6
    assert p.cost(big, TS) == pytest.approx(expected, rel=1e-12)

    # Exactly 200k is still the base tier; one more token is not.
    assert p.cost(Usage(input_tokens=200_000, output_tokens=1000), TS) == pytest.approx(
        (200_000 * 3 + 1000 * 15) / 1e6, rel=1e-12
    )
    assert p.cost(Usage(input_tokens=200_001, output_tokens=1000), TS) == pytest.approx(
        (200_001 * 6 + 1000 * 22.5) / 1e6, rel=1e-12
    )


# --------------------------------------------------------------------------------------------------
# The fast path agrees with genai-prices' own calc_price


AGREEMENT_CASES = [
    ("deepseek", "deepseek-chat"),
    ("deepseek", "deepseek-reasoner"),
    ("deepseek", "deepseek-v4-flash"),
    ("moonshotai", "kimi-k2-0905-preview"),
    ("openrouter", "qwen/qwen3-coder-plus"),
    ("openrouter", "qwen/qwen-plus"),
    ("openrouter", "moonshotai/kimi-k2"),
    ("zai", "glm-4.6"),
    ("openai", "gpt-4.1"),
    ("openai", "gpt-5"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-opus-4-5"),
    ("google", "gemini-2.5-pro"),
    ("groq", "moonshotai/kimi-k2-instruct"),
    ("minimax", "MiniMax-M2"),
    ("perplexity", "sonar"),  # flat per-request fee
    ("perplexity", "sonar-deep-research"),  # separate reasoning-token price
]

USAGES = [
    Usage(input_tokens=1000, output_tokens=200),
    Usage(input_tokens=1200, cached_input_tokens=1000, output_tokens=300, reasoning_tokens=100),
    Usage(input_tokens=250_000, cached_input_tokens=30_000, cache_write_tokens=5000, output_tokens=2000),
    Usage(
        input_tokens=1_500_000,
        cached_input_tokens=400_000,
        cache_write_tokens=100_000,
        output_tokens=50_000,
        reasoning_tokens=10_000,
    ),
    Usage(),
]

TIMESTAMPS = [
    datetime(2025, 6, 1, 12, 0, tzinfo=UTC).timestamp(),
    datetime(2026, 8, 20, 2, 0, tzinfo=UTC).timestamp(),  # inside deepseek-v4-flash's 01:00-04:00 window
    PEAK,
    OFF_PEAK,
    datetime(2026, 11, 20, 16, 29, 59, tzinfo=UTC).timestamp(),  # the second before the off-peak switch
    datetime(2026, 11, 20, 16, 30, tzinfo=UTC).timestamp(),
    datetime(2027, 2, 1, 0, 15, tzinfo=UTC).timestamp(),
]


@pytest.mark.parametrize(("provider_id", "model"), AGREEMENT_CASES)
def test_cost_matches_genai_prices_calc_price(provider_id: str, model: str) -> None:
    # One pricer walks through all timestamps (out of order), so its cached snapshots are exercised too.
    p = _pricer(PriceBook(), provider_id, None, model, pricing_provider=provider_id)
    assert p.source.startswith(f"genai-prices:{provider_id}/")
    for ts in TIMESTAMPS:
        when = datetime.fromtimestamp(ts, UTC)
        for u in USAGES:
            want = genai_prices.calc_price(
                _genai_usage(u), model, provider_id=provider_id, genai_request_timestamp=when
            ).total_price
            got = p.cost(u, ts)
            assert got is not None
            assert abs(Decimal(got) - want) < Decimal("1e-9"), (model, when, u, got, want)


def test_every_text_model_in_the_database_agrees() -> None:
    """All genai-prices models with a token price, at several dates, incl. > 200k tier crossings."""
    snapshot = get_snapshot()
    book = PriceBook(refresh_seconds=3600)
    checked = 0
    for provider in snapshot.providers:
        for model in provider.models:
            if provider.find_model(model.id, all_providers=snapshot.providers) is not model:
                continue  # its id is shadowed by an earlier model's match rule
            p = _pricer(book, provider.id, None, model.id, pricing_provider=provider.id)
            for ts in TIMESTAMPS[1:4]:
                when = datetime.fromtimestamp(ts, UTC)
                for u in USAGES[1:3]:
                    got = p.cost(u, ts)
                    if got is None:  # priced only per audio hour, character, page, ...
                        mp = model.get_prices(when)
                        assert mp.input_mtok is None and mp.output_mtok is None, model.id
                        continue
                    want = model.calc_price(
                        _genai_usage(u), provider, genai_request_timestamp=when
                    ).total_price
                    assert abs(Decimal(got) - want) < Decimal("1e-9"), (provider.id, model.id, when, u)
                    checked += 1
    assert checked > 10_000


def test_snapshot_switches_exactly_at_price_boundaries() -> None:
    # Even with a refresh interval of days, the off-peak switch and dated changes apply to the second.
    book = PriceBook(refresh_seconds=10 * 86400)
    p = _pricer(book, "deepseek", "https://api.deepseek.com", "deepseek-chat")
    u = Usage(input_tokens=1_000_000)
    switch = datetime(2026, 11, 20, 16, 30, tzinfo=UTC).timestamp()
    assert p.cost(u, switch - 1) == pytest.approx(0.27)
    assert p.cost(u, switch - 0.001) == pytest.approx(0.27)
    assert p.cost(u, switch) == pytest.approx(0.135)
    assert p.cost(u, switch + 8 * 3600 - 1) == pytest.approx(0.135)  # 00:29:59 next day
    assert p.cost(u, switch + 8 * 3600) == pytest.approx(0.27)  # 00:30 peak again

    v4 = _pricer(book, "deepseek", "https://api.deepseek.com", "deepseek-v4-flash")
    new_prices = datetime(2026, 9, 10, 12, tzinfo=UTC).timestamp()  # StartDateConstraint 2026-09-10
    for ts in (new_prices - 86400, new_prices, new_prices - 12 * 3600 - 1, new_prices - 12 * 3600):
        want = genai_prices.calc_price(
            GUsage(input_tokens=1_000_000),
            "deepseek-v4-flash",
            provider_id="deepseek",
            genai_request_timestamp=datetime.fromtimestamp(ts, UTC),
        ).total_price
        assert v4.cost(u, ts) == pytest.approx(float(want), rel=1e-12)


# --------------------------------------------------------------------------------------------------
# Resolution, overrides, unknown prices


def test_override_wins(book: PriceBook) -> None:
    override = price_override({"input": 1.0, "output": 2.0, "cached_input": 0.5})
    p = _pricer(book, "deepseek", "https://api.deepseek.com/v1", "deepseek-chat", override=override)
    assert p.source == "override"
    assert p.rates(PEAK) is override and p.rates(OFF_PEAK) is override  # no time-of-day from the DB
    u = Usage(input_tokens=1200, cached_input_tokens=1000, output_tokens=300)
    # 200 uncached x 1.0 + 1000 cached x 0.5 + 300 out x 2.0
    assert p.cost(u, OFF_PEAK) == pytest.approx((200 * 1.0 + 1000 * 0.5 + 300 * 2.0) / 1e6, rel=1e-12)


def test_price_override_from_config_mapping() -> None:
    assert price_override({"input": 0.27, "output": 1.1}) == Rates(input=0.27, output=1.1)
    assert price_override({"input": 3, "output": 15, "cached_input": 0.3, "cache_write": 3.75}) == Rates(
        3.0, 15.0, cached_input=0.3, cache_write=3.75
    )
    # a dumped pydantic PriceConfig carries explicit nulls for unset cache rates
    assert price_override({"input": 1, "output": 2, "cached_input": None}) == Rates(1.0, 2.0)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="output"):
        price_override({"input": 1.0})
    with pytest.raises(ValueError, match="non-negative"):
        price_override({"input": -1.0, "output": 1.0})
    with pytest.raises(ValueError, match="unknown price key"):
        price_override({"input": 1.0, "output": 1.0, "cached": 0.1})


def test_cache_rates_default_to_input(book: PriceBook) -> None:
    p = _pricer(book, "self", "http://127.0.0.1:8000/v1", "m", override=Rates(input=2.0, output=4.0))
    u = Usage(input_tokens=1000, cached_input_tokens=300, cache_write_tokens=200, output_tokens=100)
    assert p.cost(u, TS) == pytest.approx((1000 * 2.0 + 100 * 4.0) / 1e6, rel=1e-12)


def test_unknown_model_returns_none_and_warns_once(book: PriceBook, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="llmswitch.pricing")
    u = Usage(input_tokens=100, output_tokens=10)
    for _ in range(3):
        p = _pricer(book, "openai", "https://api.openai.com/v1", "no-such-model-xyz")
        assert p.source == "unknown"
        assert p.rates(TS) is None
        for ts in (TS, TS + 3600, TS + 86400, TS - 5):
            assert p.cost(u, ts) is None
    warnings = [r for r in caplog.records if r.name == "llmswitch.pricing" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "no-such-model-xyz" in warnings[0].getMessage()


def test_unknown_self_hosted_without_pricing_provider(
    book: PriceBook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="llmswitch.pricing")
    p = _pricer(book, "vllm", "http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-Coder-7B-Instruct")
    assert p.source == "unknown"
    assert p.cost(Usage(input_tokens=10, output_tokens=10), TS) is None
    assert len(caplog.records) == 1


def test_pricing_provider_for_unmatched_base_url(book: PriceBook) -> None:
    # e.g. a local proxy in front of OpenRouter: the URL says nothing, the configured id decides.
    p = _pricer(
        book,
        "local-proxy",
        "http://127.0.0.1:8000/v1",
        "qwen/qwen3-coder-plus",
        pricing_provider="openrouter",
    )
    assert p.source == "genai-prices:openrouter/qwen/qwen3-coder-plus"
    u = Usage(input_tokens=2000, output_tokens=100)
    assert p.cost(u, TS) == pytest.approx((2000 * 0.65 + 100 * 3.25) / 1e6, rel=1e-12)
    # pricing_provider beats the base_url, too
    q = _pricer(book, "x", "https://api.openai.com/v1", "deepseek-chat", pricing_provider="deepseek")
    assert q.source == "genai-prices:deepseek/deepseek-chat"


def test_bad_pricing_provider_is_unknown(book: PriceBook) -> None:
    p = _pricer(book, "deepseek", "https://api.deepseek.com", "deepseek-chat", pricing_provider="nope")
    assert p.source == "unknown"
    assert p.cost(Usage(input_tokens=1), TS) is None


def test_provider_name_fallback(book: PriceBook) -> None:
    # No base_url pattern matches: the configured provider name is tried as a genai-prices id.
    p = _pricer(book, "deepseek", "http://10.0.0.5:8080/v1", "deepseek-chat")
    assert p.source == "genai-prices:deepseek/deepseek-chat"
    # genai-prices' own id aliases apply: a provider named "bedrock" is its `aws`
    bedrock = _pricer(book, "bedrock", None, "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert bedrock.source.startswith("genai-prices:aws/")


def test_no_network_auto_update() -> None:
    PriceBook().for_deployment(
        provider="openai", base_url="https://api.openai.com/v1", upstream_model="gpt-4.1"
    )
    assert get_snapshot().from_auto_update is False


def test_cost_is_fast(book: PriceBook) -> None:
    p = _pricer(book, "anthropic", "https://api.anthropic.com", "claude-sonnet-4-5")
    u = Usage(input_tokens=12_000, cached_input_tokens=8000, cache_write_tokens=2000, output_tokens=600)
    p.cost(u, TS)
    n = 20_000
    t0 = time.perf_counter()
    for i in range(n):
        p.cost(u, TS + i * 1e-3)
    per_call = (time.perf_counter() - t0) / n
    assert per_call < 20e-6  # ~1 µs here; calc_price is ~130 µs. Loose bound for noisy CI machines.
