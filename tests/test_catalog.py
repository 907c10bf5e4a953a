"""Catalog: tolerant lookups, origin and open weights, metadata, and per-provider prices from the DB."""

from __future__ import annotations

import time

import pytest
import yaml
from genai_prices.data_snapshot import find_provider_by_id

from llmswitch.catalog import Catalog, catalog_key, default_catalog
from llmswitch.catalog.overlay import OVERLAY_PATH
from llmswitch.pricing import _genai
from llmswitch.providers.presets import PRESETS

AT = 1_764_000_000.0  # a fixed instant (2025-11-24 16:00 UTC), so time-of-day prices are reproducible


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return default_catalog()


@pytest.mark.parametrize(
    ("spellings", "canonical"),
    [
        (["deepseek-chat", "deepseek/deepseek-chat", "DeepSeek-Chat", "deepseek-v3"], "deepseek-chat"),
        (["kimi-k2", "moonshotai/kimi-k2", "moonshotai/Kimi-K2-Instruct", "kimi-k2-instruct"], "kimi-k2"),
        (["qwen3-coder-plus", "qwen/qwen3-coder-plus"], "qwen3-coder-plus"),
        (["glm-4.6", "z-ai/glm-4.6", "GLM-4.6", "zai-org/GLM-4.6"], "glm-4.6"),
        (
            ["claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4.5"],
            "claude-sonnet-4-5",
        ),
        (["gpt-4.1", "openai/gpt-4.1", "GPT-4.1"], "gpt-4.1"),
        (["MiniMax-M2", "minimax-m2", "minimax/minimax-m2"], "MiniMax-M2"),
        (["kimi-k2.5", "accounts/fireworks/models/kimi-k2p5", "moonshotai/Kimi-K2.5"], "kimi-k2.5"),
        # self-hosted engines name models by their files: quantisation and format are packaging
        (["qwen3-8b", "Qwen3-8B-Q4_K_M.gguf", "Qwen/Qwen3-8B-AWQ", "qwen3-8b-iq4_xs"], "qwen3-8b"),
        (["smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1"], "smollm2-135m-instruct"),
    ],
)
def test_tolerant_lookup(cat: Catalog, spellings: list[str], canonical: str) -> None:
    infos = [cat.get(s) for s in spellings]
    assert all(i is not None for i in infos), [s for s, i in zip(spellings, infos, strict=True) if i is None]
    assert {i.key for i in infos if i} == {catalog_key(canonical)}
    assert infos[0] is not None and infos[0].id == canonical


def test_unknown_model(cat: Catalog) -> None:
    assert cat.get("definitely-not-a-model-xyz") is None
    assert cat.prices("definitely-not-a-model-xyz") == []
    assert cat.origin("definitely-not-a-model-xyz") is None
    assert cat.is_open_weights("definitely-not-a-model-xyz") is None


@pytest.mark.parametrize(
    ("model", "origin"),
    [
        ("deepseek-chat", "CN"),
        ("deepseek-v3.2", "CN"),
        ("kimi-k2", "CN"),
        ("moonshotai/kimi-k2", "CN"),
        ("qwen3-coder-plus", "CN"),
        ("qwen3-235b-a22b", "CN"),
        ("glm-4.6", "CN"),
        ("MiniMax-M2", "CN"),
        ("gpt-4.1", "US"),
        ("gpt-5", "US"),
        ("claude-sonnet-4-5", "US"),
        ("gemini-2.5-pro", "US"),
    ],
)
def test_origin(cat: Catalog, model: str, origin: str) -> None:
    assert cat.origin(model) == origin


@pytest.mark.parametrize(
    ("model", "open_weights", "licence"),
    [
        ("deepseek-chat", True, "MIT"),  # DeepSeek V3.x behind the API alias
        ("deepseek-v3.2", True, "MIT"),
        ("kimi-k2", True, "Modified MIT"),
        ("kimi-k2-thinking", True, "Modified MIT"),
        ("glm-4.6", True, "MIT"),
        ("qwen3-235b-a22b", True, "Apache-2.0"),
        ("qwen3-coder", True, "Apache-2.0"),  # Qwen3-Coder-480B-A35B
        ("MiniMax-M2", True, "MIT"),
        ("gpt-oss-120b", True, "Apache-2.0"),
        ("gpt-4.1", False, None),
        ("claude-sonnet-4-5", False, None),
        ("gemini-2.5-pro", False, None),
        ("qwen3-coder-plus", False, None),  # Model Studio API tier: the overlay corrects models.dev
    ],
)
def test_open_weights_and_licence(cat: Catalog, model: str, open_weights: bool, licence: str | None) -> None:
    info = cat.get(model)
    assert info is not None
    assert (info.open_weights, info.licence) == (open_weights, licence)
    assert cat.is_open_weights(model) is open_weights


