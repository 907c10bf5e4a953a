"""Canonical token usage, whatever the wire format it came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Usage:
    # `__init__` written out so that mypyc compiles it (see AttemptRecord); a test checks it matches.
    input_tokens: int = 0  # all prompt tokens, including cached reads and cache writes
    cached_input_tokens: int = 0  # prompt tokens read from the provider's cache
    cache_write_tokens: int = 0  # prompt tokens written to the cache (Anthropic-style)
    output_tokens: int = 0  # completion tokens, reasoning included
    reasoning_tokens: int = 0

    def __init__(
        self,
        input_tokens: int = 0,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        output_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> None:
        self.input_tokens = input_tokens
        self.cached_input_tokens = cached_input_tokens
        self.cache_write_tokens = cache_write_tokens
        self.output_tokens = output_tokens
        self.reasoning_tokens = reasoning_tokens
