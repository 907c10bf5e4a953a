"""Canonical token usage, whatever the wire format it came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0  # all prompt tokens, including cached reads and cache writes
    cached_input_tokens: int = 0  # prompt tokens read from the provider's cache
    cache_write_tokens: int = 0  # prompt tokens written to the cache (Anthropic-style)
    output_tokens: int = 0  # completion tokens, reasoning included
    reasoning_tokens: int = 0