def test_metadata_from_models_dev(cat: Catalog) -> None:
    gpt = cat.get("gpt-4.1")
    kimi = cat.get("kimi-k2-0905-preview")
    assert gpt is not None and kimi is not None
    assert gpt.context_window is not None and gpt.context_window > 1_000_000
    assert "image" in gpt.input_modalities and gpt.output_modalities == ("text",)
    assert kimi.context_window == 262_144 and kimi.input_modalities == ("text",)
    assert gpt.lab == "OpenAI" and kimi.lab == "Moonshot AI"
    assert set(gpt.sources) == {"genai-prices", "models-dev", "overlay"}


def test_model_only_genai_prices_knows_still_gets_lab_and_context(cat: Catalog) -> None:
    info = cat.get("kimi-k3")  # newer than the bundled models.dev data
    assert info is not None
    assert "models-dev" not in info.sources
    assert (info.lab, info.origin) == ("Moonshot AI", "CN")
    assert info.context_window  # from genai-prices
    assert info.open_weights is None  # unknown, not guessed


def test_overlay_model_the_packages_lack(cat: Catalog) -> None:
    info = cat.get("SmolLM2-135M-Instruct")
    assert info is not None
    assert (info.origin, info.open_weights, info.licence) == ("US", True, "Apache-2.0")
    assert info.offers == () and cat.prices("SmolLM2-135M-Instruct") == []


def test_prices_per_provider_come_from_genai_prices(cat: Catalog) -> None:
    prices = cat.prices("kimi-k2", at=AT)
    providers = [p.provider for p in prices]
    assert {"moonshotai", "openrouter", "groq"} <= set(providers)
    assert providers[0] == "moonshotai"  # the lab's own API first
    snapshot = _genai.current_snapshot()
    for p in prices:
        gp = find_provider_by_id(snapshot.providers, p.provider)
        assert gp is not None
        model = next(m for m in gp.models if m.id == p.model)
        rates = _genai.rates_at(model, AT)
        assert rates is not None
        assert (p.input, p.output, p.cached_input) == (rates.input, rates.output, rates.cached_input)
        assert p.source == f"genai-prices:{p.provider}/{p.model}"
    groq = next(p for p in prices if p.provider == "groq")
    assert groq.upstream == "moonshotai/kimi-k2-instruct"


def test_prices_filtered_by_provider_and_upstream_ids(cat: Catalog) -> None:
    prices = cat.prices("deepseek-v3.2", at=AT, providers={"deepseek", "fireworks"})
    assert {p.provider for p in prices} == {"deepseek", "fireworks"}
    fw = next(p for p in prices if p.provider == "fireworks")
    assert fw.upstream == "accounts/fireworks/models/deepseek-v3p2"  # what Fireworks must be sent


def test_prices_follow_time_of_day(cat: Catalog) -> None:
    # DeepSeek's off-peak window (16:30-00:30 UTC) halves deepseek-chat in genai-prices' data.
    day = 1_764_000_000.0 - 16 * 3600 + 10 * 3600  # 10:00 UTC
    night = day + 8 * 3600  # 18:00 UTC
    [peak] = cat.prices("deepseek-chat", at=day, providers={"deepseek"})
    [off] = cat.prices("deepseek-chat", at=night, providers={"deepseek"})
    assert off.input < peak.input and off.output < peak.output


def test_notable_models_resolve_and_are_priced_by_preset_providers(cat: Catalog) -> None:
    preset_ids = {p.pricing_provider for p in PRESETS.values() if p.pricing_provider}
    for model in cat.notable():
        info = cat.get(model)
        assert info is not None, model
        assert info.origin is not None, model
        assert cat.prices(model, at=AT, providers=preset_ids), model


def test_overlay_holds_no_prices() -> None:
    # Prices come from genai-prices or the config, never from a hand-typed table.
    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                assert not any(w in str(k).lower() for w in ("price", "cost", "usd", "mtok")), k
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load(OVERLAY_PATH.read_text()))


def test_every_key_is_buildable(cat: Catalog) -> None:
    keys = list(cat.keys())
    assert len(keys) > 2000
    for k in keys[::50]:
        assert cat.get(k) is not None, k


def test_loading_is_fast_and_lazy() -> None:
    import genai_prices.data_snapshot  # noqa: F401 - the gateway has it imported already

    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        c = Catalog()
        assert c._idx is None  # nothing read until the first query
        assert c.get("kimi-k2") is not None
        best = min(best, time.perf_counter() - t0)
    assert best < 0.3, best
