"""Presets through a real gateway: only the base URL is overridden (to the simulator); protocol, auth
style, key variable and pricing come from the preset."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmswitch.providers.presets import PRESETS
from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import GatewayProcess

GatewayFactory = Callable[..., GatewayProcess]


@pytest.mark.parametrize("preset", ["deepseek", "moonshot", "zai", "openrouter", "anthropic", "groq", "vllm"])
def test_preset_provider_serves_through_the_gateway(
    fresh_sim: Simulator, start_gateway: GatewayFactory, preset: str
) -> None:
    p = PRESETS[preset]
    env = {p.api_key_env: f"sk-{preset}-key-123"} if p.api_key_env else {}
    gw = start_gateway(
        {
            "providers": {"up": {"preset": preset, "base_url": f"{fresh_sim.url}/v1"}},
            "models": {"m": {"deployments": [{"provider": "up", "model": "some-model"}]}},
        },
        env=env,
    )
    raw = client(gw).chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().choices[0].message.content
    seen = fresh_sim.requests()[-1]
    assert seen["path"] == ("/v1/messages" if p.api == "anthropic" else "/v1/chat/completions")
    if p.api_key_env is None:
        assert "authorization" not in seen["headers"] and "x-api-key" not in seen["headers"]
    elif p.auth == "x-api-key":
        assert seen["headers"]["x-api-key"] == env[p.api_key_env]
    else:
        assert seen["headers"]["authorization"] == f"Bearer {env[p.api_key_env]}"
