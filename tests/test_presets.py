"""Provider presets: the table's facts, `expand_provider` merging, and prices through a real gateway."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from genai_prices.data_snapshot import find_provider_by_id

from llmswitch.config import ProviderConfig
from llmswitch.pricing import _genai
from llmswitch.providers.presets import (
    ALIASES,
    PRESETS,
    MissingAPIKey,
    UnknownPreset,
    api_key_from_env,
    expand_provider,
    presets_with_keys,
    resolve_preset,
)
from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import UPSTREAM_KEY, GatewayProcess

REQUIRED = {
    "deepseek",
    "moonshot",
    "zai",
    "dashscope",
    "minimax",
    "openrouter",
    "together",
    "fireworks",
    "groq",
    "openai",
    "anthropic",
    "gemini",
    "vllm",
    "sglang",
    "llamacpp",
    "ollama",
}

# A model each priced preset's provider lists in genai-prices (its own spelling of the id).
REPRESENTATIVE = {
    "deepseek": "deepseek-chat",
    "moonshotai": "kimi-k2-0905-preview",
    "zai": "glm-4.6",
    "minimax": "MiniMax-M2",
    "openrouter": "moonshotai/kimi-k2",
    "together": "openai/gpt-oss-120b",
    "fireworks": "accounts/fireworks/models/gpt-oss-120b",
    "groq": "moonshotai/kimi-k2-instruct",
    "openai": "gpt-4.1",
    "anthropic": "claude-sonnet-4-5",
    "google": "gemini-2.5-pro",
}

LOCAL_PORTS = {"vllm": 8000, "sglang": 30000, "llamacpp": 8080, "ollama": 11434}


def test_every_required_preset_exists_and_resolves() -> None:
    assert set(PRESETS) == REQUIRED
    for name, p in PRESETS.items():
        assert resolve_preset(name) is p
        assert resolve_preset(name.upper()) is p
        assert p.name == name


def test_aliases_point_at_presets() -> None:
    for alias, target in ALIASES.items():
        assert resolve_preset(alias) is PRESETS[target]


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_preset_facts_are_well_formed(name: str) -> None:
    p = PRESETS[name]
    assert p.api in ("openai", "anthropic")
    assert p.auth in ("bearer", "x-api-key", "none")
    assert p.region in ("CN", "US", "EU", "local")
    assert p.docs.startswith("https://")
    assert not p.base_url.endswith("/")
    if p.local:
        assert p.auth == "none" and p.api_key_env is None and p.pricing_provider is None
        assert p.base_url == f"http://127.0.0.1:{LOCAL_PORTS[name]}/v1"
    else:
        assert p.base_url.startswith("https://")
        assert p.api_key_env is not None and re.fullmatch(r"[A-Z]+_API_KEY", p.api_key_env)
        assert p.auth == ("x-api-key" if p.api == "anthropic" else "bearer")


def test_chinese_labs_are_cn_and_key_variables_follow_the_providers_docs() -> None:
    for name in ("deepseek", "moonshot", "zai", "dashscope", "minimax"):
        assert PRESETS[name].region == "CN"
    assert {n: PRESETS[n].api_key_env for n in ("deepseek", "moonshot", "zai", "dashscope", "gemini")} == {
        "deepseek": "DEEPSEEK_API_KEY",
        "moonshot": "MOONSHOT_API_KEY",
        "zai": "ZAI_API_KEY",
        "dashscope": "DASHSCOPE_API_KEY",
        "gemini": "GEMINI_API_KEY",
    }


def test_unknown_preset_error_lists_valid_names() -> None:
    with pytest.raises(UnknownPreset) as e:
        resolve_preset("moonshoot")
    msg = str(e.value)
    assert "moonshoot" in msg
    for name in PRESETS:
        assert name in msg
    with pytest.raises(KeyError):  # UnknownPreset is a KeyError, as lookups expect
        expand_provider({"preset": "nope"})


def test_expand_fills_preset_fields() -> None:
    out = expand_provider({"preset": "kimi"})
    assert out == {
        "preset": "moonshot",
        "api": "openai",
        "base_url": "https://api.moonshot.ai/v1",
        "auth": "bearer",
        "region": "CN",
        "pricing_provider": "moonshotai",
        "api_key_env": "MOONSHOT_API_KEY",
    }


def test_user_keys_always_win() -> None:
    raw = {
        "preset": "deepseek",
        "base_url": "http://127.0.0.1:9999/v1",
        "region": "EU",
        "pricing_provider": "openrouter",
        "api_key": "sk-explicit",
        "headers": {"X-A": "1"},
    }
    out = expand_provider(raw)
    for k, v in raw.items():
        if k != "preset":
            assert out[k] == v
    assert out["api"] == "openai" and out["auth"] == "bearer"
    assert out["api_key_env"] is None  # an explicit key: no variable to read
    assert raw == {**raw}  # input not mutated
    assert expand_provider({"preset": "openai", "api_key_env": "MY_OPENAI"})["api_key_env"] == "MY_OPENAI"


def test_derived_auth_defaults() -> None:
    # Switching protocol without naming auth takes that protocol's usual header.
    assert expand_provider({"preset": "minimax", "api": "anthropic"})["auth"] == "x-api-key"
    # A key on a keyless local engine means the engine was started with --api-key (Bearer).
    assert expand_provider({"preset": "vllm", "api_key": "tok"})["auth"] == "bearer"
    assert expand_provider({"preset": "vllm"})["auth"] == "none"
    assert expand_provider({"preset": "vllm", "api_key": "tok", "auth": "none"})["auth"] == "none"


def test_entry_without_preset_is_unchanged() -> None:
    raw = {"api": "openai", "base_url": "https://example.com/v1", "api_key": "k"}
    out = expand_provider(raw)
    assert out == raw and out is not raw


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_expanded_preset_fits_the_provider_config_model(name: str) -> None:
    out = expand_provider({"preset": name})
    fields = {k: v for k, v in out.items() if k in ProviderConfig.model_fields}
    cfg = ProviderConfig.model_validate(fields)
    assert cfg.base_url == PRESETS[name].base_url
    assert set(out) - set(ProviderConfig.model_fields) <= {"preset", "auth", "api_key_env"}


def test_api_key_from_env() -> None:
    env = {"DEEPSEEK_API_KEY": "sk-ds"}
    assert api_key_from_env(expand_provider({"preset": "deepseek"}), env) == "sk-ds"
    assert api_key_from_env(expand_provider({"preset": "deepseek", "api_key": "sk-x"}), {}) == "sk-x"
    assert api_key_from_env(expand_provider({"preset": "ollama"}), {}) is None
    for env in ({}, {"MOONSHOT_API_KEY": ""}):
        with pytest.raises(MissingAPIKey) as e:
            api_key_from_env(expand_provider({"preset": "moonshot"}), env)
        assert e.value.variable == "MOONSHOT_API_KEY"
        assert "MOONSHOT_API_KEY" in str(e.value) and "moonshot" in str(e.value)


def test_presets_with_keys() -> None:
    env = {"ZAI_API_KEY": "z", "OPENAI_API_KEY": "o", "GROQ_API_KEY": "", "UNRELATED": "x"}
    assert presets_with_keys(env) == ["zai", "openai"]
    assert presets_with_keys({}) == []


@pytest.mark.parametrize("name", sorted(n for n, p in PRESETS.items() if p.pricing_provider))
def test_pricing_provider_prices_a_representative_model(name: str) -> None:
    p = PRESETS[name]
    assert p.pricing_provider is not None
    snapshot = _genai.current_snapshot()
    gp = find_provider_by_id(snapshot.providers, p.pricing_provider)
    assert gp is not None and gp.id == p.pricing_provider
    found = _genai.resolve(
        snapshot,
        provider=name,
        base_url=p.base_url,
        upstream_model=REPRESENTATIVE[p.pricing_provider],
        pricing_provider=p.pricing_provider,
    )
    assert not isinstance(found, str), found
    rates = _genai.rates_at(found.model, 1_764_000_000.0)
    assert rates is not None and rates.input > 0 and rates.output > 0


def test_base_urls_identify_their_genai_provider_except_where_documented() -> None:
    snapshot = _genai.current_snapshot()
    for name, p in PRESETS.items():
        matched = next((g.id for g in snapshot.providers if re.match(g.api_pattern, p.base_url)), None)
        if name == "together":  # docs moved to api.together.ai; genai-prices knows api.together.xyz
            assert matched is None
        elif p.pricing_provider is not None:
            assert matched == p.pricing_provider, name
        else:
            assert matched is None, name


def test_dashscope_really_is_absent_from_genai_prices() -> None:
    providers = _genai.current_snapshot().providers
    for pid in ("dashscope", "alibaba", "qwen"):
        assert find_provider_by_id(providers, pid) is None


# -- through a real gateway: the preset with only its base URL pointed at the simulator -------------

GatewayFactory = Callable[..., GatewayProcess]
USAGE = {"prompt_tokens": 12_000, "cached_tokens": 8_000, "completion_tokens": 1_500}
OPENAI_PRICED = sorted(n for n, p in PRESETS.items() if p.pricing_provider and p.api == "openai")


@pytest.fixture
def preset_gateway(fresh_sim: Simulator, start_gateway: GatewayFactory) -> GatewayProcess:
    cfg: dict[str, Any] = {"providers": {}, "models": {}}
    for name in OPENAI_PRICED:
        raw = {"preset": name, "base_url": f"{fresh_sim.url}/v1", "api_key": UPSTREAM_KEY}
        expanded = expand_provider(raw)
        # Until the config loader accepts preset/auth/api_key_env, pass the fields it knows.
        cfg["providers"][name] = {k: v for k, v in expanded.items() if k in ProviderConfig.model_fields}
        upstream = REPRESENTATIVE[PRESETS[name].pricing_provider or ""]
        cfg["models"][f"m-{name}"] = {"deployments": [{"provider": name, "model": upstream}]}
    return start_gateway(cfg)


def test_presets_serve_and_price_through_the_gateway(
    preset_gateway: GatewayProcess, fresh_sim: Simulator
) -> None:
    c = client(preset_gateway)
    snapshot = _genai.current_snapshot()
    for name in OPENAI_PRICED:
        p = PRESETS[name]
        upstream = REPRESENTATIVE[p.pricing_provider or ""]
        fresh_sim.enqueue(upstream, {"usage": USAGE})
        raw = c.chat.completions.with_raw_response.create(
            model=f"m-{name}", messages=[{"role": "user", "content": "x"}]
        )
        assert raw.parse().choices, name
        assert raw.headers["x-llmswitch-provider"] == name
        [row] = preset_gateway.rows_for(raw.headers["x-llmswitch-request-id"])
        found = _genai.resolve(
            snapshot,
            provider=name,
            base_url=None,
            upstream_model=upstream,
            pricing_provider=p.pricing_provider,
        )
        assert not isinstance(found, str)
        r = _genai.rates_at(found.model, row["ts"])
        assert r is not None
        cached_rate = r.input if r.cached_input is None else r.cached_input
        invoice = (4_000 * r.input + 8_000 * cached_rate + 1_500 * r.output) / 1e6
        assert row["cost_usd"] == pytest.approx(invoice, rel=1e-9), name
