"""Catalog keys: one spelling for the many ways providers name the same model.

`moonshotai/Kimi-K2-Instruct` (Together), `moonshotai/kimi-k2` (OpenRouter) and `kimi-k2` (Moonshot)
are one model; `claude-sonnet-4.5` (OpenRouter) and `claude-sonnet-4-5` (Anthropic) too. The key
drops what varies between them and keeps what tells models apart (sizes, dates, `:free` variants).
"""

from __future__ import annotations

import re

__all__ = ["catalog_key", "org_of", "relaxed_keys"]

_FIREWORKS_VERSION = re.compile(r"(?<=\d)p(?=\d)")  # Fireworks spells 4.6 as 4p6
# Packaging of one set of weights, not another model: precision, Together's throughput tier, and the
# file formats and quantisations self-hosted engines name their models by (`SmolLM2-135M-Instruct.Q4_1`,
# `Qwen2.5-7B-Instruct-Q4_K_M.gguf`, `-AWQ`).
_PACKAGING = re.compile(r"-(instruct|fp8|tput|gguf|awq|gptq|int[48]|b?f16|i?q\d(-k)?(-[a-z0-9]{1,2})?)$")


def catalog_key(model_id: str) -> str:
    """`Org/Model-1.5-Instruct:free` → `model-1-5:free`; idempotent."""
    s = model_id.strip().lower().lstrip("~")
    base, colon, variant = s.partition(":")
    base = base.rsplit("/", 1)[-1]
    base = _FIREWORKS_VERSION.sub(".", base).replace(".", "-").replace("_", "-")
    prev = None
    while prev != base:  # `-instruct-fp8`
        prev, base = base, _PACKAGING.sub("", base)
    return base + colon + variant


def org_of(model_id: str) -> str | None:
    """The organisation prefix of an aggregator id (`deepseek-ai/DeepSeek-V3` → `deepseek-ai`)."""
    s = model_id.strip().lower().lstrip("~")
    if "/" not in s:
        return None
    parts = s.split("/")
    if parts[0] in ("accounts", "@cf", "@hf") and len(parts) > 2:
        return parts[-2] if parts[0] != "accounts" else None  # Fireworks paths name no lab
    return parts[0]


_DATED = re.compile(r"-(\d{4}-?\d{2}-?\d{2}|\d{4}|latest|preview|exp)$")


def relaxed_keys(key: str) -> list[str]:
    """Successively looser keys for a miss: without `:variant`, then without date/preview suffixes."""
    out: list[str] = []
    base = key.partition(":")[0]
    if base != key:
        out.append(base)
    k = base
    while True:
        shorter = _DATED.sub("", k)
        if shorter == k or not shorter:
            break
        out.append(shorter)
        k = shorter
    return out
